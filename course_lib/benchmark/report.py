"""Reading a benchmark results file: its tables, its curves and one chart.

``python -m course_lib.benchmark`` writes ``{section: figures}``; each section module documents its keys. This
module reads only those documented keys, and takes the file as it comes: a missing section, a section that
failed (an ``error`` entry) or a missing key is shown as "not measured", never guessed or filled in. Nothing
here holds a measured number: every figure shown comes from the file, so the results page of the book shows
the reader's own measurements once they re-run ``make benchmark``. The claims of the book that the file
measures are checked by :mod:`course_lib.benchmark.claims`, which reads the file with the helpers here.

- :func:`about`: the machine and the duration a section recorded;
- :func:`section_tables`: a section's figures as Markdown tables (the results page);
- :func:`find_curves`, :func:`free_up_to`, :func:`plot_curves`: accuracy against sparsity, bit width or
  label fraction, wherever a section records a curve, and how far along it a technique costs nothing;
- :func:`tradeoff_points`, :func:`format_table`, :func:`plot_tradeoffs`: one point per technique on the
  accuracy / size / speed chart.

Conventions of the file, relied on here: accuracies are fractions in ``[0, 1]``; a key ``X_per_seed`` lists
the runs that ``X`` summarizes; ratios (``*ratio``, ``speedup*``) are original / compressed, > 1 is better.
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._tables import markdown_table
from . import SECTIONS

Results = dict[str, dict[str, Any]]
Curve = dict[float, float]
MISSING = "not measured"
CHANCE_MARGIN = 0.02  # a run within this of chance accuracy (1 / classes) is counted as "at chance"
FREE_POINTS = 0.01  # "free": within one point of accuracy of the setting that removes least
MARKER_AREA = 60  # points^2 of a marker in plot_tradeoffs

__all__ = ["SECTIONS", "Results", "MISSING", "load_results", "get", "percent", "points", "times", "markdown_table",
           "ok_sections", "first", "central", "section_tables", "about", "find_curves", "free_up_to", "curve_baseline",
           "where_free",
           "plot_curves",
           "tradeoff_points", "format_table", "plot_tradeoffs"]


# ---------------------------------------------------------------------------------------------------------
# Reading the file

def load_results(path: str | Path) -> Results:
    """The ``{section: figures}`` dict written by ``python -m course_lib.benchmark`` at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {path}; create them with "
                                f"`python -m course_lib.benchmark --out {path}`")
    results = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(results, dict):
        raise ValueError(f"{path} does not hold a {{section: figures}} object")
    return results


def get(figures: Any, dotted: str) -> Any:
    """``figures["a"]["b"]`` for ``dotted == "a.b"``, or ``None`` when any key on the way is missing."""
    for key in dotted.split("."):
        if not isinstance(figures, dict) or key not in figures:
            return None
        figures = figures[key]
    return figures


def at(figures: Any, *keys: Any) -> Any:
    """``figures[k1][k2]...`` with each key also tried as a string (JSON keys are), or ``None`` if missing."""
    for key in keys:
        if not isinstance(figures, dict):
            return None
        figures = figures.get(key, figures.get(str(key)))
    return figures


def ok_sections(results: Results) -> Results:
    """The sections of ``results`` that ran (present, and without an ``error`` entry)."""
    return {name: r for name, r in results.items() if isinstance(r, dict) and "error" not in r}


def number(value: Any) -> float | None:
    """``value`` as a float if it is a number (not a bool), else ``None``."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list) or not values:
        return None
    numbers = [number(v) for v in values]
    return None if None in numbers else numbers


def first(*values: Any) -> float | None:
    """The first of ``values`` that is a number (``central(runs)`` if measured, else a recorded mean...)."""
    return next((number(v) for v in values if number(v) is not None), None)


def central(values: Any, how: str = "mean") -> float | None:
    """The ``"mean"`` or ``"median"`` of a list of numbers (``None`` if it is not one)."""
    numbers = _numbers(values)
    if numbers is None:
        return None
    return statistics.fmean(numbers) if how == "mean" else statistics.median(numbers)


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals (``0.9812 -> "98.1%"``), or ``"not measured"``."""
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def points(value: float | None, digits: int = 2) -> str:
    """A difference of two fractions in percentage points, signed (``-0.0113 -> "-1.13 points"``)."""
    return MISSING if value is None else f"{round(100 * value, digits) + 0.0:+.{digits}f} points"  # no "-0.00"


def times(value: float | None, digits: int = 2) -> str:
    """A factor with ``digits`` decimals (``2.2 -> "2.20x"``), or ``"not measured"``."""
    return MISSING if value is None else f"{value:.{digits}f}x"


def ratio_of(numerator: Any, denominator: Any) -> float | None:
    """``numerator / denominator``, or ``None`` unless both are non-zero numbers."""
    a, b = number(numerator), number(denominator)
    return a / b if a and b else None


def difference(a: Any, b: Any) -> float | None:
    """``a - b``, or ``None`` unless both are numbers."""
    a, b = number(a), number(b)
    return None if a is None or b is None else a - b


def _runs(values: Any, digits: int = 1) -> str:
    """Each run of a per-seed list as a percentage: ``"97.1, 97.3, 97.3%"``."""
    numbers = _numbers(values)
    return MISSING if numbers is None else ", ".join(f"{100 * v:.{digits}f}" for v in numbers) + "%"


def about(results: Results, name: str) -> str:
    """The machine and the duration the benchmark recorded for section ``name``, as one sentence."""
    section = results.get(name)
    if not isinstance(section, dict):
        return f"The benchmark file has no `{name}` section: run `python -m course_lib.benchmark --only {name}`."
    machine = section.get("machine") or {}
    keys = ("cpu", "cpu_count", "threads", "torch", "cuda_device")
    desc = ", ".join(f"{k} {machine[k]}" for k in keys if isinstance(machine, dict) and machine.get(k) is not None)
    seconds = number(section.get("seconds"))
    took = f"ran in {seconds:.0f} s" if seconds is not None else "ran"
    seeds = f", {section['seeds']} seed(s) per trained model" if isinstance(section.get("seeds"), int) else ""
    failed = f" It FAILED: {section['error']}" if "error" in section else ""
    return f"Section `{name}` {took} on {desc or 'an unrecorded machine'}{seeds}.{failed}"


# ---------------------------------------------------------------------------------------------------------
# Tables per section

def label_fractions(d: dict) -> list[Any]:
    """The label fractions of ``low_label`` that have figures."""
    return [f for f in (at(d, "low_label", "fractions") or []) if isinstance(at(d, "low_label", f), dict)]


def compressed_networks(c: dict) -> list[tuple[str, dict]]:
    """The networks of a ``deep_compression`` section: ``[("LeNet-300-100", top level), ("LeNet-5", c["lenet5"])]``."""
    nets = [("LeNet-300-100", c)] if "compression_ratio" in c else []
    return nets + ([("LeNet-5", c["lenet5"])] if isinstance(c.get("lenet5"), dict) else [])


def _mean_runs(values: Any) -> str:
    mean = central(values)
    return MISSING if mean is None else f"{percent(mean, 2)} (mean of {_runs(values)})"


def _distillation_tables(d: dict) -> list[str]:
    tables = [markdown_table(["model", "parameters", "test accuracy"], [
        ["teacher", f"{get(d, 'teacher.params'):,}" if get(d, "teacher.params") else MISSING,
         percent(number(get(d, "teacher.accuracy")), 2)],
        ["student trained on the labels (scratch)", f"{get(d, 'student.params'):,}" if get(d, "student.params")
         else MISSING, _mean_runs(get(d, "student.scratch_accuracy_per_seed"))],
        ["student distilled from the teacher", "same", _mean_runs(get(d, "student.kd_accuracy_per_seed"))],
        ["distilled minus scratch", "",
         points(difference(get(d, "student.kd_accuracy"), get(d, "student.scratch_accuracy")))],
    ])]
    fractions = label_fractions(d)
    if fractions:
        rows = []
        for f in fractions:
            figures = at(d, "low_label", f)
            gap = lambda kind: number(at(figures, "gap_recovered", kind))  # noqa: E731
            rows.append([f"{float(f):.0%}", at(d, "low_label", "labels", f) or "",
                         percent(central(figures.get("scratch"))), percent(central(figures.get("kd"))),
                         percent(central(figures.get("kd_transfer"))),
                         MISSING if gap("kd") is None else f"{gap('kd'):.0%}",
                         MISSING if gap("kd_transfer") is None else f"{gap('kd_transfer'):.0%}"])
        tables.append(markdown_table(["labels kept", "labeled images", "scratch", "distilled",
                                      "distilled + transfer set", "gap recovered (distilled)",
                                      "gap recovered (+ transfer)"], rows))
    small = d.get("all_labels") or {}
    if small:
        tables.append(markdown_table(["smaller student, all labels", "test accuracy"], [
            ["parameters", f"{small['params']:,}" if isinstance(small.get("params"), int) else MISSING],
            ["scratch", _mean_runs(small.get("scratch_per_seed", small.get("scratch")))],
            ["distilled", _mean_runs(small.get("kd_per_seed", small.get("kd")))],
            ["gain (difference of the means)", points(number(small.get("gain")))],
            ["seed-to-seed spread (larger standard deviation)", points(number(small.get("spread")))]]))
    feature = d.get("feature_kd") or {}
    if feature:
        tables.append(markdown_table(["hint (FitNets) distillation, same small student", "test accuracy"], [
            ["hint layers", f"student {feature.get('student_layer')}, teacher {feature.get('teacher_layer')}"],
            ["FitNets, then distillation", _mean_runs(feature.get("fitnet_per_seed", feature.get("fitnet")))],
            ["distillation only", _mean_runs(small.get("kd_per_seed", small.get("kd")))]]))
    o = d.get("omitted_digit") or {}
    if o:
        digit = o.get("digit", "?")
        tables.append(markdown_table([f"test images of the omitted digit {digit} recognized", "fraction"], [
            ["student trained on the labels of the other digits", percent(number(o.get("scratch_accuracy")))],
            ["distilled student, uncorrected", percent(number(o.get("kd_accuracy")))],
            [f"distilled student, output bias of class {digit} raised by {_shifts(o.get('bias_shift'))} "
             "(chosen on validation)", percent(number(o.get("kd_accuracy_bias_corrected")))],
            ["that corrected student on all test digits", percent(number(o.get("kd_overall_accuracy_bias_corrected")))],
        ]))
    return tables


def _shifts(value: Any) -> str:
    """A bias shift, or one per seed (``"4, 3.5, 4 (per seed)"``)."""
    numbers = _numbers(value)
    if numbers is not None:
        return ", ".join(f"{v:g}" for v in numbers) + " (per seed)"
    return MISSING if number(value) is None else f"{value:g}"


def _at_chance(values: list[float], classes: int = 10) -> int:
    return sum(v <= 1 / classes + CHANCE_MARGIN for v in values)


def _pruning_tables(p: dict) -> list[str]:
    dense = number(p.get("dense_accuracy"))
    magnitude, rnd = p.get("magnitude_per_seed") or {}, p.get("random_per_seed") or {}
    levels = sorted(set(magnitude) | set(rnd) | set(p.get("magnitude") or {}) | set(p.get("random") or {}), key=float)
    rows = [["0 (dense teacher)", percent(dense), percent(dense), ""]]
    for s in levels:
        mag = first(central(magnitude.get(s)), at(p, "magnitude", s))
        runs = _numbers(rnd.get(s))
        median = central(runs, "median") if runs else None
        dead = _at_chance(runs) if runs else 0
        rows.append([f"{float(s):.0%}", percent(mag), percent(median) if runs else
                     f"{percent(number(at(p, 'random', s)))} (mean)",
                     (f"{_runs(runs)}" + (f"; {dead} of {len(runs)} at chance level" if dead else "")) if runs else ""])
    tables = [markdown_table(["sparsity", "magnitude + fine-tuning (mean of seeds)", "random + fine-tuning (median)",
                              "random: every seed"], rows)]
    stored = p.get("sparse_bytes") or {}
    dense_bytes = number(stored.get("dense"))
    sparse = "sparse" if number(stored.get("sparsity")) is None else f"{percent(number(stored['sparsity']), 0)}-sparse"
    rows = [[f"{f} file of the {sparse} teacher",
             f"{stored[f]:,}", times(ratio_of(dense_bytes, stored[f]), 1)] for f in ("csr", "bitmask")
            if isinstance(stored.get(f), int)]
    if rows and dense_bytes:
        rows.insert(0, ["dense float32 tensors", f"{int(dense_bytes):,}", "1.0x"])
        tables.append(markdown_table(["storage", "bytes", "smaller than dense"], rows))
    removed = number(get(p, "channel.sparsity"))
    channels = "" if removed is None else f" ({removed:.0%} of each convolution's channels removed)"
    tables.append(markdown_table(["structured against unstructured", "measured"], [
        [f"channel pruning{channels}: accuracy after fine-tuning", _mean_runs(get(p, "channel.accuracy_per_seed"))],
        ["channel pruning: times fewer parameters", times(number(get(p, "channel.params_ratio")))],
        ["channel pruning: times faster than dense", times(number(get(p, "channel.latency_speedup")))],
        [f"{sparse} teacher (unstructured, in a dense kernel): times faster",
         times(number(p.get("unstructured_latency_speedup")))]]))
    return tables


def _int8_speed_table(stats: dict, header: list[str], extra: list[list[str]] | None = None) -> str:
    """The times of fp32 eager, fp32 compiled and int8 (``stats``: a ``pt2e`` entry or its ``cpu_1thread``)."""
    def ms(key: str) -> str:
        return MISSING if number(stats.get(key)) is None else f"{stats[key]:.1f} ms"
    return markdown_table(header, [
        ["fp32, eager PyTorch", ms("fp32_eager_ms"), times(number(stats.get("speedup_vs_eager")))],
        ["fp32, compiled (torch.compile, freezing)", ms("fp32_compiled_ms"),
         times(number(stats.get("speedup_vs_compiled")))],
        ["int8, PT2E, compiled", ms("int8_ms"), ""], *(extra or [])])


def _quantization_tables(q: dict) -> list[str]:
    fp32 = number(q.get("fp32_accuracy"))
    models = [["fp32 teacher", percent(fp32, 2), ""],
              ["int8 post-training (W8A8, simulated)", percent(number(get(q, "ptq.int8")), 2), ""],
              ["int4 post-training (W4A4, simulated)", percent(number(get(q, "ptq.int4")), 2), ""],
              ["int4 quantization-aware training",
               percent(first(central(get(q, "qat.int4_per_seed")), get(q, "qat.int4")), 2),
               _runs(get(q, "qat.int4_per_seed"))],
              ["binary middle layers, trained",
               percent(first(central(get(q, "qat.binary_per_seed")), get(q, "qat.binary")), 2),
               _runs(get(q, "qat.binary_per_seed"))],
              ["int8 kernels (PT2E, compiled)", percent(number(get(q, "pt2e.accuracy")), 2), ""]]
    tables = [markdown_table(["model", "test accuracy", "runs"], models)]
    pt2e = q.get("pt2e") or {}
    if pt2e:
        batch = f"batch {pt2e.get('batch_size')}"
        tables.append(_int8_speed_table(pt2e, [f"{batch}, {pt2e.get('threads')} thread(s)", "median",
                                               "int8 is faster by"],
                                        [["file size, fp32 / int8", "", times(number(pt2e.get("size_ratio")))]]))
        if pt2e.get("cpu_1thread"):  # CPU time per call on one thread, which other processes do not inflate
            tables.append(_int8_speed_table(pt2e["cpu_1thread"], [f"{batch}, CPU time per call, 1 thread", "mean",
                                                                  "int8 is faster by"]))
    return tables


def _acceleration_tables(a: dict) -> list[str]:
    tables = []
    if isinstance(a.get("threads"), list):
        tables.append(markdown_table(["intra-op threads", "median (ms)", "speed-up"], [
            [r.get("threads"), f"{r.get('median_ms', 0):.2f}", times(number(r.get("speedup")))] for r in a["threads"]]))
    if isinstance(a.get("batching"), list):
        tables.append(markdown_table(["batch size", "median per call (ms)", "samples per second"], [
            [r.get("batch_size"), f"{r.get('median_ms', 0):.2f}", f"{r.get('samples_per_s', 0):,.0f}"]
            for r in a["batching"]]))
    rows = [["DDP, 2 processes: largest weight difference from one process",
             MISSING if number(get(a, "ddp.max_param_diff")) is None else f"{get(a, 'ddp.max_param_diff'):.1e}"],
            ["Conv-BatchNorm folding: largest logit difference",
             MISSING if number(get(a, "fusion.max_abs_diff")) is None else f"{get(a, 'fusion.max_abs_diff'):.1e}"],
            [f"Conv-BatchNorm folding: speed-up at batch {get(a, 'fusion.batch_size')} / at batch 1",
             f"{times(number(get(a, 'fusion.speedup')))} / {times(number(get(a, 'fusion.speedup_batch1')))}"],
            [f"torch.compile: speed-up at batch {get(a, 'compile.batch_size')} (compiling took "
             f"{get(a, 'compile.compile_seconds')} s)", times(number(get(a, "compile.speedup")))]]
    tables.append(markdown_table(["measurement", "value"], rows))
    low_rows = []
    for key, name in (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher, 3136 -> 256 layer")):
        low = a.get(key) or {}
        if low:
            low_rows.append([name, low.get("rank"), f"{percent(number(low.get('accuracy')))} "
                             f"({percent(number(low.get('dense_accuracy')))})",
                             times(number(low.get("params_ratio"))), times(number(low.get("speedup"))),
                             times(number(low.get("speedup_batch1")))])
    if low_rows:
        tables.append(markdown_table(["low rank", "rank (chosen on validation)", "test accuracy (dense)",
                                      "fewer parameters", f"faster at batch {get(a, 'low_rank.batch_size')}",
                                      "faster at batch 1"], low_rows))
    return tables


def _deep_compression_tables(c: dict) -> list[str]:
    rows = []
    for name, f in compressed_networks(c):
        sizes, accs = _numbers(f.get("compressed_bytes_per_seed")), _numbers(f.get("compressed_accuracy_per_seed"))
        runs = ", ".join(f"{int(b):,} B: {100 * a:.1f}%" for b, a in zip(sizes, accs)) if sizes and accs else MISSING
        mean_bytes = number(f.get("compressed_bytes"))
        rows.append([name, f"{f['dense_bytes']:,}" if isinstance(f.get("dense_bytes"), int) else MISSING,
                     percent(number(f.get("dense_accuracy"))),
                     MISSING if mean_bytes is None else f"{mean_bytes:,.0f}",
                     percent(number(f.get("compressed_accuracy"))),
                     times(number(f.get("compression_ratio")), 1), runs])
    return [markdown_table(["network", "dense bytes", "dense accuracy", "file bytes (mean)", "accuracy (mean)",
                            "smaller (mean file)", "each run: file and the accuracy of the model it holds"], rows)]


_TABLES = {"distillation": _distillation_tables, "pruning": _pruning_tables, "quantization": _quantization_tables,
           "acceleration": _acceleration_tables, "deep_compression": _deep_compression_tables}


def section_tables(results: Results, section: str) -> list[str]:
    """Markdown tables of ``section``'s figures; ``[]`` if the section is missing or failed."""
    figures = ok_sections(results).get(section)
    if figures is None:
        return []
    return _TABLES[section](figures) if section in _TABLES else []


# ---------------------------------------------------------------------------------------------------------
# Curves: accuracy against sparsity, bits or label fraction

X_AXES = ("bits", "sparsities", "sparsity", "fractions")  # keys whose list of numbers is the x of a subtree
X_LABELS = {"pruning": "sparsity (fraction of weights removed)", "quantization": "bits per value",
            "distillation": "fraction of the training labels"}


def _as_x(key: Any) -> float | None:
    try:
        return float(key)
    except (TypeError, ValueError):
        return None


def _walk(node: Any, path: tuple[str, ...], x: list[float] | None) -> Iterator[tuple[tuple[str, ...], Curve]]:
    if isinstance(node, dict):
        keyed = {_as_x(k): v for k, v in node.items()}
        if len(node) >= 2 and None not in keyed:
            ys = {k: number(v) if number(v) is not None else central(v) for k, v in keyed.items()}
            if None not in ys.values():  # {x: accuracy or [runs]}: a curve
                yield path, dict(sorted(ys.items()))
                return
        axis = next((_numbers(node[k]) for k in X_AXES if _numbers(node.get(k))), x)
        for key, value in node.items():
            if key in X_AXES or str(key).endswith("_per_seed") or key in ("selection", "machine", "seconds"):
                continue
            yield from _walk(value, (*path, str(key)), axis)
    elif x is not None and _numbers(node) is not None and len(node) == len(x) and len(x) >= 2:
        yield path, dict(sorted(zip(x, _numbers(node))))


def find_curves(results: Results, section: str) -> dict[str, Curve]:
    """Every accuracy curve recorded in ``section``'s ``curve`` entry: ``{"a / b": {x: accuracy}}``.

    A curve is a mapping whose keys are numbers written as strings (``{"0.9": 0.98}``) and whose values are
    accuracies or lists of runs (averaged), or a list of accuracies beside a list of x values (a key among
    :data:`X_AXES` of an enclosing mapping, e.g. ``{"bits": [8, 4], "ptq": [0.98, 0.97]}``). The name is the
    path of keys below ``curve``. ``*_per_seed`` lists are skipped (their mean is the curve).
    """
    figures = ok_sections(results).get(section) or {}
    return {" / ".join(path): curve for path, curve in _walk(figures.get("curve"), (), None)}


def free_up_to(curve: Curve, *, aggressive: str, tolerance: float = FREE_POINTS,
               reference: float | None = None) -> tuple[float | None, float | None]:
    """How far along ``curve`` accuracy stays within ``tolerance`` of ``reference`` (default: the mildest setting's).

    ``aggressive`` is ``"higher"`` (sparsity: more is more aggressive) or ``"lower"`` (bits). Returns the most
    aggressive x reached before the first setting that falls more than ``tolerance`` below the reference (every
    milder setting must pass too, so a lucky point past a fall does not count), and that first setting
    (``None`` if the curve never falls). With an explicit ``reference`` (the unpruned model's accuracy) the
    mildest setting can already fall: the first value returned is then ``None``.
    """
    if aggressive not in ("higher", "lower"):
        raise ValueError(f"aggressive must be 'higher' or 'lower', got {aggressive!r}")
    if not curve:
        raise ValueError("curve must hold at least one (x, accuracy) point")
    xs = sorted(curve, reverse=aggressive == "lower")
    reference = curve[xs[0]] if reference is None else reference
    reached = None
    for x in xs:
        if curve[x] < reference - tolerance:
            return reached, x
        reached = x
    return reached, None


def curve_baseline(results: Results, section: str, name: str) -> float | None:
    """The accuracy of the unchanged model that the curve ``name`` (a :func:`find_curves` name) starts from: the
    number under the key ``dense`` nearest above it in the section's ``curve`` entry (``None`` if there is none)."""
    node, found = (ok_sections(results).get(section) or {}).get("curve"), None
    for key in name.split(" / "):
        if not isinstance(node, dict):
            break
        found = number(node.get("dense")) if number(node.get("dense")) is not None else found
        node = node.get(key)
    return found


AGGRESSIVE = {"pruning": "higher", "quantization": "lower", "distillation": "lower"}


def where_free(results: Results, section: str, *, tolerance: float = FREE_POINTS) -> list[str]:
    """For each curve of ``section``, one sentence: up to which setting it costs at most ``tolerance`` of accuracy
    (:func:`free_up_to`), and what the next setting costs. The reference is the unchanged model's accuracy where
    the file records it beside the curve (a ``dense`` key, :func:`curve_baseline`), else the mildest setting's."""
    sentences = []
    higher = AGGRESSIVE.get(section, "higher") == "higher"
    for name, curve in find_curves(results, section).items():
        baseline = curve_baseline(results, section, name)
        reached, falls = free_up_to(curve, aggressive="higher" if higher else "lower", tolerance=tolerance,
                                    reference=baseline)
        reference = (f"{percent(baseline)} (unchanged model)" if baseline is not None else
                     f"{percent(curve[min(curve) if higher else max(curve)])} (mildest setting)")
        text = (f"{name}: within {100 * tolerance:g} point of {reference} "
                + (f"up to {reached:g}" if reached is not None else "at no setting measured"))
        sentences.append(text + (f"; at {falls:g}: {percent(curve[falls])}" if falls is not None else
                                 ", the last setting measured"))
    return sentences


def plot_curves(results: Results, section: str, *, max_lines: int = 6):
    """Every curve of ``section`` (:func:`find_curves`), one panel per group of at most ``max_lines`` sharing their
    leading keys; x: the setting, y: test accuracy (%). Returns the figure, or ``None`` if there is no curve."""
    import matplotlib.pyplot as plt

    curves = find_curves(results, section)
    if not curves:
        return None
    groups: dict[str, dict[str, Curve]] = {}
    for name, curve in curves.items():
        parts = name.split(" / ")
        group, label = (" / ".join(parts[:-2]), " ".join(parts[-2:])) if len(parts) > 2 else ("", name)
        groups.setdefault(group, {})[label] = curve
    panels = [(g, dict(list(c.items())[i:i + max_lines]))
              for g, c in groups.items() for i in range(0, len(c), max_lines)]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, layout="constrained")
    for ax, (group, lines) in zip(axes.flat, panels):
        for label, curve in lines.items():
            ax.plot(list(curve), [100 * y for y in curve.values()], marker="o", label=label)
        ax.set(xlabel=X_LABELS.get(section, "setting"), ylabel="test accuracy (%)", title=group or section)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    return fig


# ---------------------------------------------------------------------------------------------------------
# One point per technique: the accuracy / size / speed chart

def _point(technique: str, section: str, accuracy: Any, baseline: Any, compression: Any = None,
           speedup: Any = None) -> dict[str, Any]:
    return {"technique": technique, "section": section, "accuracy": number(accuracy),
            "baseline_accuracy": number(baseline), "compression": number(compression), "speedup": number(speedup)}


def _sparse_point(p: dict[str, Any]) -> dict[str, Any]:
    """Magnitude pruning: its compression is dense bytes / bytes of the smaller measured sparse file."""
    stored = p.get("sparse_bytes") or {}
    formats = [f for f in ("csr", "bitmask") if number(stored.get(f))]
    sparsity = number(stored.get("sparsity"))
    best = min(formats, key=stored.get) if formats else None
    key = None if sparsity is None else next((k for k in (p.get("magnitude_per_seed") or p.get("magnitude") or {})
                                              if _as_x(k) == sparsity), None)
    accuracy = None if key is None else first(central(at(p, "magnitude_per_seed", key)), at(p, "magnitude", key))
    label = ("magnitude pruning" + (f" {sparsity:.0%}" if sparsity is not None else "")
             + (f", {best} file" if best else ""))
    return _point(label, "pruning", accuracy, p.get("dense_accuracy"),
                  ratio_of(stored.get("dense"), stored.get(best)) if best else None,
                  p.get("unstructured_latency_speedup"))


def tradeoff_points(results: Results) -> list[dict[str, Any]]:
    """One point per technique variant: ``technique, section, accuracy, baseline_accuracy, compression, speedup``.

    Accuracies are fractions in ``[0, 1]``, each against the model the technique started from (the student's
    against the teacher's, so that the scratch and the distilled student sit one above the other);
    ``compression`` and ``speedup`` are factors (> 1 is better), as measured: parameter ratios, serialized bytes
    (for unstructured pruning the smaller of its CSR and bitmask files, named in the label), ratios of median
    latencies (int8 against compiled and against eager fp32). ``None`` where the file does not measure it.
    Sections that are missing or hold an ``error`` give no point.
    """
    ok = ok_sections(results)
    found = []
    if d := ok.get("distillation"):
        ratio = ratio_of(get(d, "teacher.params"), get(d, "student.params"))
        for name, key in (("student from scratch", "scratch_accuracy"), ("distilled student", "kd_accuracy")):
            found.append(_point(name, "distillation", get(d, f"student.{key}"), get(d, "teacher.accuracy"), ratio,
                                get(d, "student.speedup")))
    if p := ok.get("pruning"):
        found.append(_sparse_point(p))
        sparsity = number(get(p, "channel.sparsity"))
        found.append(_point("channel pruning" + (f" {sparsity:.0%}" if sparsity is not None else ""), "pruning",
                            first(central(get(p, "channel.accuracy_per_seed")), get(p, "channel.accuracy")),
                            p.get("dense_accuracy"), get(p, "channel.params_ratio"), get(p, "channel.latency_speedup")))
    if (q := ok.get("quantization")) and isinstance(q.get("pt2e"), dict):
        for name, key in (("int8 PT2E vs compiled fp32", "speedup_vs_compiled"),
                          ("int8 PT2E vs eager fp32", "speedup_vs_eager")):
            found.append(_point(name, "quantization", get(q, "pt2e.accuracy"), get(q, "pt2e.fp32_accuracy"),
                                get(q, "pt2e.size_ratio"), get(q, f"pt2e.{key}")))
    if a := ok.get("acceleration"):
        if isinstance(a.get("fusion"), dict):
            found.append(_point("Conv-BN folding", "acceleration", get(a, "fusion.accuracy"),
                                get(a, "fusion.dense_accuracy"), get(a, "fusion.params_ratio"),
                                get(a, "fusion.speedup")))
        for key, model in (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher")):
            if isinstance(a.get(key), dict):
                found.append(_point(f"low rank {get(a, f'{key}.rank')}, {model}", "acceleration",
                                    get(a, f"{key}.accuracy"), get(a, f"{key}.dense_accuracy"),
                                    get(a, f"{key}.params_ratio"), get(a, f"{key}.speedup")))
    if c := ok.get("deep_compression"):
        for name, f in compressed_networks(c):
            found.append(_point(f"Deep Compression, {name}", "deep_compression", f.get("compressed_accuracy"),
                                f.get("dense_accuracy"), f.get("compression_ratio")))
    return found


def format_table(results: Results) -> str:
    """A markdown table of the headline figures of each technique, then one line per section (time, errors)."""
    rows = [[p["technique"], percent(p["accuracy"], 2), percent(p["baseline_accuracy"], 2), times(p["compression"]),
             times(p["speedup"])] for p in tradeoff_points(results)]
    lines = [markdown_table(["technique", "accuracy", "baseline", "smaller", "faster"], rows), ""]
    for name, r in results.items():
        seconds = r.get("seconds") if isinstance(r, dict) else None
        status = f"FAILED: {r['error']}" if isinstance(r, dict) and "error" in r else "ok"
        lines.append(f"- {name}: {status}" + (f" ({seconds:.1f} s)" if seconds is not None else ""))
    return "\n".join(lines)


def plot_tradeoffs(results: Results, ax=None):
    """The closing chart: each technique's accuracy change against how much smaller and faster it made its model.

    Two panels side by side when ``ax`` is ``None`` (x: times smaller, then times faster, log scale; y: change
    of test accuracy in points against the model the technique started from); pass a pair of axes to draw
    into them, or one axis for the size panel only. A technique whose speed (or size) is not measured is drawn
    faded at 1x on that panel. The scratch and distilled students are joined by an arrow: its length is what
    distillation gains over training the same student on the labels. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    found = [p for p in tradeoff_points(results) if p["accuracy"] is not None and p["baseline_accuracy"] is not None]
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    else:
        axes = list(ax) if isinstance(ax, (list, tuple)) or hasattr(ax, "__len__") else [ax]
        fig = axes[0].figure
    panels = [("compression", "times smaller (parameters or file bytes, log scale)"),
              ("speedup", "times faster (ratio of median CPU latencies, log scale)")][:len(axes)]
    markers = {"distillation": "o", "pruning": "s", "quantization": "D", "acceleration": "^", "deep_compression": "*"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    factor = FuncFormatter(lambda value, _: f"{value:g}x")
    for axis, (key, label) in zip(axes, panels):
        xy = {}
        for i, p in enumerate(found):
            x, y = p[key] if p[key] is not None else 1.0, 100 * (p["accuracy"] - p["baseline_accuracy"])
            xy[p["technique"]] = (x, y)
            axis.scatter(x, y, s=MARKER_AREA * (2 if p["section"] == "deep_compression" else 1),
                         marker=markers.get(p["section"], "o"), color=colors[i % len(colors)], label=p["technique"],
                         edgecolor="black", linewidth=0.5, zorder=3, alpha=1.0 if p[key] is not None else 0.35)
        if {"student from scratch", "distilled student"} <= xy.keys():
            (x0, y0), (x1, y1) = xy["student from scratch"], xy["distilled student"]
            axis.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                          arrowprops={"arrowstyle": "->", "color": "black", "linewidth": 1})
            axis.annotate(f"distillation {y1 - y0:+.2f}", (x1, max(y0, y1)), textcoords="offset points",
                          xytext=(6, 4), fontsize=7)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.axvline(1, color="grey", linewidth=0.8)
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(factor)
        axis.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if f"{v:g}"[0] in "25" else ""))
        axis.set_xlabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test accuracy change vs. the model it started from (points)")
    axes[0].set_title("Accuracy vs. size")
    if len(axes) > 1:
        axes[1].set_title("Accuracy vs. speed (faded: speed not measured, drawn at 1x)")
    if found:
        axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: no point hidden
    fig.tight_layout()
    return fig

"""The ``pruning`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..knee import free_up_to
from ..results import (
    FREE_POINTS,
    at,
    central,
    first,
    get,
    key_number,
    mean_runs,
    number,
    numbers,
    percent,
    points,
    ratio_of,
    runs,
    speed,
    speedup_of,
    times,
)
from .section import Claim, Evidence, Point, Section, plausible_speedup, speed_evidence

CHANCE_MARGIN = 0.02  # a run within this of chance accuracy (1 / classes) is counted as "at chance"


def _at_chance(values: list[float], classes: int = 10) -> int:
    return sum(v <= 1 / classes + CHANCE_MARGIN for v in values)


def tables(p: dict) -> list[str]:
    """Magnitude against random pruning by sparsity; the sparse files; structured against unstructured."""
    dense = number(p.get("dense_accuracy"))
    magnitude, rnd = p.get("magnitude_per_seed") or {}, p.get("random_per_seed") or {}
    levels = sorted(set(magnitude) | set(rnd) | set(p.get("magnitude") or {}) | set(p.get("random") or {}), key=float)
    rows = [["0 (dense teacher)", percent(dense), percent(dense), ""]]
    for s in levels:
        mag = first(central(magnitude.get(s)), at(p, "magnitude", s))
        seeds = numbers(rnd.get(s))
        median = central(seeds, "median") if seeds else None
        dead = _at_chance(seeds) if seeds else 0
        every = (runs(seeds) + (f"; {dead} of {len(seeds)} at chance level" if dead else "")) if seeds else ""
        rows.append([f"{float(s):.0%}", percent(mag), percent(median) if seeds else
                     f"{percent(number(at(p, 'random', s)))} (mean)", every])
    result = [markdown_table(["sparsity", "magnitude + fine-tuning (mean of seeds)", "random + fine-tuning (median)",
                              "random: every seed"], rows)]
    stored = p.get("sparse_bytes") or {}
    dense_bytes = number(stored.get("dense"))
    sparse = "sparse" if number(stored.get("sparsity")) is None else f"{percent(number(stored['sparsity']), 0)}-sparse"
    rows = [[f"{f} file of the {sparse} teacher",
             f"{stored[f]:,}", times(ratio_of(dense_bytes, stored[f]), 1)] for f in ("csr", "bitmask")
            if isinstance(stored.get(f), int)]
    if rows and dense_bytes:
        rows.insert(0, ["dense float32 tensors", f"{int(dense_bytes):,}", "1.0x"])
        result.append(markdown_table(["storage", "bytes", "smaller than dense"], rows))
    removed = number(get(p, "channel.sparsity"))
    channels = "" if removed is None else f" ({removed:.0%} of each convolution's channels removed)"
    result.append(markdown_table(["structured against unstructured", "measured"], [
        [f"channel pruning{channels}: accuracy after fine-tuning", mean_runs(get(p, "channel.accuracy_per_seed"))],
        ["channel pruning: times fewer parameters", times(number(get(p, "channel.params_ratio")))],
        ["channel pruning: times faster than dense", _channel(p)[1]],
        [f"{sparse} teacher (unstructured, in a dense kernel): times faster",
         speed(p.get("unstructured_latency_speedup"))]]))
    return result


def _points(p: dict) -> list[Point]:
    """Magnitude pruning, its compression the dense bytes over the smaller of its measured sparse files, and
    channel pruning, its compression the parameter ratio."""
    stored = p.get("sparse_bytes") or {}
    formats = [f for f in ("csr", "bitmask") if number(stored.get(f))]
    sparsity = number(stored.get("sparsity"))
    best = min(formats, key=stored.get) if formats else None
    key = None if sparsity is None else next((k for k in (p.get("magnitude_per_seed") or p.get("magnitude") or {})
                                              if key_number(k) == sparsity), None)
    accuracy = None if key is None else first(central(at(p, "magnitude_per_seed", key)), at(p, "magnitude", key))
    label = ("magnitude pruning" + (f" {sparsity:.0%}" if sparsity is not None else "")
             + (f", {best} file" if best else ""))
    channel = number(get(p, "channel.sparsity"))
    return [Point(label, accuracy, number(p.get("dense_accuracy")),
                  ratio_of(stored.get("dense"), stored.get(best)) if best else None,
                  speedup_of(p.get("unstructured_latency_speedup"))),
            Point("channel pruning" + (f" {channel:.0%}" if channel is not None else ""),
                  first(central(get(p, "channel.accuracy_per_seed")), get(p, "channel.accuracy")),
                  number(p.get("dense_accuracy")), number(get(p, "channel.params_ratio")), _channel(p)[0])]


def _magnitude_90(p: dict) -> Evidence:
    dense = number(p.get("dense_accuracy"))
    pruned = first(central(at(p, "magnitude_per_seed", "0.9")), at(p, "magnitude", "0.9"))
    if dense is None or pruned is None:
        return None
    epochs = number(get(p, "curve.teacher.finetune.epochs"))
    tuned = "" if epochs is None else f", after {epochs:g} epoch{'s' if epochs != 1 else ''} of fine-tuning"
    return (f"{percent(pruned)} against {percent(dense)} dense ({points(pruned - dense)}){tuned}",
            dense - pruned <= FREE_POINTS)


def _knees(p: dict) -> Evidence:
    curve, rows = p.get("curve") or {}, []
    for name in ("teacher", "lenet300"):
        entry = curve.get(name) or {}
        tuned, dense = get(entry, "global.finetuned"), number(entry.get("dense"))
        if not isinstance(tuned, dict) or not tuned or dense is None:
            continue
        accuracies = {float(s): number(a) for s, a in tuned.items()}
        if None in accuracies.values():
            continue
        reached, falls = free_up_to(accuracies, reference=dense)
        rows.append((name, reached, falls, accuracies))
    if not rows:
        return None
    evidence = "; ".join(f"{name}: free up to {'none' if r is None else f'{r:.1%}'}"
                         + (f", {percent(acc[f])} at {f:.1%}" if f is not None else ", never falls")
                         for name, r, f, acc in rows)
    return evidence, all(f is not None for _, _, f, _ in rows)


def _random_vs_magnitude(p: dict) -> Evidence:
    rows = []
    for s in sorted(set(p.get("random_per_seed") or {}) & set(p.get("magnitude_per_seed") or {}), key=float):
        rnd, mag = central(p["random_per_seed"][s], "median"), central(p["magnitude_per_seed"][s])
        if rnd is not None and mag is not None:
            rows.append((s, rnd, mag))
    if not rows:
        return None
    evidence = "; ".join(f"{float(s):.0%}: {percent(r)} (median) vs {percent(m)}" for s, r, m in rows)
    return evidence, all(r < m for _, r, m in rows)


def _channel(p: dict) -> tuple[float | None, str]:
    """The channel-pruned teacher's speed-up (a timing record), bounded by ``channel.macs_ratio`` (dense / pruned
    multiply-accumulates) when the file has it (:func:`~.section.plausible_speedup`)."""
    return plausible_speedup(get(p, "channel.latency_speedup"), work_ratio=number(get(p, "channel.macs_ratio")))


def _unstructured_speed(p: dict) -> Evidence:
    return speed_evidence(p.get("unstructured_latency_speedup"), lambda s: s < 1.1, work_ratio=1.0,
                          prefix="speed-up over the dense teacher: ")


def _channel_speed(p: dict) -> Evidence:
    if get(p, "channel.latency_speedup") is None:
        return None
    return speed_evidence(get(p, "channel.latency_speedup"), lambda s: s > 1.1,
                          prefix=f"{times(number(get(p, 'channel.params_ratio')))} fewer parameters; speed-up: ",
                          work_ratio=number(get(p, "channel.macs_ratio")))


def _sparse_file(p: dict) -> Evidence:
    stored = p.get("sparse_bytes") or {}
    sparsity, dense = number(stored.get("sparsity")), number(stored.get("dense"))
    files = {f: number(stored.get(f)) for f in ("csr", "bitmask") if number(stored.get(f))}
    if not files or sparsity is None or dense is None or sparsity >= 1:
        return None
    best = min(files, key=files.get)
    ratio = dense / files[best]
    return (f"{', '.join(f'{f} {dense / b:.1f}x' for f, b in files.items())} smaller; "
            f"{1 / (1 - sparsity):.0f}x fewer weights"), ratio < 1 / (1 - sparsity)


SECTION = Section(
    "pruning", tables, points=_points, x_label="sparsity (fraction of weights removed)", aggressive="higher",
    marker="s",
    claims=(
        Claim("Global magnitude pruning to 90% sparsity, with fine-tuning, stays within one point of the dense "
              "teacher.", _magnitude_90),
        Claim("Pruning is free only up to a knee: fine-tuned after global magnitude pruning, the teacher and "
              "LeNet-300-100 each fall more than one point below their dense accuracy within the sparsities "
              "measured.", _knees),
        Claim("Random pruning, the article's criterion, does worse than magnitude pruning at every sparsity "
              "measured.", _random_vs_magnitude),
        Claim("Zeros in a dense kernel buy no speed: the 90%-sparse teacher is not faster than the dense one (less "
              "than 1.1x).", _unstructured_speed),
        Claim("Removing whole channels buys speed with ordinary dense kernels (more than 1.1x).", _channel_speed),
        Claim("A sparse file is smaller than the dense one by less than the factor of weights removed: the positions "
              "of the kept weights cost bytes too.", _sparse_file),
    ))

"""Reading a benchmark results file: headline figures per technique, as a table and as one chart.

Every technique becomes one or more *trade-off points* (:func:`tradeoff_points`): its accuracy and the
accuracy of the model it started from, how many times smaller it is (``compression``: original size /
compressed size) and how many times faster (``speedup``: ratio of median latencies measured side by
side in the same run), each ``None`` where the section does not measure it. Only the keys the issues
define are read, and a missing section (or one that failed) is simply left out.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Results = dict[str, dict[str, Any]]


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


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _point(technique: str, section: str, accuracy: Any, baseline: Any, compression: Any = None,
           speedup: Any = None) -> dict[str, Any]:
    return {"technique": technique, "section": section, "accuracy": accuracy, "baseline_accuracy": baseline,
            "compression": compression, "speedup": speedup}


def tradeoff_points(results: Results) -> list[dict[str, Any]]:
    """One point per technique variant: ``technique, section, accuracy, baseline_accuracy, compression, speedup``.

    Accuracies are fractions in ``[0, 1]``; ``compression`` and ``speedup`` are factors (> 1 is better).
    Sections that are missing or hold an ``error`` give no point. Channel pruning's ``params_ratio`` is read
    as kept / original parameters when below 1 and as original / kept otherwise.
    """
    ok = {name: r for name, r in results.items() if isinstance(r, dict) and "error" not in r}
    points = []
    if d := ok.get("distillation"):
        t_params, s_params = _get(d, "teacher", "params"), _get(d, "student", "params")
        points.append(_point("distilled student", "distillation", _get(d, "student", "kd_accuracy"),
                             _get(d, "teacher", "accuracy"),
                             t_params / s_params if t_params and s_params else None,
                             _get(d, "student", "speedup")))
    if p := ok.get("pruning"):
        points.append(_point("magnitude pruning 90%", "pruning", _get(p, "magnitude", "0.9"),
                             p.get("dense_accuracy"), 10.0, p.get("unstructured_latency_speedup")))
        ratio = _get(p, "channel", "params_ratio")
        points.append(_point("channel pruning", "pruning", _get(p, "channel", "accuracy"), p.get("dense_accuracy"),
                             (1 / ratio if ratio < 1 else ratio) if ratio else None,
                             _get(p, "channel", "latency_speedup")))
    if q := ok.get("quantization"):
        points.append(_point("int8 PTQ", "quantization", _get(q, "ptq", "int8"), q.get("fp32_accuracy"),
                             q.get("int8_size_ratio"), q.get("int8_latency_speedup")))
    if a := ok.get("acceleration"):
        if "fusion" in a:
            points.append(_point("Conv-BN folding", "acceleration", _get(a, "fusion", "accuracy"),
                                 _get(a, "fusion", "dense_accuracy"), _get(a, "fusion", "params_ratio"),
                                 _get(a, "fusion", "speedup")))
        if "low_rank" in a:
            points.append(_point(f"low-rank (rank {_get(a, 'low_rank', 'rank')})", "acceleration",
                                 _get(a, "low_rank", "accuracy"), _get(a, "low_rank", "dense_accuracy"),
                                 _get(a, "low_rank", "params_ratio"), _get(a, "low_rank", "speedup")))
    if c := ok.get("deep_compression"):
        points.append(_point("Deep Compression", "deep_compression", c.get("compressed_accuracy"),
                             c.get("dense_accuracy"), c.get("compression_ratio"), None))
    return points


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if kind == "acc" else f"{value:.2f}x"


def format_table(results: Results) -> str:
    """A markdown table of the headline figures of each technique, then one line per section (time, errors)."""
    lines = ["| technique | accuracy | baseline | smaller | faster |", "|---|---|---|---|---|"]
    for p in tradeoff_points(results):
        lines.append(f"| {p['technique']} | {_fmt(p['accuracy'], 'acc')} | {_fmt(p['baseline_accuracy'], 'acc')} "
                     f"| {_fmt(p['compression'], 'x')} | {_fmt(p['speedup'], 'x')} |")
    lines.append("")
    for name, r in results.items():
        seconds = r.get("seconds") if isinstance(r, dict) else None
        status = f"FAILED: {r['error']}" if isinstance(r, dict) and "error" in r else "ok"
        lines.append(f"- {name}: {status}" + (f" ({seconds:.1f} s)" if seconds is not None else ""))
    return "\n".join(lines)


def plot_tradeoffs(results: Results, ax=None):
    """The closing chart: every technique's accuracy change against how much smaller and faster it made the model.

    Two panels side by side when ``ax`` is ``None`` (x: compression factor, then speed-up, both log scale;
    y: accuracy change in points against the technique's own baseline); pass a pair of axes to draw into
    them, or a single axis for the compression panel only (marker area then grows with the speed-up).
    Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    points = [p for p in tradeoff_points(results) if p["accuracy"] is not None and p["baseline_accuracy"] is not None]
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    else:
        axes = list(ax) if isinstance(ax, (list, tuple)) or hasattr(ax, "__len__") else [ax]
        fig = axes[0].figure
    panels = [("compression", "times smaller (parameters or serialized bytes, log scale)")]
    if len(axes) > 1:
        panels.append(("speedup", "times faster (ratio of median CPU latencies, log scale)"))
    times = FuncFormatter(lambda value, _: f"{value:g}x")
    markers = {"distillation": "o", "pruning": "s", "quantization": "D", "acceleration": "^",
               "deep_compression": "*"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (key, label) in zip(axes, panels):
        for i, p in enumerate(points):
            x = p[key] if p[key] is not None else 1.0
            size = 60 if len(axes) > 1 or not p["speedup"] else 60 * max(p["speedup"], 0.5) ** 1.5
            axis.scatter(x, 100 * (p["accuracy"] - p["baseline_accuracy"]), s=size,
                         marker=markers.get(p["section"], "o"), color=colors[i % len(colors)],
                         label=p["technique"], edgecolor="black", linewidth=0.5, zorder=3,
                         alpha=1.0 if p[key] is not None else 0.35)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.axvline(1, color="grey", linewidth=0.8)
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(times)
        axis.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if f"{v:g}"[0] in "25" else ""))
        axis.set_xlabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("accuracy change vs. baseline (points)")
    axes[0].set_title("Accuracy vs. size" + ("" if len(axes) > 1 else " (marker area ~ speed-up)"))
    if len(axes) > 1:
        axes[1].set_title("Accuracy vs. speed (faded: not measured, drawn at 1x)")
    if points:
        axes[-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig

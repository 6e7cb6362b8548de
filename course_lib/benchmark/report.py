"""Reading a benchmark results file: headline figures per technique, as a table and as one chart.

Every technique becomes one or more *trade-off points* (:func:`tradeoff_points`): its accuracy and the
accuracy of the model it started from, how many times smaller it is (``compression``: original size /
compressed size, as its section measures it) and how many times faster (``speedup``: ratio of median
latencies measured side by side in the same run), each ``None`` where the section does not measure it. A
missing section (or one that failed) is simply left out. :func:`get`, :func:`percent`, :func:`times` and
:func:`markdown_table` are the helpers ``book/results.ipynb`` builds its tables with.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._tables import markdown_table
from . import SECTIONS

Results = dict[str, dict[str, Any]]
MISSING = "not measured"
MARKER_AREA = 60  # points^2 of a marker in plot_tradeoffs
AREA_EXPONENT = 1.5  # single-panel chart: marker area grows like speed-up ** AREA_EXPONENT
MIN_SPEEDUP_SHOWN = 0.5  # ... from this speed-up on (slower still gets this size)

__all__ = ["SECTIONS", "Results", "load_results", "get", "percent", "times", "markdown_table", "ok_sections",
           "tradeoff_points", "format_table", "plot_tradeoffs"]


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


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals (``0.9812 -> "98.1%"``), or ``"not measured"``."""
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def times(value: float | None, digits: int = 2) -> str:
    """A factor with ``digits`` decimals (``2.2 -> "2.20x"``), or ``"not measured"``."""
    return MISSING if value is None else f"{value:.{digits}f}x"


def ok_sections(results: Results) -> Results:
    """The sections of ``results`` that ran (present, and without an ``error`` entry)."""
    return {name: r for name, r in results.items() if isinstance(r, dict) and "error" not in r}


def _point(technique: str, section: str, accuracy: Any, baseline: Any, compression: Any = None,
           speedup: Any = None) -> dict[str, Any]:
    return {"technique": technique, "section": section, "accuracy": accuracy, "baseline_accuracy": baseline,
            "compression": compression, "speedup": speedup}


def _ratio(numerator: Any, denominator: Any) -> float | None:
    return numerator / denominator if numerator and denominator else None


def _sparse_point(p: dict[str, Any]) -> dict[str, Any]:
    """Magnitude pruning: its compression is dense bytes / bytes of the smaller measured sparse file."""
    stored = p.get("sparse_bytes") or {}
    formats = [f for f in ("csr", "bitmask") if stored.get(f)]
    sparsity = stored.get("sparsity")
    best = min(formats, key=stored.get) if formats else None
    label = f"magnitude pruning {sparsity:.0%}" if sparsity is not None else "magnitude pruning"
    return _point(f"{label} ({best})" if best else label, "pruning",
                  (p.get("magnitude") or {}).get(str(sparsity)), p.get("dense_accuracy"),
                  _ratio(stored.get("dense"), stored.get(best)) if best else None,
                  p.get("unstructured_latency_speedup"))


def tradeoff_points(results: Results) -> list[dict[str, Any]]:
    """One point per technique variant: ``technique, section, accuracy, baseline_accuracy, compression, speedup``.

    Accuracies are fractions in ``[0, 1]``; ``compression`` and ``speedup`` are factors (> 1 is better), all
    as measured: parameters ratios (original / compressed), serialized bytes (dense / compressed; for
    unstructured pruning the smaller of its CSR and bitmask files, named in the label), median latencies.
    Sections that are missing or hold an ``error`` give no point.
    """
    ok = ok_sections(results)
    points = []
    if d := ok.get("distillation"):
        points.append(_point("distilled student", "distillation", get(d, "student.kd_accuracy"),
                             get(d, "teacher.accuracy"), _ratio(get(d, "teacher.params"), get(d, "student.params")),
                             get(d, "student.speedup")))
    if p := ok.get("pruning"):
        points.append(_sparse_point(p))
        points.append(_point("channel pruning", "pruning", get(p, "channel.accuracy"), p.get("dense_accuracy"),
                             get(p, "channel.params_ratio"), get(p, "channel.latency_speedup")))
    if q := ok.get("quantization"):
        points.append(_point("int8 PT2E + torch.compile", "quantization", get(q, "pt2e.accuracy"),
                             get(q, "pt2e.fp32_accuracy"), get(q, "pt2e.size_ratio"), get(q, "pt2e.speedup_vs_eager")))
    if a := ok.get("acceleration"):
        if "fusion" in a:
            points.append(_point("Conv-BN folding", "acceleration", get(a, "fusion.accuracy"),
                                 get(a, "fusion.dense_accuracy"), get(a, "fusion.params_ratio"),
                                 get(a, "fusion.speedup")))
        if "low_rank" in a:
            points.append(_point(f"low-rank (rank {get(a, 'low_rank.rank')})", "acceleration",
                                 get(a, "low_rank.accuracy"), get(a, "low_rank.dense_accuracy"),
                                 get(a, "low_rank.params_ratio"), get(a, "low_rank.speedup")))
    if c := ok.get("deep_compression"):
        points.append(_point("Deep Compression", "deep_compression", c.get("compressed_accuracy"),
                             c.get("dense_accuracy"), c.get("compression_ratio"), None))
    return points


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
            size = (MARKER_AREA if len(axes) > 1 or not p["speedup"]
                    else MARKER_AREA * max(p["speedup"], MIN_SPEEDUP_SHOWN) ** AREA_EXPONENT)
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

"""One point per technique: the accuracy / size / speed trade-off of every section, as a table and a chart."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .._tables import markdown_table
from .figures import REGISTRY
from .results import Results, ok_sections, percent, times

MARKER_AREA = 60  # points^2 of a marker in plot_tradeoffs


def tradeoff_points(results: Results) -> list[dict[str, Any]]:
    """One point per technique variant: ``technique, section, accuracy, baseline_accuracy, compression, speedup``.

    Accuracies are fractions in ``[0, 1]``, each against the model the technique started from (the student's
    against the teacher's, so that the scratch and the distilled student sit one above the other);
    ``compression`` and ``speedup`` are factors (> 1 is better), as measured: parameter ratios, serialized bytes
    (for unstructured pruning the smaller of its CSR and bitmask files, named in the label), speed-ups as the
    median paired ratio of a timing record (int8 against compiled and against eager fp32). ``None`` where the file
    does not measure it, and for a speed-up measured unreliably or implausible
    (:func:`~course_lib.benchmark.figures.section.plausible_speedup`): such a point is drawn faded at 1x.
    Sections that are missing or hold an ``error`` give no point; each section says its points
    (:attr:`~course_lib.benchmark.figures.Section.points`).
    """
    ok = ok_sections(results)
    return [{"technique": p.technique, "section": name, **{k: v for k, v in asdict(p).items() if k != "technique"}}
            for name, section in REGISTRY.items() if name in ok and section.points is not None
            for p in section.points(ok[name])]


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
    faded at 1x on that panel. Each section's marker is its own; where a section names two of its techniques as
    an ``arrow`` (the scratch and the distilled student), an arrow joins them, its length what the technique
    gains. Returns the figure.
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
              ("speedup", "times faster (median paired ratio of CPU latencies, log scale)")][:len(axes)]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    factor = FuncFormatter(lambda value, _: f"{value:g}x")
    for axis, (key, label) in zip(axes, panels):
        xy = {}
        for i, p in enumerate(found):
            x, y = p[key] if p[key] is not None else 1.0, 100 * (p["accuracy"] - p["baseline_accuracy"])
            xy[p["technique"]] = (x, y)
            section = REGISTRY[p["section"]]
            axis.scatter(x, y, s=MARKER_AREA * section.marker_scale, marker=section.marker,
                         color=colors[i % len(colors)], label=p["technique"], edgecolor="black", linewidth=0.5,
                         zorder=3, alpha=1.0 if p[key] is not None else 0.35)
        for section in REGISTRY.values():
            if section.arrow is not None and set(section.arrow) <= xy.keys():
                (x0, y0), (x1, y1) = (xy[t] for t in section.arrow)
                axis.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                              arrowprops={"arrowstyle": "->", "color": "black", "linewidth": 1})
                axis.annotate(f"{section.name} {y1 - y0:+.2f}", (x1, max(y0, y1)), textcoords="offset points",
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
        axes[1].set_title("Accuracy vs. speed (faded: speed not measured reliably, drawn at 1x)")
    if found:
        axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: no point hidden
    fig.tight_layout()
    return fig

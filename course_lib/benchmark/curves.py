"""Accuracy curves in a results file: against sparsity, bit width or label fraction, wherever a section records
one (:func:`find_curves`), how far along each stays free (:func:`where_free`), and their plot
(:func:`plot_section_curves`)."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt

from ..plotting import plot_curves
from .figures import REGISTRY
from .knee import free_up_to
from .results import FREE_POINTS, Results, central, key_number, number, numbers, ok_sections, percent

Curve = dict[float, float]
X_AXES = ("bits", "sparsities", "sparsity", "fractions")  # keys whose list of numbers is the x of a subtree
PANEL_LINES = 6  # curves drawn in one panel at most
LABELS = {"per_channel": "weights per channel", "per_tensor": "weights per tensor"}  # what a key means, for a reader


def _walk(node: Any, path: tuple[str, ...], x: list[float] | None) -> Iterator[tuple[tuple[str, ...], Curve]]:
    if isinstance(node, dict):
        keyed = {key_number(k): v for k, v in node.items()}
        if len(node) >= 2 and None not in keyed:
            ys = {k: number(v) if number(v) is not None else central(v) for k, v in keyed.items()}
            if None not in ys.values():  # {x: accuracy or [runs]}: a curve
                yield path, dict(sorted(ys.items()))
                return
        axis = next((numbers(node[k]) for k in X_AXES if numbers(node.get(k))), x)
        for key, value in node.items():
            if key in X_AXES or str(key).endswith("_per_seed") or key in ("selection", "machine", "seconds"):
                continue
            yield from _walk(value, (*path, str(key)), axis)
    elif x is not None and numbers(node) is not None and len(node) == len(x) and len(x) >= 2:
        yield path, dict(sorted(zip(x, numbers(node))))


def find_curves(results: Results, section: str) -> dict[str, Curve]:
    """Every accuracy curve recorded in ``section``'s ``curve`` entry: ``{"a / b": {x: accuracy}}``.

    A curve is a mapping whose keys are numbers written as strings (``{"0.9": 0.98}``) and whose values are
    accuracies or lists of runs (averaged), or a list of accuracies beside a list of x values (a key among
    :data:`X_AXES` of an enclosing mapping, e.g. ``{"bits": [8, 4], "ptq": [0.98, 0.97]}``). The name is the
    path of keys below ``curve``. ``*_per_seed`` lists are skipped (their mean is the curve).
    """
    figures = ok_sections(results).get(section) or {}
    return {" / ".join(path): curve for path, curve in _walk(figures.get("curve"), (), None)}


def curve_label(name: str) -> str:
    """``name`` (a :func:`find_curves` name) as a reader sees it: the quantization sweeps' ``per_channel`` and
    ``per_tensor`` keys name the *weights'* scales (an ``activations`` sweep keeps its weights per channel), so they
    read "weights per channel" and "weights per tensor"."""
    return " / ".join(LABELS.get(key, key) for key in name.split(" / "))


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


def where_free(results: Results, section: str, *, within: float = FREE_POINTS) -> list[str]:
    """For each curve of ``section``, one sentence: up to which setting it costs at most ``within`` of accuracy
    (:func:`~course_lib.benchmark.knee.free_up_to`), and what the next setting costs. The reference is the
    unchanged model's accuracy where the file records it beside the curve (a ``dense`` key,
    :func:`curve_baseline`), else the mildest setting's."""
    sentences = []
    aggressive = REGISTRY[section].aggressive if section in REGISTRY else "higher"
    for name, curve in find_curves(results, section).items():
        baseline = curve_baseline(results, section, name)
        reached, falls = free_up_to(curve, aggressive=aggressive, within=within, reference=baseline)
        reference = (f"{percent(baseline)} (unchanged model)" if baseline is not None else
                     f"{percent(curve[min(curve) if aggressive == 'higher' else max(curve)])} (mildest setting)")
        text = (f"{curve_label(name)}: within {100 * within:g} point of {reference} "
                + (f"up to {reached:g}" if reached is not None else "at no setting measured"))
        sentences.append(text + (f"; at {falls:g}: {percent(curve[falls])}" if falls is not None else
                                 ", the last setting measured"))
    return sentences


def plot_section_curves(results: Results, section: str, *, max_lines: int = PANEL_LINES):
    """Every curve of ``section`` (:func:`find_curves`), one panel per group of at most ``max_lines`` sharing their
    leading keys, each drawn by :func:`course_lib.plotting.plot_curves`; x: the setting, y: test accuracy (%).
    Returns the figure, or ``None`` if there is no curve."""
    curves = find_curves(results, section)
    if not curves:
        return None
    groups: dict[str, dict[str, Curve]] = {}
    for name, curve in curves.items():
        parts = curve_label(name).split(" / ")
        group, label = (" / ".join(parts[:-2]), " ".join(parts[-2:])) if len(parts) > 2 else ("", name)
        groups.setdefault(group, {})[label] = curve
    panels = [(g, dict(list(c.items())[i:i + max_lines]))
              for g, c in groups.items() for i in range(0, len(c), max_lines)]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, layout="constrained")
    x_label = REGISTRY[section].x_label if section in REGISTRY else "setting"
    for ax, (group, lines) in zip(axes.flat, panels):
        plot_curves(None, {label: {x: 100 * y for x, y in curve.items()} for label, curve in lines.items()},
                    x_label, "test accuracy (%)", title=group or section, ax=ax)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    return fig

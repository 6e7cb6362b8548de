"""Plots shared by the chapters: training curves, metric curves and image grids (matplotlib)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._validation import check_int, check_tensor
from .training import History

# (marker, line style) per curve, in turn: the curves of one plot read apart without color too
STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", "-"), ("x", "--"), ("P", ":"), ("*", "-."))


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 3.5)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_curves(x: Sequence[float] | None, curves: Mapping[str, Sequence[float] | Mapping[float, float]],
                xlabel: str, ylabel: str, *, title: str | None = None, ax: Axes | None = None,
                logx: bool = False) -> Axes:
    """One line per entry of ``curves``, each with its own marker and line style (:data:`STYLES`, in turn), and a
    legend: label -> y values over ``x``, or, with ``x`` ``None``, label -> ``{x: y}`` (curves measured at
    different points)."""
    if not isinstance(curves, Mapping):
        raise TypeError(f"curves must be a mapping {{label: y values}}, got {type(curves).__name__}")
    ax = _axes(ax)
    for i, (label, y) in enumerate(curves.items()):
        if x is None:
            if not isinstance(y, Mapping):
                raise TypeError(f"curve {label!r} must be a mapping {{x: y}} when x is None, got {type(y).__name__}")
            xs, y = list(y), list(y.values())
        else:
            if isinstance(y, Mapping):
                raise TypeError(f"curve {label!r} must be a sequence of y values over x, got a mapping")
            if len(y) != len(x):
                raise ValueError(f"curve {label!r} has {len(y)} values but x has {len(x)}")
            xs = x
        marker, linestyle = STYLES[i % len(STYLES)]
        ax.plot(xs, y, marker=marker, linestyle=linestyle, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    return ax


def plot_history(history: History, title: str | None = None) -> Figure:
    """Training loss and (if recorded) validation accuracy in % per epoch, side by side."""
    if not isinstance(history, History):
        raise TypeError(f"history must be a course_lib.training.History, got {type(history).__name__}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    epochs = list(range(1, len(history.loss) + 1))
    plot_curves(epochs, {"train": history.loss}, "epoch", "training loss (cross-entropy)", ax=left)
    if history.val_accuracy:
        plot_curves(epochs, {"validation": [100 * a for a in history.val_accuracy]}, "epoch",
                    "validation accuracy (%)", ax=right)
    else:
        right.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def show_images(images: torch.Tensor, labels: Sequence[str] | None = None, *, cols: int = 10,
                title: str | None = None) -> Figure:
    """A grid of images ``(N, C, H, W)`` in ``[0, 1]`` (grey or RGB), each with its label as a title if given,
    under an optional overall ``title``."""
    check_tensor(images, "images")
    check_int(cols, "cols", 1)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.05), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            img = images[i].permute(1, 2, 0).squeeze(-1).cpu().numpy()
            ax.imshow(img, cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig

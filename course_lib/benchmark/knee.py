"""Where an accuracy curve stops being free: its knee (:func:`free_up_to`), for sparsity as for bit width.

The one implementation the benchmark (the pruning section's ``knee`` entries, the claims, the results page) and
the chapters use::

    from course_lib.benchmark.knee import free_up_to
    free_up_to({"0.5": 0.981, "0.9": 0.978, "0.99": 0.90}, reference=0.982)         # ("0.9", "0.99")
    free_up_to({8: 0.99, 4: 0.985, 2: 0.6}, reference=0.99, aggressive="lower")     # (4, 2)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._validation import check_number
from .results import FREE_POINTS, key_number


def free_up_to(curve: Mapping[Any, float], *, reference: float | None = None, within: float = FREE_POINTS,
               aggressive: str = "higher") -> tuple[Any, Any]:
    """How far along ``curve`` the accuracy stays within ``within`` of ``reference``, and where it first falls.

    Args:
        curve: setting -> accuracy (a fraction). A setting is a number or a key that reads as one (``"0.9"``, as
            in the benchmark file); it is returned as given.
        reference: the accuracy that is free, e.g. the unpruned model's; default: the mildest setting's.
        within: how far below ``reference`` still counts as free, a fraction (0.01: one point).
        aggressive: ``"higher"`` when a higher setting removes more (sparsity), ``"lower"`` when a lower one does
            (bits).

    Returns:
        ``(knee, falls)``: the most aggressive setting ``s`` such that every setting up to ``s`` (from the mildest)
        has accuracy ``>= reference - within``, and the first setting past it, which falls below. ``knee`` is
        ``None`` when the mildest setting already falls, ``falls`` is ``None`` when the curve never falls.
        Requiring every milder setting to pass keeps one lucky point past a fall from being read as the knee.
    """
    if not isinstance(curve, Mapping):
        raise TypeError(f"curve must be a mapping of setting to accuracy, got {type(curve).__name__}")
    if not curve:
        raise ValueError("curve must hold at least one (setting, accuracy) point, got an empty mapping")
    if aggressive not in ("higher", "lower"):
        raise ValueError(f"aggressive must be 'higher' or 'lower', got {aggressive!r}")
    check_number(within, "within", 0.0, 1.0)
    settings = {key: key_number(key) for key in curve}
    unreadable = [key for key, x in settings.items() if x is None]
    if unreadable:
        raise ValueError(f"curve must have numbers as settings (such as 0.9 or '0.9'), got {unreadable[0]!r}")
    for key in curve:
        check_number(curve[key], f"curve[{key!r}]")
    order = sorted(curve, key=settings.get, reverse=aggressive == "lower")
    reference = curve[order[0]] if reference is None else check_number(reference, "reference", 0.0, 1.0)
    reached = None
    for key in order:
        if curve[key] < reference - within:
            return reached, key
        reached = key
    return reached, None

"""Reading a benchmark results file and formatting its figures.

``python -m course_lib.benchmark`` writes ``{section: figures}``; each section module documents its keys. The
helpers here take the file as it comes: a missing section, a section that failed (an ``error`` entry) or a
missing key reads as ``None`` and shows as "not measured" (:data:`MISSING`), never guessed or filled in.

Conventions of the file, relied on here: accuracies are fractions in ``[0, 1]``; a key ``X_per_seed`` lists
the runs that ``X`` summarizes; ratios (``*ratio``, ``speedup*``) are original / compressed, > 1 is better.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

Results = dict[str, dict[str, Any]]
MISSING = "not measured"
FREE_POINTS = 0.01  # "free": within one point of accuracy of the reference


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


def key_number(key: Any) -> float | None:
    """A key of the file as a number (``"0.9"`` -> ``0.9``), or ``None`` if it is not one."""
    try:
        return float(key)
    except (TypeError, ValueError):
        return None


def numbers(values: Any) -> list[float] | None:
    """A non-empty list of numbers as floats, or ``None`` if ``values`` is anything else."""
    if not isinstance(values, list) or not values:
        return None
    found = [number(v) for v in values]
    return None if None in found else found


def first(*values: Any) -> float | None:
    """The first of ``values`` that is a number (``central(runs)`` if measured, else a recorded mean...)."""
    return next((number(v) for v in values if number(v) is not None), None)


def central(values: Any, how: str = "mean") -> float | None:
    """The ``"mean"`` or ``"median"`` of a list of numbers (``None`` if it is not one)."""
    found = numbers(values)
    if found is None:
        return None
    return statistics.fmean(found) if how == "mean" else statistics.median(found)


def ratio_of(numerator: Any, denominator: Any) -> float | None:
    """``numerator / denominator``, or ``None`` unless both are non-zero numbers."""
    a, b = number(numerator), number(denominator)
    return a / b if a and b else None


def difference(a: Any, b: Any) -> float | None:
    """``a - b``, or ``None`` unless both are numbers."""
    a, b = number(a), number(b)
    return None if a is None or b is None else a - b


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals (``0.9812 -> "98.1%"``), or ``"not measured"``."""
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def points(value: float | None, digits: int = 2) -> str:
    """A difference of two fractions in percentage points, signed (``-0.0113 -> "-1.13 points"``)."""
    return MISSING if value is None else f"{round(100 * value, digits) + 0.0:+.{digits}f} points"  # no "-0.00"


def times(value: float | None, digits: int = 2) -> str:
    """A factor with ``digits`` decimals (``2.2 -> "2.20x"``), or ``"not measured"``."""
    return MISSING if value is None else f"{value:.{digits}f}x"


def runs(values: Any, digits: int = 1) -> str:
    """Each run of a per-seed list as a percentage: ``"97.1, 97.3, 97.3%"``."""
    found = numbers(values)
    return MISSING if found is None else ", ".join(f"{100 * v:.{digits}f}" for v in found) + "%"


def mean_runs(values: Any) -> str:
    """The mean of a per-seed list and its runs: ``"97.23% (mean of 97.1, 97.3, 97.3%)"``."""
    mean = central(values)
    return MISSING if mean is None else f"{percent(mean, 2)} (mean of {runs(values)})"

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..timing import Latency

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


def is_timing(value: Any) -> bool:
    """Whether ``value`` is a speed-up as :func:`course_lib.timing.timing_record` stores it."""
    return isinstance(value, dict) and {"speedup", "p10", "p90", "reliable", "why"} <= value.keys()


def speedup_of(record: Any) -> float | None:
    """The speed-up of a :func:`course_lib.timing.timing_record` dict (the median paired ratio ``baseline time /
    candidate time``) when it was measured reliably; ``None`` when it was not, when it is missing, and for a bare
    number (a file written before speed-ups carried their spread and load: nothing says it can be trusted)."""
    if not is_timing(record) or record["reliable"] is not True:
        return None
    return number(record["speedup"])


def unreliable_why(record: Any) -> str | None:
    """Why a stored speed-up cannot be stated: ``None`` if it can (:func:`speedup_of` gives it) or if nothing was
    stored, else the reason (the broken reliability rules, or that a bare number carries no spread and load)."""
    if record is None or speedup_of(record) is not None:
        return None
    if is_timing(record):
        return str(record["why"]) or "flagged unreliable"
    return "stored without its spread and load (an old file: re-run the benchmark)"


def speed(record: Any, digits: int = 2) -> str:
    """A stored speed-up as the book shows it: ``"2.53x (p10 2.41, p90 2.66)"`` when reliable; ``"not measured
    reliably: <why> (p10 0.15x, p90 0.40x)"`` when not (the spread of the paired ratios, never the median as a
    fact); ``"not measured"`` when missing."""
    if record is None:
        return MISSING
    ratio, why = speedup_of(record), unreliable_why(record)
    if ratio is not None:
        return f"{ratio:.{digits}f}x (p10 {record['p10']:.{digits}f}, p90 {record['p90']:.{digits}f})"
    spread = (f" (p10 {record['p10']:.{digits}f}x, p90 {record['p90']:.{digits}f}x)"
              if is_timing(record) and number(record["p10"]) is not None and number(record["p90"]) is not None else "")
    return f"not measured reliably: {why}{spread}"


def latency(row: Any, digits: int = 2) -> str:
    """A stored latency (a dict with ``median_ms``, ``p10_ms``, ``p90_ms``, ``reliable``, ``why``: a row of the
    ``threads`` or ``batching`` tables, a variant of a timing record) as ``"12.50 ms (p10 12.10, p90 13.00)"``, or
    ``"not measured reliably: <why>"``, or ``"not measured"``."""
    if not isinstance(row, dict) or number(row.get("median_ms")) is None:
        return MISSING
    if row.get("reliable") is not True:
        return f"not measured reliably: {row.get('why') or 'stored without its spread and load'}"
    return f"{row['median_ms']:.{digits}f} ms (p10 {row['p10_ms']:.{digits}f}, p90 {row['p90_ms']:.{digits}f})"


def latency_row(measured: Latency) -> dict[str, Any]:
    """One measured variant (:class:`course_lib.timing.Latency`) as a row of the file, what :func:`latency` shows:
    ``median_ms``, ``p10_ms``, ``p90_ms``, ``cpu_wall_ratio`` (process CPU time / wall time), ``reliable``, ``why``."""
    return {"median_ms": measured.median_ms, "p10_ms": measured.p10_ms, "p90_ms": measured.p90_ms,
            "cpu_wall_ratio": measured.cpu_wall_ratio, "reliable": measured.reliable, "why": measured.why}


def unreliable_timings(figures: Any, path: str = "") -> list[tuple[str, str]]:
    """Every timing in ``figures`` (a section, or the whole file) flagged unreliable: ``(dotted path, why)`` for
    each :func:`course_lib.timing.timing_record` and each latency row (``reliable`` beside ``median_ms``) whose
    ``reliable`` is not ``True``, in the file's order; list items are numbered (``threads.rows.1``)."""
    if isinstance(figures, list):
        return [found for i, item in enumerate(figures) for found in unreliable_timings(item, f"{path}.{i}")]
    if not isinstance(figures, dict):
        return []
    if is_timing(figures) or {"median_ms", "reliable"} <= figures.keys():
        return [] if figures["reliable"] is True else [(path.lstrip("."), str(figures.get("why")) or "flagged")]
    return [found for key, value in figures.items() for found in unreliable_timings(value, f"{path}.{key}")]

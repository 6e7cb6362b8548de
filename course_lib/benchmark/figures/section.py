"""What the report knows about one benchmark section: how its figures read as tables, the book's claims they
check, its points on the trade-off chart, and how its curves are drawn (:class:`Section`); and the plausibility
rules every stored speed-up passes before a claim rests on it (:func:`plausible_speedup`).

Plausibility (thresholds :data:`WORK_SLACK`, :data:`INT8_GAIN`, :data:`THREAD_SLOWDOWN`): a candidate that does
``w`` times less work (multiply-accumulates, or ``w`` threads sharing the same work) with kernels ``g`` times
faster per operation (``g = 1`` for the same kernels, :data:`INT8_GAIN` for int8 against fp32) is at most
``w * g`` times faster; caches can add a little (a smaller model that fits in them), so a speed-up above
``w * g * WORK_SLACK`` is flagged as implausible, as is more threads on as many cores running slower than
``1 / THREAD_SLOWDOWN`` of one thread's speed (what a loaded machine does to threads that wait on each other at
every operator). A flagged figure is, like one measured unreliably, shown with its reason and never checked
against a claim.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..results import speed, speedup_of

Evidence = tuple[str, bool | None] | None
"""(what the file says, whether the claim holds: ``None`` when the figure it needs was not measured reliably or is
implausible); ``None``: the file lacks the figure."""

WORK_SLACK = 2.0
"""How many times a speed-up may exceed what its ratio of work allows before it is flagged (cache effects)."""
INT8_GAIN = 4.0
"""How many times more int8 than fp32 multiply-accumulates one vector instruction does (VNNI: 4 bytes per 32-bit
lane); the most int8 kernels can gain per operation."""
THREAD_SLOWDOWN = 2.0
"""More threads on at least as many cores slower than this factor is flagged (not a property of the model)."""


def plausible_speedup(record: Any, *, work_ratio: float | None = None, gain: float = 1.0,
                      threads: int | None = None) -> tuple[float | None, str]:
    """``(speed-up, how the book shows it)`` of a stored :func:`course_lib.timing.timing_record`; the speed-up is
    ``None`` when it was not measured reliably or breaks a plausibility rule (the text then says why).

    ``work_ratio``: baseline / candidate multiply-accumulates (``None``: not bounded); ``gain``: how much faster
    the candidate's kernels are per operation; ``threads``: the candidate's threads against the baseline's one,
    on at least as many cores (bounds the speed-up by ``threads * WORK_SLACK`` and by ``1 / THREAD_SLOWDOWN``).
    """
    ratio, text = speedup_of(record), speed(record)
    if ratio is None:
        return None, text
    limit = None if work_ratio is None else work_ratio * gain * WORK_SLACK
    if threads is not None:
        limit = threads * WORK_SLACK
        if ratio < 1 / THREAD_SLOWDOWN:
            return None, (f"implausible: {text} with {threads} threads on {threads}+ cores, more than "
                          f"{THREAD_SLOWDOWN:g}x slower than one thread (a loaded machine)")
    if limit is not None and ratio > limit:
        why = (f"{threads} threads" if threads is not None else
               f"{work_ratio:.2f}x less work" + (f" on kernels {gain:g}x faster per operation" if gain != 1 else ""))
        return None, f"implausible: {text} from {why} (at most {limit:.2f}x allowed)"
    return ratio, text


def speed_evidence(record: Any, holds: Callable[[float], bool], *, prefix: str = "", **bounds: Any) -> Evidence:
    """The evidence of a claim about one stored speed-up: ``None`` if the file lacks it; ``(text, None)`` if it was
    not measured reliably or is implausible (:func:`plausible_speedup`, ``bounds`` are its keywords); else
    ``(text, holds(speed-up))``. ``prefix`` starts the text."""
    if record is None:
        return None
    ratio, text = plausible_speedup(record, **bounds)
    return prefix + text, None if ratio is None else holds(ratio)




@dataclass(frozen=True)
class Claim:
    """A claim of the book that the benchmark measures: ``check(section figures)`` gives its evidence."""

    statement: str
    check: Callable[[dict[str, Any]], Evidence]


@dataclass(frozen=True)
class Point:
    """One technique on the trade-off chart: its accuracy and the accuracy of the model it started from
    (fractions), and how many times smaller and faster it made that model (``None``: not measured)."""

    technique: str
    accuracy: float | None
    baseline_accuracy: float | None
    compression: float | None = None
    speedup: float | None = None


@dataclass(frozen=True)
class Section:
    """A section of the benchmark (``course_lib.benchmark.<name>`` runs it) as the report reads it.

    ``tables(figures)``: Markdown tables of its figures; ``claims``: the book's claims its figures check, made
    on its chapter's page; ``points(figures)``: its techniques on the trade-off chart, drawn with ``marker``
    scaled by ``marker_scale``, and an arrow between the two techniques of ``arrow`` labelled with the section's
    name. Its accuracy curves (if any) have ``x_label`` on the x axis; ``aggressive`` says whether a ``"higher"``
    or a ``"lower"`` setting removes more (sparsity, bits).
    """

    name: str
    tables: Callable[[dict[str, Any]], list[str]]
    claims: tuple[Claim, ...] = ()
    points: Callable[[dict[str, Any]], list[Point]] | None = None
    x_label: str = "setting"
    aggressive: str = "higher"
    marker: str = "o"
    marker_scale: float = 1.0
    arrow: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.aggressive not in ("higher", "lower"):
            raise ValueError(f"aggressive must be 'higher' or 'lower', got {self.aggressive!r}")

    @property
    def chapter(self) -> str:
        """The book's page about the section, as a ``{doc}`` target from ``book/results.ipynb``."""
        return f"code/{self.name}"

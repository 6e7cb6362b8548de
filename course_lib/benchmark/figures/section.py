"""What the report knows about one benchmark section: how its figures read as tables, the book's claims they
check, its points on the trade-off chart, and how its curves are drawn (:class:`Section`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Evidence = tuple[str, bool] | None  # (what the file says, whether the claim holds); None: not measured


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

"""What the sandboxes said about one exercise, raw: the runner records it, the scoring judges it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .status import Status


@dataclass
class CaseOutcome:
    """What happened to one case: ``status`` ANSWERED with the decoded ``result``, or why not."""

    status: Status
    result: dict[str, Any] | None = None
    detail: str = ""


@dataclass
class Observations:
    """Everything the sandboxes said about one exercise (raw: the grader judges it)."""

    status: Status = Status.OK
    detail: str = ""
    hidden_detail: str = ""
    cases: dict[tuple[str, int], CaseOutcome] = field(default_factory=dict)
    definition_errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

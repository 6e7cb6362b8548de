"""How long and how much the learner's code may use while a notebook is graded (no torch here: the command
line reads its defaults without importing it)."""
from __future__ import annotations

from dataclasses import dataclass

from .confine import Limits


@dataclass(frozen=True)
class TimeLimits:
    """Seconds allowed to the learner's code while an exercise is tested.

    ``case_cpu``/``case_wall``: one case, in CPU and in wall-clock seconds; ``exercise``: the sum
    charged to an exercise's cases (a finished case is charged its CPU time, a stopped one the
    limit that stopped it); ``start``: starting a sandbox (Python and torch), ``definitions``: the
    notebook's definitions in it. ``message_bytes`` caps one answer of the sandbox.
    """

    case_cpu: float = 5.0
    case_wall: float = 10.0
    exercise: float = 20.0
    start: float = 60.0
    definitions: float = 10.0
    message_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        for name in ("case_cpu", "case_wall", "exercise", "start", "definitions"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Options:
    """How to grade: time limits of the sandboxes, memory of learner processes, execution, user."""

    limits: TimeLimits = TimeLimits()
    memory: Limits = Limits()
    execute: bool = True
    cell_timeout: float = 15.0
    execution_timeout: float = 40.0
    user: str = "auto"

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "execution_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)!r}")

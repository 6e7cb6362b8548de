"""How long and how much the learner's code may use while a notebook is graded (no torch here: the command
line reads its defaults without importing it).

Each kind of limit has its own field of :class:`Options`: time (:class:`TimeLimits`), memory (:class:`Memory`),
the size of a file a learner process writes (``file_bytes``). :meth:`Options.process_limits` turns them into
the resource limits of one learner process (:class:`~.confine.ProcessLimits`), with the CPU seconds and open
files of that kind of process (a sandbox, the notebook's kernel).
"""
from __future__ import annotations

from dataclasses import dataclass

from .confine import ProcessLimits


def _check_positive(owner: object, names: tuple[str, ...], unit: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a positive number of {unit}, got {type(value).__name__}")
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")


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
        _check_positive(self, ("case_cpu", "case_wall", "exercise", "start", "definitions"), "seconds")

    @property
    def sandbox_cpu(self) -> int:
        """CPU seconds a sandbox may use in all: starting, defining, its exercise's cases and one case more."""
        return int(self.start + self.definitions + self.exercise + self.case_cpu) + 1


@dataclass(frozen=True)
class Memory:
    """Memory of each learner process, in bytes: ``data_bytes`` bounds the heap and private mappings (what
    tensors use), ``address_bytes`` the whole address space (importing torch alone reserves about 3.3 GB)."""

    data_bytes: int = 2 << 30
    address_bytes: int = 8 << 30

    def __post_init__(self) -> None:
        _check_positive(self, ("data_bytes", "address_bytes"), "bytes")


@dataclass(frozen=True)
class Options:
    """How to grade: the time and memory of learner processes, the largest file one may write, whether and how
    long to execute the notebook (``cell_timeout``, ``execution_timeout``: seconds), and the user learner code
    runs as when the grader is root (``user``: see ``--sandbox-user``)."""

    time: TimeLimits = TimeLimits()
    memory: Memory = Memory()
    file_bytes: int = 64 << 20
    execute: bool = True
    cell_timeout: float = 15.0
    execution_timeout: float = 40.0
    user: str = "auto"

    def __post_init__(self) -> None:
        _check_positive(self, ("cell_timeout", "execution_timeout"), "seconds")
        _check_positive(self, ("file_bytes",), "bytes")

    def process_limits(self, cpu_seconds: int, open_files: int = 256) -> ProcessLimits:
        """The resource limits of one learner process that may use ``cpu_seconds`` and ``open_files``."""
        return ProcessLimits(data_bytes=self.memory.data_bytes, address_bytes=self.memory.address_bytes,
                             cpu_seconds=cpu_seconds, file_bytes=self.file_bytes, open_files=open_files)

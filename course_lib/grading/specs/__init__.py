"""The graded assignments, one module per exercise notebook, each exposing ``ASSIGNMENT``.

The instructor names the assignment a notebook is graded against (``--assignment``); a notebook's
``metadata["course_grading"]["assignment"]`` only lets the grader refuse the wrong notebook.
"""
from __future__ import annotations

import importlib

from ..spec import Assignment, Exercise

NAMES = ("distillation", "pruning", "quantization", "deep_compression")


def get_assignment(name: str) -> Assignment:
    """The :class:`Assignment` called ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown assignment {name!r}; the assignments are {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").ASSIGNMENT


def find_exercise(name: str) -> tuple[Assignment, Exercise]:
    """The assignment and exercise whose function is called ``name`` (names are unique across assignments)."""
    for assignment_name in NAMES:
        assignment = get_assignment(assignment_name)
        for ex in assignment.exercises:
            if ex.name == name:
                return assignment, ex
    known = [ex.name for a in NAMES for ex in get_assignment(a).exercises]
    raise ValueError(f"no exercise is called {name!r}; the graded functions are {', '.join(known)}")

"""The graded assignments: one package per exercise notebook, each exposing ``ASSIGNMENT``.

Nothing else lists them: :data:`ASSIGNMENTS` holds every package's ``ASSIGNMENT`` in the order of their
``number`` (the notebooks are ``NN_<name>.ipynb``), so a new exercise notebook is a new package here. Inside
a package, each module holds the cases of a group of functions and their ``EXERCISES``.

The instructor names the assignment a notebook is graded against (``--assignment``); a notebook's
``metadata["course_grading"]["assignment"]`` only lets the grader refuse the wrong notebook.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..exercise import Assignment, Exercise


def _discover() -> dict[str, Assignment]:
    """Every subpackage's ``ASSIGNMENT`` by name, ordered by number; ``RuntimeError`` if two share a name or a
    number."""
    found = [importlib.import_module(f"{__name__}.{m.name}").ASSIGNMENT for m in pkgutil.iter_modules(__path__)]
    for key in ("name", "number"):
        values = [getattr(a, key) for a in found]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two assignments share a {key}: {sorted(values)}")
    return {a.name: a for a in sorted(found, key=lambda a: a.number)}


ASSIGNMENTS = _discover()
NAMES = tuple(ASSIGNMENTS)


def get_assignment(name: str) -> Assignment:
    """The :class:`Assignment` called ``name`` (one of :data:`NAMES`)."""
    if name not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {name!r}; the assignments are {', '.join(NAMES)}")
    return ASSIGNMENTS[name]


def find_exercise(name: str) -> tuple[Assignment, Exercise]:
    """The assignment and exercise whose function is called ``name`` (names are unique across assignments)."""
    for assignment in ASSIGNMENTS.values():
        for ex in assignment.exercises:
            if ex.name == name:
                return assignment, ex
    known = [ex.name for a in ASSIGNMENTS.values() for ex in a.exercises]
    raise ValueError(f"no exercise is called {name!r}; the graded functions are {', '.join(known)}")

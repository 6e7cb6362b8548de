"""The graded assignments, one module per exercise notebook, each exposing ``ASSIGNMENT``.

A notebook is matched to its assignment by ``metadata["course_grading"]["assignment"]``, else by
its file name without the leading number (``01_distillation.ipynb`` -> ``distillation``).
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

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


def assignment_name_for(path: Path, metadata: dict[str, Any]) -> str:
    """The assignment of the notebook at ``path`` with notebook ``metadata`` (see the module docstring)."""
    name = (metadata.get("course_grading") or {}).get("assignment")
    if isinstance(name, str) and name in NAMES:
        return name
    stem = re.sub(r"^\d+[_-]", "", path.stem)
    if stem in NAMES:
        return stem
    raise ValueError(f"{path} is not one of the graded exercises ({', '.join(NAMES)}): "
                     f"name it NN_<assignment>.ipynb or pass --assignment")

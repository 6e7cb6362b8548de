"""The autograder: exercise notebooks generated from solution masters, feedback, fair grading.

- :func:`check` (in the learner's notebook): ``check("soft_targets", soft_targets)`` runs the
  exercise's public tests and prints what passed and, if not, input, output and expected value.
- ``python -m course_lib.grading grade NOTEBOOK [--json results.json]``: executes the notebook,
  runs the hidden tests out of the learner's reach (:mod:`~course_lib.grading.sandbox`), prints a
  score table and writes Gradescope's ``results.json`` (:mod:`~course_lib.grading.grader`).
- ``python -m course_lib.grading generate solutions exercises``: the learners' notebooks from the
  masters (:mod:`~course_lib.grading.generate`); ``check-generated`` tells whether they are current.

Exercises and their tests: :mod:`course_lib.grading.specs`, one module per notebook.
"""
from __future__ import annotations

from typing import Any

__all__ = ["check"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that the command line answers a bad file name without importing torch
    if name == "check":
        from .checks import check
        return check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

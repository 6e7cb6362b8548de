"""The autograder: exercise notebooks generated from solution masters, feedback, grades a learner cannot forge.

- :func:`check` (in the learner's notebook): ``check("soft_targets", soft_targets)`` runs the
  exercise's public tests and prints what passed and, if not, input, output and expected value;
  :func:`hint` (``hint("soft_targets")``) prints the next step of a hint each time it is called
  (:mod:`~course_lib.grading.checks`).
- ``python -m course_lib.grading grade NOTEBOOK --assignment NAME [--json results.json]``: scores the
  notebook's functions in confined sandboxes, against answers computed here from the references, then
  executes the notebook for the learner's information, and writes Gradescope's ``results.json``
  (:mod:`~course_lib.grading.grade.grader`); ``grade-all``, ``gradescope-bundle`` and ``classroom-workflow``
  grade a class into a CSV, build a Gradescope autograder and a GitHub Classroom workflow
  (:mod:`~course_lib.grading.deploy`).
- ``python -m course_lib.grading generate solutions exercises``: the learners' notebooks from the
  masters (:mod:`~course_lib.grading.authoring.generate`); ``check-generated`` tells whether they are current.

Subpackages by concern, each importing only from those below it::

    __main__       the command line
    deploy         a class (grade-all), the Gradescope bundle, the GitHub Classroom workflow
    grade          one notebook: read it, run the sandboxes, score, report
    confinement    running learner code out of reach: launcher, sandboxes, kernel, fence, limits
    checks         the learner's check() and hint()        (beside confinement, below grade: neither uses the other)
    authoring      what an exercise is, how answers are compared, the specs (one package per notebook), generation

To add an exercise, see ``book/instructors/index.md`` ("Adding an exercise"): its cases and its ``Exercise`` go
in the notebook's package under :mod:`course_lib.grading.authoring.specs`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["check", "hint"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that the command line answers a bad file name without importing torch
    if name in __all__:
        from . import checks
        return getattr(checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The autograder: exercise notebooks generated from solution masters, feedback, grades a learner cannot forge.

- :func:`check` (in the learner's notebook): ``check("soft_targets", soft_targets)`` runs the
  exercise's public tests and prints what passed and, if not, input, output and expected value;
  :func:`hint` (``hint("soft_targets")``) prints the next step of a hint each time it is called.
- ``python -m course_lib.grading grade NOTEBOOK --assignment NAME [--json results.json]``: scores the
  notebook's functions in confined sandboxes, against answers computed here from the references, then
  executes the notebook for the learner's information, and writes Gradescope's ``results.json``
  (:mod:`~course_lib.grading.grader`); ``grade-all`` grades a class into a CSV
  (:mod:`~course_lib.grading.batch`).
- ``gradescope-bundle`` and ``classroom-workflow``: a Gradescope autograder zip
  (:mod:`~course_lib.grading.bundle`) and a GitHub Classroom workflow (:mod:`~course_lib.grading.classroom`).
- ``python -m course_lib.grading generate solutions exercises``: the learners' notebooks from the
  masters (:mod:`~course_lib.grading.generate`); ``check-generated`` tells whether they are current.

Modules by concern: the data model (:mod:`~course_lib.grading.spec`, :mod:`~course_lib.grading.status`),
the notebook (:mod:`~course_lib.grading.reading`, :mod:`~course_lib.grading.extract`,
:mod:`~course_lib.grading.questions`), isolation (:mod:`~course_lib.grading.confine`,
:mod:`~course_lib.grading.supervise`, :mod:`~course_lib.grading.workspace`, :mod:`~course_lib.grading.fence`,
:mod:`~course_lib.grading.tripwire`), the sandboxes (:mod:`~course_lib.grading.sandbox`,
:mod:`~course_lib.grading.channel`, :mod:`~course_lib.grading.runner`), judging
(:mod:`~course_lib.grading.scoring`), execution (:mod:`~course_lib.grading.execution`) and reports
(:mod:`~course_lib.grading.reports`). Exercises and their tests: :mod:`course_lib.grading.specs`, one module
per notebook.
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

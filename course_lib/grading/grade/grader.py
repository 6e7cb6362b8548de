"""Grade one exercise notebook out of the learner's reach, and execute it for the learner's information.

Steps of :func:`grade`:

1. read the notebook and check it against the assignment the instructor named (a notebook whose
   metadata names another assignment is refused: file names and metadata belong to the learner);
2. find the definitions each graded function needs (:mod:`~course_lib.grading.grade.extract`) and fence
   the references off in a copy of ``course_lib`` (:mod:`~course_lib.grading.confinement.fence`);
3. run every exercise's public cases in confined sandboxes, one per exercise
   (:mod:`~course_lib.grading.grade.runner`, :mod:`~course_lib.grading.confinement.confine`);
4. with the sandboxes stopped, execute the notebook in a confined kernel, within its own time
   (:mod:`~course_lib.grading.confinement.execution`); it never changes the score, and it runs before any process
   has received a hidden input, so its (public) feedback cannot carry one; kill what it left;
5. run every hidden case in the sandboxes, then kill every process the grading started
   (:class:`~course_lib.grading.confinement.supervise.Sweep`);
6. compute the expected answers here, from the references, and score
   (:mod:`~course_lib.grading.grade.scoring`); flag functions that are the reference token for token;
7. return Gradescope's ``results.json`` content (:mod:`~course_lib.grading.grade.reports`).

The learner's code never runs in this process, never while a case is being run, and, when the grader
is root, never as a user that can read the references or the seed.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat

from ..authoring.exercise import Assignment
from ..authoring.questions import collect_answers
from ..authoring.seeds import learner_secret
from ..authoring.specs import NAMES, get_assignment
from ..confinement.execution import Execution, execute, notes
from ..confinement.fence import fenced_files, module_file
from ..confinement.options import Options
from ..confinement.supervise import Sweep
from ..confinement.workspace import Workspace
from .extract import cell_codes, definitions
from .reading import GradingError, notebook_path, read_notebook
from .reports import gradescope
from .runner import Sandboxes
from .scoring import score_assignment
from .setup import check_confinement, read_secret


def assignment_for(nb: nbformat.NotebookNode, name: str) -> Assignment:
    """The assignment ``name`` (the instructor's choice); refuse a notebook whose metadata names another."""
    if name not in NAMES:
        raise GradingError(f"unknown assignment {name!r}; the assignments are {', '.join(NAMES)}")
    claimed = (nb.metadata.get("course_grading") or {}).get("assignment")
    if claimed is not None and claimed != name:
        raise GradingError(f"this notebook is marked as assignment {str(claimed)[:60]!r}, but it is graded as "
                           f"{name!r}: submit the {name} notebook")
    return get_assignment(name)


def grade(path: str | Path, assignment: str, seed_file: str | Path | None = None,
          options: Options = Options(), practice: bool = True, learner: str | None = None) -> dict[str, Any]:
    """Grade the notebook at ``path`` (or the one notebook in folder ``path``) as ``assignment``, with the secret
    of :func:`~.setup.read_secret` (``practice``: the public seed when no secret is given), for ``learner``
    (default: the notebook's file name): the hidden cases are drawn from
    :func:`~course_lib.grading.authoring.seeds.learner_secret`.

    Raises :class:`GradingError` (one line) if it cannot be graded at all (see :func:`reports.fatal`), a
    :class:`~.setup.SetupError` if the machine cannot grade anyone.
    """
    start = time.monotonic()
    nb = read_notebook(path)
    spec = assignment_for(nb, assignment)
    learner = learner if learner is not None else notebook_path(path).stem
    secret = learner_secret(read_secret(seed_file, practice), learner)
    cells = cell_codes(nb)
    syntax = [f"cell {c.number}: {c.error}" for c in cells if c.error is not None]
    sweep = Sweep()
    workspace = Workspace(options.user, hide=tuple(Path(p) for p in [seed_file] if p is not None))
    try:
        isolation = check_confinement(workspace)
        statements = {ex.name: definitions(cells, {ex.name}) for ex in spec.exercises}
        with Sandboxes(workspace, spec, statements, secret, options, fenced_files(spec), sweep) as boxes:
            boxes.run("public")
            run = Execution()
            if options.execute:
                with boxes.paused():
                    run = execute(nb, workspace, options)
            boxes.run("hidden")
        sweep.sweep()
        results = score_assignment(spec, [c.source for c in cells if c.error is None], secret, boxes.observations)
    finally:
        sweep.sweep()  # every process the learner's code started is gone before anything is returned
        workspace.cleanup()
    lines = [f"{notebook_path(path).name}: {spec.title}."]
    if syntax:
        lines.append("Cells with syntax errors (skipped): " + "; ".join(syntax))
    lines += notes(run)
    references = [module_file(ex.reference_fn()) for ex in spec.exercises]
    extra = {"isolation": workspace.guarantees(isolation, references, seed_file), "learner": learner}
    return gradescope(spec, results, collect_answers(nb, spec), lines, time.monotonic() - start, extra)

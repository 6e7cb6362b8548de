"""Grade an exercise notebook: execute it, test the learner's functions out of reach, score, report.

Steps of :func:`grade`:

1. read the notebook (a missing file or a non-notebook raises :class:`GradingError`, one line);
2. execute it in a fresh kernel with nbclient, from its own folder, with a time limit per cell and
   one for the whole notebook; a cell that raises or times out is recorded and the next runs;
3. for each exercise, run the learner's function on the public and hidden cases in a separate
   *sandbox* process, with a time limit per exercise (:mod:`course_lib.grading.sandbox`): only the
   notebook's definitions run there, and the references are fenced off by tripwires;
4. compute the expected answers here, from the references, on the same seeded inputs, and compare.
   This process never runs the learner's code, so nothing the notebook does (monkeypatching the
   grader, ``course_lib`` or ``torch``) can change how answers are judged;
5. score: each exercise's public and hidden points in proportion to the cases passed, 0 for an
   exercise answered by (or calling) the reference; return a Gradescope-style result.

Limit: isolation is between processes, not users. The sandboxes import a copy of ``course_lib``
taken before the notebook runs, so a notebook that rewrites the installed package cannot change its
own grading; but it could change the next one on the same machine, so the grader warns when the
grader's or the references' files changed, and each submission should be graded in a fresh,
read-only installation (a container, as Gradescope does).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

from .extract import cell_codes
from .reading import GradingError, read_notebook
from .sandbox import REFERENCE_EXIT
from .spec import Assignment, Exercise, call_and_observe, from_plain
from .specs import assignment_name_for, get_assignment

KERNEL = "python3"
DEFAULT_SEED = 20240501


@dataclass
class Execution:
    """What happened when the notebook ran: seconds, cells that raised, timed out or were skipped."""

    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    timed_out: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


@dataclass
class ExerciseResult:
    """Scores and feedback of one exercise; ``hidden_output`` is shown only after grades are published."""

    name: str
    public_score: float
    public_max: float
    hidden_score: float
    hidden_max: float
    public_passed: int
    public_total: int
    hidden_passed: int
    hidden_total: int
    public_output: str
    hidden_output: str

    @property
    def score(self) -> float:
        return self.public_score + self.hidden_score


# ---------------------------------------------------------------------------------------------

def execute(nb: nbformat.NotebookNode, folder: Path, cell_timeout: float, total_timeout: float) -> Execution:
    """Run ``nb`` in place in a fresh kernel, from ``folder``; never raises for the notebook's own errors."""
    result = Execution()
    start = time.monotonic()
    deadline = start + total_timeout
    client = NotebookClient(nb, timeout=int(cell_timeout), kernel_name=KERNEL, allow_errors=True,
                            interrupt_on_timeout=False, record_timing=False,
                            resources={"metadata": {"path": str(folder)}})
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    env = {k: v for k, v in os.environ.items() if k != "COURSE_GRADING_SEED"}  # the hidden cases' seed stays here
    env.setdefault("COURSE_LIB_PROGRESS", "0")
    env.setdefault("MPLBACKEND", "Agg")
    with client.setup_kernel(env=env):
        dead = False
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            remaining = deadline - time.monotonic()
            if dead or remaining < 1:
                result.skipped.append(i)
                continue
            client.timeout = max(1, int(min(cell_timeout, remaining)))
            try:
                client.execute_cell(cell, i)
            except CellTimeoutError:
                result.timed_out.append(i)
                run_sync(client.km.interrupt_kernel)()
            except DeadKernelError:
                result.errors.append(f"cell {i}: the kernel died")
                dead = True
                continue
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    result.errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue', '')}"[:300])
    result.seconds = time.monotonic() - start
    return result


def source_digest(assignment: Assignment) -> str:
    """A hash of the grader's and ``assignment``'s reference modules' source files, to notice a notebook
    that rewrites them."""
    root = Path(__file__).resolve().parents[1]
    files = list(Path(__file__).resolve().parent.rglob("*.py"))
    for module in assignment.reference_modules:
        base = root.joinpath(*module.split(".")[1:])
        files += list(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    h = hashlib.sha256()
    for f in sorted(set(files)):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


SANDBOX = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
           "runpy.run_module('course_lib.grading.sandbox', run_name='__main__')")


def snapshot_course_lib(folder: Path) -> Path:
    """Copy ``course_lib``'s sources into ``folder`` (before any of the learner's code runs); return ``folder``.

    The sandboxes import ``course_lib`` from this copy, so a notebook that rewrites the installed
    package cannot change the tests, the specs or the tripwires used to grade it.
    """
    shutil.copytree(Path(__file__).resolve().parents[1], folder / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return folder


def run_sandboxes(assignment: Assignment, cells: list[dict], seed: int, timeout: float,
                  snapshot: Path) -> dict[str, dict[str, Any]]:
    """The sandbox's report for every exercise (see :mod:`course_lib.grading.sandbox`), or why there is none.

    The sandbox runs ``python -I`` on the ``course_lib`` copy in ``snapshot``
    (:func:`snapshot_course_lib`). One sandbox process tests the exercises in order; each has ``timeout`` seconds. If one hangs
    (killed), touches a reference or ends the process, it gets its verdict and a fresh sandbox
    goes on with the exercises after it.
    """
    reports: dict[str, dict[str, Any]] = {}
    todo = [ex.name for ex in assignment.exercises]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JPY_"))}
    env.update(COURSE_LIB_PROGRESS="0", MPLBACKEND="Agg")
    while todo:
        with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
            job = Path(tmp, "job.json")
            job.write_text(json.dumps({"assignment": assignment.name, "exercises": todo, "seed": seed,
                                       "cells": cells}))
            log_path = Path(tmp, "log.txt")
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([sys.executable, "-I", "-c", SANDBOX, str(snapshot), str(job), tmp],
                                        cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True)
                try:
                    while todo:
                        name = todo[0]
                        reports[name] = _wait_for(proc, Path(tmp), name, timeout, log_path)
                        todo.pop(0)
                        if proc.poll() is not None and todo and not Path(tmp, f"{todo[0]}.pt").exists():
                            break  # the process ended early: start a fresh one for the rest
                finally:
                    _kill(proc)
    return reports


def _wait_for(proc: subprocess.Popen, tmp: Path, name: str, timeout: float, log_path: Path) -> dict[str, Any]:
    out, tripped = tmp / f"{name}.pt", tmp / f"{name}.tripped"
    deadline = time.monotonic() + timeout
    while not out.exists():
        if proc.poll() is not None and not out.exists():
            if proc.returncode == REFERENCE_EXIT and tripped.exists():
                return {"status": "calls_reference", "message": tripped.read_text(errors="replace")[:200]}
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
            return {"status": "crashed", "message": f"exit status {proc.returncode}: {tail[0][:300]}"}
        if time.monotonic() > deadline:
            _kill(proc)
            return {"status": "timeout", "message": f"{timeout:g} s"}
        time.sleep(0.05)
    try:
        report = from_plain(torch.load(out, weights_only=True))
        if not isinstance(report, dict) or not isinstance(report.get("cases"), list):
            raise ValueError("malformed report")
    except Exception as e:  # noqa: BLE001 - the learner's code could have written anything there
        return {"status": "crashed", "message": f"unreadable report ({type(e).__name__})"}
    return report


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _fmt(x: float) -> str:
    return f"{x:g}"


def score_exercise(exercise: Exercise, report: dict[str, Any], seed: int) -> ExerciseResult:
    """Compare the sandbox's observations with the reference's, here, and score ``exercise``."""
    public, hidden = list(exercise.public()), list(exercise.hidden(seed))
    result = ExerciseResult(exercise.name, 0.0, exercise.public_points, 0.0, exercise.hidden_points,
                            0, len(public), 0, len(hidden), "", "")
    status = report.get("status")
    problem = None
    if status == "missing":
        problem = f"no function `{exercise.name}` is defined in the notebook (at the top level of a code cell)"
    elif status == "reference":
        problem = (f"`{exercise.name}` is course_lib's reference ({report.get('message')}), not your code: "
                   "0 points. Write the function yourself.")
    elif status == "not_callable":
        problem = f"`{exercise.name}` is a {report.get('message')}, not a function"
    elif status == "timeout":
        problem = f"`{exercise.name}` did not finish its tests within {report.get('message')}: 0 points"
    elif status == "crashed":
        problem = f"testing `{exercise.name}` stopped the test process ({report.get('message')}): 0 points"
    elif status == "calls_reference":
        problem = (f"`{exercise.name}` calls course_lib's reference implementation "
                   f"({report.get('message')}): 0 points. Write the function yourself.")
    elif status != "ok" or len(report["cases"]) != len(public) + len(hidden):
        problem = f"testing `{exercise.name}` did not produce a result for every test: 0 points"
    if problem:
        result.public_output = result.hidden_output = problem
        return result
    reference = exercise.reference_fn()
    outcomes = []
    for case, got in zip(public + hidden, report["cases"]):
        expected = call_and_observe(reference, exercise, case)
        if "error" in expected:
            raise RuntimeError(f"the reference {exercise.reference} failed on '{case.description}': "
                               f"{expected['error']}")
        if not isinstance(got, dict):
            msg = "produced no result"
        elif "error" in got:
            msg = "is not written yet (raises NotImplementedError)" if got.get("not_implemented") \
                else f"raised {got['error']}"
        else:
            args, kwargs = case.make()
            try:
                msg = exercise.check_answer(got.get("value"), expected["value"], args, kwargs)
            except Exception as e:  # noqa: BLE001 - odd data from the learner's function
                msg = f"returned something that could not be compared ({type(e).__name__}: {e})"
        outcomes.append((case.description, msg))
    pub, hid = outcomes[:len(public)], outcomes[len(public):]
    result.public_passed = sum(m is None for _, m in pub)
    result.hidden_passed = sum(m is None for _, m in hid)
    result.public_score = round(exercise.public_points * result.public_passed / max(1, len(pub)), 2)
    result.hidden_score = round(exercise.hidden_points * result.hidden_passed / max(1, len(hid)), 2)
    result.public_output = _feedback(exercise.name, pub, "public")
    result.hidden_output = _feedback(exercise.name, hid, "hidden")
    if report.get("definition_errors"):
        note = "\nWhile defining your functions: " + "; ".join(map(str, report["definition_errors"][:5]))
        result.public_output += note
    return result


def _feedback(name: str, outcomes: list[tuple[str, str | None]], kind: str) -> str:
    passed = sum(m is None for _, m in outcomes)
    lines = [f"{name}: {passed} of {len(outcomes)} {kind} tests passed."]
    for description, msg in outcomes:
        lines.append(f"  [pass] {description}" if msg is None else f"  [FAIL] {description}: your function {msg}")
    return "\n".join(lines)


def grade(path: str | Path, assignment: str | None = None, cell_timeout: float = 300, total_timeout: float = 900,
          exercise_timeout: float = 60, seed: int | None = None) -> dict[str, Any]:
    """Grade the notebook at ``path``; return Gradescope's ``results.json`` content as a dict.

    ``seed`` (default ``$COURSE_GRADING_SEED`` or a fixed number) draws the hidden cases: the same
    seed gives the same score; an instructor may keep theirs private.
    """
    start = time.monotonic()
    path = Path(path)
    nb = read_notebook(path)
    try:
        spec = get_assignment(assignment or assignment_name_for(path, nb.metadata))
    except ValueError as e:
        raise GradingError(str(e)) from None
    if seed is None:
        seed = int(os.environ.get("COURSE_GRADING_SEED", DEFAULT_SEED))
    for ex in spec.exercises:  # the references are in memory before any of the learner's code runs
        ex.reference_fn()
    digest = source_digest(spec)
    cells = [{"index": c.index, "source": c.source} for c in cell_codes(nb) if c.error is None]
    syntax = [f"cell {c.index}: {c.error}" for c in cell_codes(nb) if c.error is not None]
    with tempfile.TemporaryDirectory(prefix="course-lib-") as copy, ThreadPoolExecutor(max_workers=1) as pool:
        snapshot = snapshot_course_lib(Path(copy))
        pending = pool.submit(run_sandboxes, spec, cells, seed, exercise_timeout, snapshot)  # needs no kernel
        try:
            run = execute(nb, path.resolve().parent, cell_timeout, total_timeout)
        except Exception as e:  # noqa: BLE001 - no kernel, a dead kernel at start...: grade the definitions anyway
            run = Execution(errors=[f"the notebook could not be executed: {type(e).__name__}: {e}"[:300]])
        reports = pending.result()
    results = [score_exercise(ex, reports[ex.name], seed) for ex in spec.exercises]
    tampered = source_digest(spec) != digest
    return _gradescope(path, spec, run, syntax, results, time.monotonic() - start, tampered)


def _gradescope(path: Path, spec: Assignment, run: Execution, syntax: list[str], results: list[ExerciseResult],
                seconds: float, tampered: bool) -> dict[str, Any]:
    notes = [f"{path.name}: {spec.title}, executed in {run.seconds:.1f} s."]
    if syntax:
        notes.append("Cells with syntax errors (skipped): " + "; ".join(syntax))
    if run.errors:
        notes.append("Cells that raised an error: " + "; ".join(run.errors))
    if run.timed_out:
        notes.append("Cells stopped at the time limit: " + ", ".join(map(str, run.timed_out)))
    if run.skipped:
        notes.append("Cells not run (notebook time limit reached or kernel dead): " + ", ".join(map(str, run.skipped)))
    if tampered:
        notes.append("WARNING: course_lib's grader or reference files changed on disk during grading (this grading "
                     "used a copy taken before the notebook ran, but later gradings on this machine would not): "
                     "grade each submission in a fresh, read-only installation.")
    tests = []
    for r in results:
        tests.append({"name": f"{r.name} (public tests)", "score": r.public_score, "max_score": r.public_max,
                      "status": "passed" if r.public_score == r.public_max else "failed",
                      "output": r.public_output, "visibility": "visible",
                      "extra_data": {"passed": r.public_passed, "cases": r.public_total}})
        tests.append({"name": f"{r.name} (hidden tests)", "score": r.hidden_score, "max_score": r.hidden_max,
                      "status": "passed" if r.hidden_score == r.hidden_max else "failed",
                      "output": r.hidden_output, "visibility": "after_published",
                      "extra_data": {"passed": r.hidden_passed, "cases": r.hidden_total}})
    return {"score": round(sum(r.score for r in results), 2), "max_score": spec.max_score,
            "execution_time": round(seconds, 1), "output": "\n".join(notes), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def score_table(results: dict[str, Any]) -> str:
    """The score table printed by the command line: per exercise, public and hidden points (no hidden details)."""
    rows = [("test", "passed", "score", "max")]
    for t in results["tests"]:
        counts = t.get("extra_data", {})
        rows.append((t["name"], f"{counts.get('passed', '?')}/{counts.get('cases', '?')}", _fmt(t["score"]),
                     _fmt(t["max_score"])))
    rows.append(("total", "", _fmt(results["score"]), _fmt(results["max_score"])))
    w = max(len(r[0]) for r in rows)
    lines = [f"{a:<{w}}  {b:>6}  {c:>6}  {d:>5}" for a, b, c, d in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)

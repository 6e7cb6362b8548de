"""``grade-all``: a whole class, one grading process per submission, ``--jobs`` at a time, one CSV row each.

A submission is ``SUBMISSIONS/NAME.ipynb`` or a folder ``SUBMISSIONS/NAME/`` holding one notebook;
``NAME`` identifies the learner. Each is graded by its own ``python -m course_lib.grading grade``
process (its own sandboxes, its own learner user, its own subreaper), under an overall deadline
derived from the time limits, each with ``OMP_NUM_THREADS`` = cores / jobs (:func:`grading_env`); a
submission that cannot be graded, crashes the grader or outlives that deadline gets a row saying why and
score 0, and the batch goes on. The CSV has the score, each exercise's points, flags for the instructor and the
written answers; a summary line ends the output, and a line per submission on stderr shows the progress.

Before any learner is graded, the machine's setup is checked once (:mod:`~course_lib.grading.grade.setup`: the
platform, the secret, a confined Python as the learner user): a mistake there stops the batch with one line and
exit status 3, and no CSV. Each learner's hidden cases are drawn for ``NAME`` (``--learner-id``). Beside the CSV
``grades.csv``, the folder ``grades-analysis/`` holds the item analysis (:mod:`~.analysis`); each learner's
feedback, as Markdown, lies next to their ``results.json`` (``--results``), else in ``grades-analysis/feedback``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authoring.specs import NAMES, get_assignment
from ..confinement.supervise import Sweep, kill
from ..confinement.workspace import Workspace
from ..grade.reports import exercise_scores, fatal, feedback_markdown
from ..grade.setup import SETUP_FAILED, SetupError, check_confinement, check_platform, read_secret
from .analysis import write_analysis


@dataclass(frozen=True)
class Submission:
    learner: str
    path: Path


def submissions(folder: Path) -> list[Submission]:
    """The submissions in ``folder`` (see the module docstring), sorted by learner."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions")
    found: list[Submission] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or entry.suffix == ".ipynb":
            name = entry.name if entry.is_dir() else entry.stem
            taken = {s.learner for s in found}
            found.append(Submission(name if name not in taken else f"{name} ({entry.name})", entry))
    return found


def deadline(args: argparse.Namespace, exercises: int) -> float:
    """A generous bound on one grading's wall-clock time with these options (the batch's backstop)."""
    per_exercise = 2 * 60 + 10 + args.exercise_timeout + 4 * args.case_timeout
    execution = 0 if args.no_execute else args.execution_timeout + 120
    return 2 * exercises * per_exercise + execution + 60


def grading_command(args: argparse.Namespace, submission: Submission, out: Path) -> list[str]:
    command = [sys.executable, "-m", "course_lib.grading", "grade", str(submission.path),
               "--assignment", args.assignment, "--learner-id", submission.learner, "--json", str(out),
               "--execution-timeout", str(args.execution_timeout), "--cell-timeout", str(args.cell_timeout),
               "--case-timeout", str(args.case_timeout),
               "--exercise-timeout", str(args.exercise_timeout), "--memory", str(args.memory),
               "--sandbox-user", args.sandbox_user]
    if args.seed_file:
        command += ["--seed-file", args.seed_file]
    if args.no_execute:
        command.append("--no-execute")
    if args.practice:
        command.append("--practice")
    return command


def grading_env(jobs: int, environ: Mapping[str, str], cores: int) -> dict[str, str]:
    """The environment of each grading: ``environ`` with ``OMP_NUM_THREADS`` set to the cores each of the ``jobs``
    gradings running at once can have (at least 1), unless ``environ`` sets it: two gradings whose 2-thread
    OpenMP regions share 2 cores make each other's threads spin-wait, and a class takes about twice as long."""
    if "OMP_NUM_THREADS" in environ:
        return dict(environ)
    return {**environ, "OMP_NUM_THREADS": str(max(1, cores // max(1, jobs)))}


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def grade_one(args: argparse.Namespace, submission: Submission, out: Path, limit: float) -> dict[str, Any]:
    """Grade one submission in its own process; a ``results.json`` dict whatever happens."""
    start = time.monotonic()
    proc = subprocess.Popen(grading_command(args, submission, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env=grading_env(args.jobs, os.environ, _cores()))
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the grader kills its learner processes and removes its folders
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            kill(proc)
        return fatal(f"grading took longer than {limit:.0f} s", time.monotonic() - start)
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return fatal(f"the grader failed: {tail[0][:200]}", time.monotonic() - start)


def row(submission: Submission, results: dict[str, Any], exercises: list[str], questions: list[str]) -> dict:
    extra = results.get("extra_data", {})
    scores = exercise_scores(results)
    answers = {a["id"]: a["text"] for a in extra.get("answers", [])}
    return {"learner": submission.learner, "notebook": str(submission.path), "score": results["score"],
            "max_score": extra.get("max_score", ""), **{ex: scores.get(ex, 0.0) for ex in exercises},
            "graded": "no: " + extra["fatal"] if "fatal" in extra else "yes",
            "flags": "; ".join(extra.get("flags", [])), "seconds": results.get("execution_time", ""),
            **{f"answer {q}": answers.get(q, "") for q in questions}}


def check_setup(args: argparse.Namespace) -> None:
    """:class:`SetupError` if this machine cannot grade anyone with ``args`` (see the module docstring)."""
    check_platform()
    read_secret(args.seed_file, args.practice)
    workspace = Workspace(args.sandbox_user, hide=tuple(Path(p) for p in [args.seed_file] if p is not None))
    try:
        check_confinement(workspace)
    finally:
        workspace.cleanup()


def grade_all(args: argparse.Namespace) -> int:
    """The ``grade-all`` command (see the module docstring); 0 once every submission has a row."""
    if args.assignment not in NAMES:
        print(f"error: unknown assignment {args.assignment!r}; the assignments are {', '.join(NAMES)}",
              file=sys.stderr)
        return 2
    try:
        todo = submissions(Path(args.submissions))
        check_setup(args)
    except SetupError as e:
        print(f"setup error (no learner scored): {e}", file=sys.stderr)
        return SETUP_FAILED
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec = get_assignment(args.assignment)
    exercises, questions = [ex.name for ex in spec.exercises], [q.id for q in spec.questions]
    limit = deadline(args, len(exercises))
    analysis = Path(args.csv).with_name(Path(args.csv).stem + "-analysis")
    sweep, start = Sweep(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grade-all-") as tmp:
        outs = [Path(args.results or tmp) / f"{s.learner}.json" for s in todo]
        Path(args.results or tmp).mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(grade_one, args, s, out, limit): k for k, (s, out) in enumerate(zip(todo, outs))}
            all_results: list[dict[str, Any]] = [{}] * len(todo)
            for done, future in enumerate(as_completed(futures), 1):
                k = futures[future]
                all_results[k] = future.result()
                _progress(done, len(todo), todo[k].learner, all_results[k], spec.max_score, start)
    sweep.sweep()
    rows = [row(s, r, exercises, questions) for s, r in zip(todo, all_results)]
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["learner", "score"])
        writer.writeheader()
        writer.writerows(rows)
    graded = {s.learner: r for s, r in zip(todo, all_results) if "fatal" not in r.get("extra_data", {})}
    write_analysis(analysis, graded, exercises, questions)
    feedback = Path(args.results) if args.results else analysis / "feedback"
    feedback.mkdir(parents=True, exist_ok=True)
    for s, r in zip(todo, all_results):
        (feedback / f"{s.learner}.md").write_text(feedback_markdown(r, s.learner))
    failed = sum(r["graded"] != "yes" for r in rows)
    mean = sum(r["score"] for r in rows) / len(rows) if rows else 0.0
    print(f"graded {len(rows) - failed} of {len(rows)} submissions of {args.assignment} in "
          f"{time.monotonic() - start:.0f} s with {args.jobs} job{'s' * (args.jobs != 1)}: mean score {mean:.2f} of "
          f"{spec.max_score:g}, {failed} not graded; grades in {args.csv}, item analysis in {analysis}",
          file=sys.stdout)
    return 0


def _progress(done: int, total: int, learner: str, results: dict[str, Any], top: float, start: float) -> None:
    fatal_reason = results.get("extra_data", {}).get("fatal")
    what = f"not graded: {fatal_reason[:80]}" if fatal_reason else f"{results['score']:g} of {top:g}"
    print(f"[{done}/{total}] {learner}: {what} ({time.monotonic() - start:.0f} s so far)", file=sys.stderr,
          flush=True)

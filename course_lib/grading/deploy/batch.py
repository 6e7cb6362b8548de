"""``grade-all``: a whole class, one grading process per submission, ``--jobs`` at a time, one CSV row each.

A submission is ``SUBMISSIONS/NAME.ipynb`` or a folder ``SUBMISSIONS/NAME/`` holding one notebook;
``NAME`` identifies the learner. Each is graded by its own ``python -m course_lib.grading grade``
process (its own sandboxes, its own learner user, its own subreaper), under an overall deadline
derived from the time limits; a submission that cannot be graded, crashes the grader or outlives
that deadline gets a row saying why and score 0, and the batch goes on. The CSV has the score,
each exercise's points, flags for the instructor and the written answers; a summary line ends the
output.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authoring.specs import NAMES, get_assignment
from ..confinement.supervise import Sweep, kill
from ..grade.reports import exercise_scores, fatal


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


def grading_command(args: argparse.Namespace, notebook: Path, out: Path) -> list[str]:
    command = [sys.executable, "-m", "course_lib.grading", "grade", str(notebook), "--assignment", args.assignment,
               "--json", str(out), "--execution-timeout", str(args.execution_timeout),
               "--cell-timeout", str(args.cell_timeout), "--case-timeout", str(args.case_timeout),
               "--exercise-timeout", str(args.exercise_timeout), "--memory", str(args.memory),
               "--sandbox-user", args.sandbox_user]
    if args.seed_file:
        command += ["--seed-file", args.seed_file]
    if args.no_execute:
        command.append("--no-execute")
    return command


def grade_one(args: argparse.Namespace, submission: Submission, out: Path, limit: float) -> dict[str, Any]:
    """Grade one submission in its own process; a ``results.json`` dict whatever happens."""
    start = time.monotonic()
    proc = subprocess.Popen(grading_command(args, submission.path, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
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


def grade_all(args: argparse.Namespace) -> int:
    """The ``grade-all`` command (see the module docstring); 0 once every submission has a row."""
    if args.assignment not in NAMES:
        print(f"error: unknown assignment {args.assignment!r}; the assignments are {', '.join(NAMES)}",
              file=sys.stderr)
        return 2
    try:
        todo = submissions(Path(args.submissions))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec = get_assignment(args.assignment)
    exercises, questions = [ex.name for ex in spec.exercises], [q.id for q in spec.questions]
    limit = deadline(args, len(exercises))
    sweep, start = Sweep(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grade-all-") as tmp:
        outs = [Path(args.results or tmp) / f"{s.learner}.json" for s in todo]
        Path(args.results or tmp).mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            all_results = list(pool.map(lambda so: grade_one(args, so[0], so[1], limit), zip(todo, outs)))
    sweep.sweep()
    rows = [row(s, r, exercises, questions) for s, r in zip(todo, all_results)]
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["learner", "score"])
        writer.writeheader()
        writer.writerows(rows)
    failed = sum(r["graded"] != "yes" for r in rows)
    mean = sum(r["score"] for r in rows) / len(rows) if rows else 0.0
    print(f"graded {len(rows) - failed} of {len(rows)} submissions of {args.assignment} in "
          f"{time.monotonic() - start:.0f} s with {args.jobs} job{'s' * (args.jobs != 1)}: mean score {mean:.2f} of "
          f"{spec.max_score:g}, {failed} not graded; grades in {args.csv}", file=sys.stdout)
    return 0


"""What a grading produces: Gradescope's ``results.json``, the score table, GitHub Classroom's result, a CSV row.

Gradescope's top level holds only the keys of its specification (:data:`GRADESCOPE_KEYS`): the
assignment's maximum, the isolation achieved, the flags for the instructor and the written answers
go in ``extra_data``. ``execution_time`` is an integer number of seconds. Each exercise is two
tests: its public tests (``visible``) and its hidden tests (``after_published``: their inputs and
feedback appear once grades are published). Each written question is one more test worth 0 points, whose
output and score-table row say "answered" or "no answer" (and warn when the answer was found below an unedited
answer cell). A grading that could not happen at all is still a ``results.json``: score 0 and the reason
(:func:`fatal`). Cells are named by their number among the code cells, from 1 (:data:`CELL_NUMBERS`).
"""
from __future__ import annotations

import base64
import json
import re
from typing import Any

from ..authoring.exercise import Assignment
from ..authoring.questions import Answer
from .scoring import ExerciseResult

CELL_NUMBERS = ("Cell n in this feedback is the n-th code cell from the top of your notebook, the one JupyterLab shows "
                "as [n] after Restart & Run all.")
GRADESCOPE_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
                   "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}


def gradescope(assignment: Assignment, results: list[ExerciseResult], answers: list[Answer], notes: list[str],
               seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    """Gradescope's ``results.json`` content for a graded notebook."""
    tests = []
    for r in results:
        for kind, score, top, passed, total, output, visibility in (
                ("public", r.public_score, r.public_max, r.public_passed, r.public_total, r.public_output, "visible"),
                ("hidden", r.hidden_score, r.hidden_max, r.hidden_passed, r.hidden_total, r.hidden_output,
                 "after_published")):
            tests.append({"name": f"{r.name} ({kind} tests)", "score": score, "max_score": top,
                          "status": "passed" if score == top else "failed", "output": output,
                          "visibility": visibility, "extra_data": {"passed": passed, "cases": total}})
    for a in answers:
        worth = f", {a.points:g} point{'s' * (a.points != 1)}" if a.points else ""
        warning = f"\n\nWarning: {a.warning}." if a.warning else ""
        tests.append({"name": f"question {a.id} (graded by hand{worth})",
                      "score": 0.0, "max_score": 0.0, "status": "passed", "visibility": "visible",
                      "output": f"{a.status.capitalize()}.{warning}\n\n{a.prompt}\n\nYour answer:\n"
                                f"{a.text or '(no answer)'}",
                      "extra_data": {"answer": a.status, "warning": a.warning}})
    notes = list(notes)
    missing = [a.id for a in answers if not a.text]
    if answers:
        notes.append(f"Written answers: {len(answers) - len(missing)} of {len(answers)} answered"
                     + (f" (no answer to {', '.join(missing)})." if missing else "."))
    notes += [f"Warning, question {a.id}: {a.warning}." for a in answers if a.warning]
    flags = [flag for r in results for flag in r.flags]
    shown = "\n".join(notes + [t["output"] for t in tests])
    if re.search(r"\bcells? \d|^Cells [^:\n]*: \d", shown, re.MULTILINE):  # "cell 3: ...", "Cells stopped...: 3"
        notes.append(CELL_NUMBERS)
    return {"score": round(sum(r.score for r in results), 2), "execution_time": int(round(seconds)),
            "output": "\n".join(notes), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"assignment": assignment.name, "max_score": assignment.max_score, "flags": flags,
                           "answers": [{"id": a.id, "points": a.points, "text": a.text, "status": a.status,
                                        "warning": a.warning} for a in answers], **extra}}


def fatal(reason: str, seconds: float, assignment: Assignment | None = None) -> dict[str, Any]:
    """``results.json`` for a notebook that could not be graded: score 0 and why."""
    extra: dict[str, Any] = {"fatal": reason}
    if assignment is not None:
        extra.update(assignment=assignment.name, max_score=assignment.max_score)
    return {"score": 0.0, "execution_time": int(round(seconds)), "output": f"Not graded: {reason}",
            "visibility": "visible", "stdout_visibility": "hidden", "tests": [], "extra_data": extra}


def _fmt(x: float) -> str:
    return f"{x:g}"


def score_table(results: dict[str, Any]) -> str:
    """The score table the command line prints: per test, cases passed and points (no hidden details)."""
    rows = [("test", "passed", "score", "max")]
    for t in results["tests"]:
        counts = t.get("extra_data", {})
        if "answer" in counts:  # a written question: whether an answer was collected, "!" when it warns
            passed = counts["answer"] + (" (!)" if counts.get("warning") else "")
        else:
            passed = f"{counts.get('passed', '-')}/{counts.get('cases', '-')}"
        rows.append((t["name"], passed, _fmt(t["score"]), _fmt(t["max_score"])))
    rows.append(("total", "", _fmt(results["score"]), _fmt(results["extra_data"].get("max_score", 0))))
    w, v = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    lines = [f"{a:<{w}}  {b:>{v}}  {c:>6}  {d:>5}" for a, b, c, d in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)


def instructor_notes(results: dict[str, Any]) -> str:
    """Lines for the instructor only (Gradescope shows stdout to instructors): isolation, flags."""
    extra = results["extra_data"]
    lines = []
    if "isolation" in extra:
        lines.append("isolation: " + ", ".join(f"{k}={v}" for k, v in extra["isolation"].items()))
    lines += [f"FLAG: {flag}" for flag in extra.get("flags", [])]
    return "\n".join(lines)


def classroom(results: dict[str, Any]) -> dict[str, Any]:
    """The result of a GitHub Classroom runner (``autograding-grading-reporter`` reads it base64-encoded):
    one test per Gradescope test, public feedback only."""
    tests = [{"name": t["name"], "status": "pass" if t["status"] == "passed" else "fail", "score": t["score"],
              "message": t["output"] if t.get("visibility") == "visible" else "(hidden tests: details after grading)",
              "test_code": "", "filename": "", "line_no": 0, "duration": 0}
             for t in results["tests"]]
    max_score = results["extra_data"].get("max_score", 0)
    status = "error" if "fatal" in results["extra_data"] else ("pass" if results["score"] == max_score else "fail")
    return {"version": 1, "status": status, "max_score": max_score, "tests": tests}


def classroom_output(results: dict[str, Any]) -> str:
    """``result=<base64 JSON>``: the line a runner step appends to ``$GITHUB_OUTPUT``."""
    return "result=" + base64.b64encode(json.dumps(classroom(results)).encode()).decode()


def feedback_markdown(results: dict[str, Any], learner: str) -> str:
    """A learner's feedback as Markdown: the score, each test's points and output (hidden ones included: the file
    is for after grades are published), the written answers; no instructor flag, no isolation detail."""
    top = results.get("extra_data", {}).get("max_score")
    score = f"**Score: {_fmt(results['score'])}" + (f" of {_fmt(top)}**" if top is not None else "**")
    lines = [f"# Feedback for {learner}", "", score, "", results.get("output", ""), ""]
    for t in results.get("tests", []):
        lines += [f"## {t['name']}: {_fmt(t['score'])} / {_fmt(t['max_score'])}", "", "~~~~text",
                  t.get("output", "").replace("~~~~", "~ ~ ~ ~"), "~~~~", ""]
    return "\n".join(lines)


def exercise_scores(results: dict[str, Any]) -> dict[str, float]:
    """``{exercise: public + hidden points}`` from a ``results.json``."""
    scores: dict[str, float] = {}
    for t in results["tests"]:
        name, _, kind = t["name"].rpartition(" (")
        if kind in ("public tests)", "hidden tests)"):
            scores[name] = round(scores.get(name, 0.0) + t["score"], 2)
    return scores

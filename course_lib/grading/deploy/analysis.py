"""What an instructor learns from a class: the item analysis ``grade-all`` writes beside its CSV.

From the ``results.json`` of every graded learner (those not graded are left out):

- ``cases.csv``: for every test case (exercise, public or hidden, its number), the share of learners who failed
  it and the most common failure message (hidden cases differ between learners: the number is the same case of
  the exercise's generator);
- ``functions.csv``: per function, the score distribution (how many learners got each score) and the mean;
- ``answers/QUESTION.md``: each written question's answers, one section per learner.

Case outcomes are read from the feedback lines of :func:`course_lib.grading.grade.scoring._feedback`
(``  [pass] description`` or ``  [FAIL] description: your function message``); an exercise that could not run
(missing, the reference itself...) fails every case with its one message.
"""
from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..grade.reports import exercise_scores

CASE_LINE = re.compile(r"^  \[(pass|FAIL)\] (.*?)(?:: your function (.*))?$")
TEST_NAME = re.compile(r"^(\w+) \((public|hidden) tests\)$")


def case_outcomes(results: dict[str, Any]) -> dict[tuple[str, str, int], tuple[str, str | None]]:
    """``{(exercise, kind, case number): (description, failure message or None)}`` of one ``results.json``."""
    out: dict[tuple[str, str, int], tuple[str, str | None]] = {}
    for test in results.get("tests", []):
        match = TEST_NAME.match(test["name"])
        if match is None:
            continue
        exercise, kind = match.groups()
        lines = [m for m in map(CASE_LINE.match, test["output"].splitlines()) if m is not None]
        if lines:
            for i, m in enumerate(lines):
                out[(exercise, kind, i)] = (m.group(2), None if m.group(1) == "pass" else m.group(3) or "failed")
        else:  # the function never ran: every case failed for the same reason
            reason = test["output"].strip().splitlines()[0] if test["output"].strip() else "failed"
            for i in range(test.get("extra_data", {}).get("cases", 0)):
                out[(exercise, kind, i)] = (f"{kind} case {i + 1}", reason)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "question"


def write_analysis(folder: Path, graded: dict[str, dict[str, Any]], exercises: list[str],
                   questions: list[str]) -> Path:
    """Write the item analysis of ``graded`` (``{learner: results.json}``) into ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes: dict[tuple[str, str, int], list[tuple[str, str | None]]] = defaultdict(list)
    for results in graded.values():
        for key, outcome in case_outcomes(results).items():
            outcomes[key].append(outcome)
    order = {name: k for k, name in enumerate(exercises)}
    with open(folder / "cases.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["exercise", "kind", "case", "description", "learners", "failed", "share_failed",
                         "most_common_failure", "learners_with_it"])
        for key in sorted(outcomes, key=lambda k: (order.get(k[0], len(order)), k[1] == "hidden", k[2])):
            seen = outcomes[key]
            failures = Counter(m for _, m in seen if m is not None)
            common, count = failures.most_common(1)[0] if failures else ("", 0)
            description = Counter(d for d, _ in seen).most_common(1)[0][0]
            failed = sum(failures.values())
            writer.writerow([*key[:2], key[2] + 1, description, len(seen), failed, f"{failed / len(seen):.2f}",
                             common, count])
    with open(folder / "functions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["exercise", "score", "learners", "mean_score"])
        for exercise in exercises:
            scores = [exercise_scores(r).get(exercise, 0.0) for r in graded.values()]
            mean = f"{sum(scores) / len(scores):.2f}" if scores else ""
            for score, n in sorted(Counter(scores).items()):
                writer.writerow([exercise, f"{score:g}", n, mean])
    (folder / "answers").mkdir(exist_ok=True)
    for question in questions:
        sections = [f"# Answers to question {question}\n"]
        for learner, results in sorted(graded.items()):
            text = next((a["text"] for a in results.get("extra_data", {}).get("answers", []) if a["id"] == question),
                        "")
            sections.append(f"## {learner}\n\n{text.strip() or '(no answer)'}\n")
        (folder / "answers" / f"{_slug(question)}.md").write_text("\n".join(sections))
    return folder

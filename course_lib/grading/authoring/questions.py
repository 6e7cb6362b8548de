"""Written questions: the learner's answers, collected for the instructor (graded by hand, or not at all).

An assignment lists its :class:`~course_lib.grading.authoring.exercise.Question` objects; the learner answers each
in one or more markdown cells whose metadata is ``{"course_grading": {"answer": "<question id>"}}``
(the exercise notebook ships such a cell under each question, as nbgrader's "manually graded
answer" cells). Cells are found by that metadata, wherever they were moved; several cells for one
question are joined in notebook order. Nothing here is scored automatically.
"""
from __future__ import annotations

from dataclasses import dataclass

import nbformat

from .exercise import Assignment

MAX_ANSWER = 20_000  # characters kept of one answer
ANSWER_PLACEHOLDER = "*Your answer (double-click this cell to edit it).*"  # what a generated answer cell holds


@dataclass(frozen=True)
class Answer:
    """A question, its points (awarded by hand) and what the learner wrote ("" if nothing)."""

    id: str
    prompt: str
    points: float
    text: str


def answer_id(cell: nbformat.NotebookNode) -> str | None:
    """The question id a markdown cell answers, from its metadata, or ``None``."""
    meta = cell.get("metadata", {}).get("course_grading")
    answer = meta.get("answer") if isinstance(meta, dict) else None
    return answer if isinstance(answer, str) else None


def collect_answers(nb: nbformat.NotebookNode, assignment: Assignment) -> list[Answer]:
    """The learner's answer to each of ``assignment``'s questions, in the assignment's order."""
    texts: dict[str, list[str]] = {q.id: [] for q in assignment.questions}
    for cell in nb.cells:
        qid = answer_id(cell) if cell.get("cell_type") == "markdown" else None
        if qid in texts:
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            if text.strip() != ANSWER_PLACEHOLDER:  # an answer cell left as generated is no answer
                texts[qid].append(text)
    return [Answer(q.id, q.prompt, q.points, "\n\n".join(t.strip() for t in texts[q.id] if t.strip())[:MAX_ANSWER])
            for q in assignment.questions]

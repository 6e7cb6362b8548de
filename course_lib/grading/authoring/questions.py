"""Written questions: the learner's answers, collected for the instructor (graded by hand, or not at all).

An assignment lists its :class:`~course_lib.grading.authoring.exercise.Question` objects; the learner answers each
in one or more markdown cells whose metadata is ``{"course_grading": {"answer": "<question id>"}}``
(the exercise notebook ships such a cell under each question, as nbgrader's "manually graded
answer" cells). Cells are found by that metadata, wherever they were moved; several cells for one
question are joined in notebook order. Nothing here is scored automatically.

A learner who adds a new markdown cell below an answer cell instead of editing it writes an answer that carries
no metadata. Such text is collected too: the markdown cells that follow an answer cell, up to the next code cell,
answer cell or cell that opens a question (one that holds a question's prompt, begins with a heading or with a
bold label such as ``**Sum.**``, as the notebooks' questions do), belong to that answer. When the answer cell
itself still holds :data:`ANSWER_PLACEHOLDER`, the answer carries a warning (shown in the feedback and the score
table) that says where the text was found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat

from .exercise import Assignment

MAX_ANSWER = 20_000  # characters kept of one answer
ANSWER_PLACEHOLDER = "*Your answer (double-click this cell to edit it).*"  # what a generated answer cell holds
BELOW = ("the answer cell still holds its placeholder; the text of the cell(s) you added below it was collected "
         "as your answer: next time, type your answer in the answer cell itself (double-click it)")


@dataclass(frozen=True)
class Answer:
    """A question, its points (awarded by hand), what the learner wrote ("" if nothing), and a warning about where
    it was found ("" when it is where it should be)."""

    id: str
    prompt: str
    points: float
    text: str
    warning: str = ""

    @property
    def status(self) -> str:
        """``"answered"`` or ``"no answer"``."""
        return "answered" if self.text else "no answer"


def answer_id(cell: nbformat.NotebookNode) -> str | None:
    """The question id a markdown cell answers, from its metadata, or ``None``."""
    meta = cell.get("metadata", {}).get("course_grading")
    answer = meta.get("answer") if isinstance(meta, dict) else None
    return answer if isinstance(answer, str) else None


def _text(cell: nbformat.NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


OPENS = re.compile(r"\s*(#|\*\*[^*\n]{1,40}\.\*\*)")  # a heading, or a bold label "**Sum.**", begins the cell


def _opens_question(text: str, prompts: list[str]) -> bool:
    return bool(OPENS.match(text)) or any(p in _words(text) for p in prompts)


def collect_answers(nb: nbformat.NotebookNode, assignment: Assignment) -> list[Answer]:
    """The learner's answer to each of ``assignment``'s questions, in the assignment's order."""
    texts: dict[str, list[str]] = {q.id: [] for q in assignment.questions}
    unedited: dict[str, bool] = {q.id: False for q in assignment.questions}
    below: dict[str, bool] = {q.id: False for q in assignment.questions}
    prompts = [_words(q.prompt) for q in assignment.questions]
    current = None  # the question whose answer cell the following markdown cells continue
    for cell in nb.cells:
        kind = cell.get("cell_type")
        qid = answer_id(cell) if kind == "markdown" else None
        text = _text(cell)
        if qid is not None:
            current = qid if qid in texts else None  # a cell answering no question of this assignment is ignored
            if current is None:
                continue
            if text.strip() == ANSWER_PLACEHOLDER:  # an answer cell left as generated is no answer
                unedited[qid] = True
            else:
                texts[qid].append(text)
        elif kind == "markdown" and current is not None and not _opens_question(text, prompts):
            if text.strip():
                texts[current].append(text)
                below[current] = True
        else:
            current = None
    return [Answer(q.id, q.prompt, q.points,
                   "\n\n".join(t.strip() for t in texts[q.id] if t.strip())[:MAX_ANSWER],
                   BELOW if unedited[q.id] and below[q.id] else "")
            for q in assignment.questions]

"""Generate the learners' exercise notebooks from the solution masters.

In a master (``solutions/NN_topic.ipynb``) the code the learner must write sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines (nbgrader's markers), inside the function
being written. :func:`exercise_notebook` replaces each block by
``raise NotImplementedError("<name>: <hint>")`` at the block's indentation (the hint comes from the
exercise's spec, found by the enclosing ``def``, and a pointer to its step-by-step hints when it has
some), replaces the model answer in every written-answer cell (a markdown cell whose metadata is
``{"course_grading": {"answer": id}}``) by :data:`ANSWER_PLACEHOLDER`, clears every output, execution
count and execution timestamp, and keeps everything else.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from .questions import ANSWER_PLACEHOLDER, answer_id
from .specs import find_exercise

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\b.*$")
END = re.compile(r"^[ \t]*### END SOLUTION\b.*$")
DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async\s+)?def\s+(?P<name>\w+)\s*\(")


def _hint(lines: list[str], begin: int, indent: str) -> str:
    for line in reversed(lines[:begin]):
        m = DEF.match(line)
        if m and len(m["indent"]) < len(indent):
            try:
                exercise = find_exercise(m["name"])[1]
            except ValueError:
                return f"{m['name']}: write this function"
            more = f" (hint({m['name']!r}) shows how, one step at a time)" if exercise.hints else ""
            return f"{m['name']}: {exercise.hint}{more}"
    return "write your solution here"


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every solution block replaced by ``raise NotImplementedError(hint)``."""
    lines, out, i = source.split("\n"), [], 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if not m:
            if END.match(lines[i]):
                raise ValueError(f"{where}: '### END SOLUTION' at line {i + 1} without a '### BEGIN SOLUTION'")
            out.append(lines[i])
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if END.match(lines[j])), None)
        if end is None:
            raise ValueError(f"{where}: '### BEGIN SOLUTION' at line {i + 1} has no '### END SOLUTION'")
        out.append(f"{m['indent']}raise NotImplementedError({_hint(lines, i, m['indent'])!r})")
        i = end + 1
    return "\n".join(out)


def exercise_notebook(master: nbformat.NotebookNode, where: str = "notebook") -> nbformat.NotebookNode:
    """The learner's version of ``master`` (a new notebook; ``master`` is not changed)."""
    nb = copy.deepcopy(master)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{where}, cell {k}")
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown" and answer_id(cell) is not None:
            cell.source = ANSWER_PLACEHOLDER
        cell.metadata.pop("execution", None)
    return nb


def render(master_path: Path) -> str:
    """The exercise notebook generated from ``master_path``, as the text written to disk."""
    nb = exercise_notebook(nbformat.read(master_path, as_version=4), str(master_path))
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def generate(solutions: str | Path, exercises: str | Path, check: bool = False) -> list[Path]:
    """Write ``exercises/NAME.ipynb`` for every ``solutions/NAME.ipynb``; return the files that changed.

    With ``check=True`` nothing is written: the returned files are those that are missing or out of
    date, plus exercise notebooks that have no master.
    """
    solutions, exercises = Path(solutions), Path(exercises)
    if not solutions.is_dir():
        raise FileNotFoundError(f"{solutions} is not a folder of solution notebooks")
    changed = []
    masters = sorted(solutions.glob("*.ipynb"))
    for master in masters:
        target = exercises / master.name
        text = render(master)
        if not target.exists() or target.read_text() != text:
            changed.append(target)
            if not check:
                exercises.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    if check and exercises.is_dir():
        changed += [p for p in sorted(exercises.glob("*.ipynb")) if not (solutions / p.name).exists()]
    return changed

"""Find the learner's definitions in a notebook, without running its other code.

The grader tests the functions "as the executed notebook defines them": cells run top to bottom,
so the last top-level binding of a name wins, whatever the cells' order, duplicates or deletions.
From each code cell (IPython magics translated, the body of ``%%time``-like cell magics kept,
cells with syntax errors skipped, as the kernel skips them) we keep only the top-level statements that *define* things:

- ``import`` / ``from ... import``, ``def``, ``async def``, ``class``;
- an assignment to a graded name (``soft_targets = ...``: it defines the answer, whatever it is);
- an assignment to plain names whose right-hand side calls nothing (constants, ``EPS = 1e-12``).

Everything else (training loops, prints, monkeypatching such as ``course_lib.x.f = ...``) is left
out, so it never runs where the learner's functions are tested.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager


PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")


@dataclass(frozen=True)
class CellCode:
    """A code cell's Python source (magics translated) or, if it does not parse, the syntax error."""

    index: int
    source: str
    error: str | None = None


def cell_codes(nb) -> list[CellCode]:
    """Every code cell of notebook ``nb`` (an ``nbformat`` node), in order, as Python source."""
    manager = TransformerManager()
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        raw = cell.get("source", "")
        raw = "".join(raw) if isinstance(raw, list) else str(raw)
        first, _, rest = raw.lstrip().partition("\n")
        if first.split(" ")[0] in PYTHON_CELL_MAGICS:
            raw = rest  # the body of %%time and the like is Python that the kernel runs as written
        try:
            source = manager.transform_cell(raw)
            ast.parse(source)
        except SyntaxError as e:
            out.append(CellCode(i, raw, f"SyntaxError: {e.msg} (line {e.lineno})"))
            continue
        except Exception as e:  # noqa: BLE001 - IPython's transformers may fail on odd input
            out.append(CellCode(i, raw, f"{type(e).__name__}: {e}"))
            continue
        out.append(CellCode(i, source))
    return out


def _bound_names(node: ast.stmt) -> set[str] | None:
    """The names an assignment binds, or ``None`` if it assigns to anything else (``obj.attr = ...``)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names: set[str] = set()
    stack = list(targets)
    while stack:
        t = stack.pop()
        if isinstance(t, ast.Name):
            names.add(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            stack += t.elts
        elif isinstance(t, ast.Starred):
            stack.append(t.value)
        else:
            return None
    return names


def _calls_outside_lambdas(node: ast.AST) -> bool:
    if isinstance(node, ast.Lambda):
        return False
    if isinstance(node, ast.Call):
        return True
    return any(_calls_outside_lambdas(child) for child in ast.iter_child_nodes(node))


def definition_nodes(source: str, graded: set[str]) -> list[ast.stmt]:
    """The defining top-level statements of ``source`` (see the module docstring), in order."""
    kept = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kept.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            names = _bound_names(node)
            if names is not None and (names & graded or not _calls_outside_lambdas(node.value)):
                kept.append(node)
    return kept


def defined_names(nodes: list[ast.stmt]) -> set[str]:
    """The names that ``nodes`` bind at top level."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            names |= _bound_names(node) or set()
    return names

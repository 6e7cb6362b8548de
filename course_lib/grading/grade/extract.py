"""Find the learner's definitions in a notebook, without running its other code.

The grader tests the functions "as the executed notebook defines them": cells run top to bottom,
so the last top-level binding of a name wins, whatever the cells' order, duplicates or deletions.
From each code cell (IPython magics translated, the body of ``%%time``-like cell magics kept,
cells with syntax errors skipped, as the kernel skips them) :func:`definitions` keeps the top-level
statements that *define* names, in notebook order:

- ``import`` / ``from ... import``, ``def``, ``async def``, ``class``;
- assignments to plain names (``EPS = torch.finfo(torch.float32).eps``, ``device = torch.device("cpu")``,
  ``soft_targets = make_it()``), whatever their right-hand side calls;

and of those only the ones the graded functions *need*: that bind a graded name, or a name used by a
kept statement (the closure, so a constant used by a helper used by a graded function is kept).
Everything else (bare expressions, ``print``, ``check(...)``, loops, training, assignments to
attributes or items such as monkeypatching ``course_lib.x.f = ...``, and definitions nothing graded
uses, such as ``teacher = get_model("teacher")``) never runs where the learner's functions are
tested.
"""
from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")
EVERYTHING = "*"  # what ``from m import *`` binds


@dataclass(frozen=True)
class CellCode:
    """A code cell's Python source (magics translated) or, if it does not parse, the syntax error. ``number`` counts
    the code cells from 1 at the top: cell ``n`` is the one JupyterLab shows as ``[n]`` after Restart & Run all
    (a learner cannot see a cell's index among all the cells, markdown included)."""

    number: int
    source: str
    error: str | None = None


@dataclass(frozen=True)
class Statement:
    """One top-level defining statement: where it is (cell index, line), its source, what it binds and uses."""

    cell: int
    line: int
    source: str
    binds: frozenset[str]
    uses: frozenset[str]

    @property
    def where(self) -> str:
        return f"cell {self.cell}, line {self.line}"


def cell_codes(nb) -> list[CellCode]:
    """Every code cell of notebook ``nb`` (an ``nbformat`` node), in order, as Python source."""
    manager = TransformerManager()
    out = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number = len(out) + 1
        raw = cell.get("source", "")
        raw = "".join(raw) if isinstance(raw, list) else str(raw)
        first, _, rest = raw.lstrip().partition("\n")
        if first.split(" ")[0] in PYTHON_CELL_MAGICS:
            raw = rest  # the body of %%time and the like is Python that the kernel runs as written
        try:
            source = manager.transform_cell(raw)
            ast.parse(source)
        except SyntaxError as e:
            out.append(CellCode(number, raw, f"SyntaxError: {e.msg} (line {e.lineno})"))
            continue
        except Exception as e:  # noqa: BLE001 - IPython's transformers may fail on odd input
            out.append(CellCode(number, raw, f"{type(e).__name__}: {e}"))
            continue
        out.append(CellCode(number, source))
    return out


def _bound_names(node: ast.stmt) -> set[str] | None:
    """The names a defining statement binds, or ``None`` if it is not one (``obj.attr = ...``, a loop...)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {EVERYTHING if a.name == "*" else (a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    elif isinstance(node, ast.AugAssign):
        targets = [node.target]
    else:
        return None
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


def _used_names(source: str) -> set[str]:
    """The global names the top-level statement ``source`` reads, when it runs or when what it defines is
    called (Python's own scoping, from :mod:`symtable`: a function's locals and parameters are not globals)."""
    def walk(table: symtable.SymbolTable) -> set[str]:
        if table.get_type() == "function":
            names = set(table.get_globals())
        else:  # the module (the statement itself) or a class body: the names it reads and does not bind
            names = {s.get_name() for s in table.get_symbols()
                     if s.is_referenced() and (table.get_type() == "module" or s.is_global())}
        for child in table.get_children():
            names |= walk(child)
        return names
    return walk(symtable.symtable(source, "<cell>", "exec"))


def statements(cells: list[CellCode]) -> list[Statement]:
    """Every top-level defining statement of the cells that parse, in notebook order."""
    out = []
    for cell in cells:
        if cell.error is not None:
            continue
        lines = cell.source.splitlines(keepends=True)
        for node in ast.parse(cell.source).body:
            binds = _bound_names(node)
            if binds:
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                source = "".join(lines[first - 1:node.end_lineno])
                out.append(Statement(cell.number, first, source, frozenset(binds), frozenset(_used_names(source))))
    return out


def needed(all_statements: list[Statement], graded: set[str]) -> list[Statement]:
    """The statements that bind a graded name or a name a kept statement uses, in notebook order."""
    wanted, kept, changed = set(graded), set(), True
    while changed:
        changed = False
        for i, st in enumerate(all_statements):
            if i not in kept and (st.binds & wanted or EVERYTHING in st.binds):
                kept.add(i)
                wanted |= st.uses
                changed = True
    return [st for i, st in enumerate(all_statements) if i in kept]


def definitions(cells: list[CellCode], graded: set[str]) -> list[Statement]:
    """What the sandbox runs before testing the functions ``graded`` (see the module docstring)."""
    return needed(statements(cells), graded)

"""The reference fence, by source: a copy of ``course_lib`` in which the graded references do not exist.

A sandbox imports ``course_lib`` from a *snapshot* written by :func:`write_snapshot`, in which the
body of every graded reference of the assignment, and of every private helper (``_name``) of its
module used by nothing else, is replaced by one line that calls
:func:`course_lib.grading.confinement.tripwire.trip` (line numbers kept). Whatever route the learner's code
takes to a reference (calling it, ``importlib.reload``, ``inspect.getsource``, reading the
snapshot's files, its private helpers such as an ``autograd.Function``), it finds the tripwire, not
the code. Everything else of the course (``qrange``, data loaders, the zoo, references of the other
assignments) is the course's own code and keeps working.

:func:`same_tokens` compares a learner's function with its reference token for token (comments,
docstring and layout ignored): a copied reference is flagged for the instructor.
"""
from __future__ import annotations

import ast
import inspect
import io
import re
import shutil
import textwrap
import tokenize
from collections.abc import Iterable
from pathlib import Path

from ..authoring.exercise import Assignment, resolve

PACKAGE = Path(__file__).resolve().parents[2]  # course_lib
TRIPWIRE = "from course_lib.grading.confinement.tripwire import trip; trip({qualname!r})"


def module_file(fn: object) -> Path:
    """The resolved path of the file that defines ``fn`` (a decorated function's: ``@torch.no_grad()`` wraps it
    in a function of torch's)."""
    return Path(inspect.getsourcefile(inspect.unwrap(fn))).resolve()


def _top_level_defs(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def fenced_names(tree: ast.Module, graded: set[str], allowed: set[str] = frozenset()) -> set[str]:
    """``graded`` and every top-level definition of the module that a fenced one uses, but ``allowed``.

    A reference is usually a thin layer over its module's helpers (``huffman_code`` is
    ``canonical_code(huffman_lengths(counts))``): calling the helpers would be calling the reference.
    """
    defs = _top_level_defs(tree)
    fenced, todo = set(), list(graded)
    while todo:
        name = todo.pop()
        if name in fenced or name in allowed or name not in defs:
            continue
        fenced.add(name)
        todo += _names_in(defs[name]) & set(defs)
    return fenced


def _functions_to_blank(node: ast.AST, module: str) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """The functions whose bodies go: ``node`` itself, or a class's methods; each with its qualified name."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [(node, f"{module}.{node.name}")]
    return [(n, f"{module}.{node.name}.{n.name}") for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def fence_source(source: str, graded: set[str], module: str, allowed: set[str] = frozenset()) -> str:
    """``source`` with the bodies of ``graded`` and of what they use (:func:`fenced_names`) replaced by tripwires."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    defs = _top_level_defs(tree)
    missing = graded - set(defs)
    if missing:
        raise ValueError(f"{module} defines no top-level {', '.join(sorted(missing))}")
    functions = [f for name in fenced_names(tree, graded, allowed) for f in _functions_to_blank(defs[name], module)]
    for fn, qualname in sorted(functions, key=lambda f: f[0].lineno, reverse=True):  # bottom up: lines stay valid
        body = fn.body[1:] if ast.get_docstring(fn, clean=False) is not None and len(fn.body) > 1 else fn.body
        first, last = body[0].lineno, fn.end_lineno
        if first == fn.lineno:  # `def f(): return x`: keep `def f(): ` and put the tripwire after it
            head = lines[first - 1].encode()[:body[0].col_offset].decode()  # col_offset counts UTF-8 bytes
            text = head + TRIPWIRE.format(qualname=qualname) + "\n"
        else:
            text = " " * body[0].col_offset + TRIPWIRE.format(qualname=qualname) + "\n"
        count = last - first + 1
        lines[first - 1:last] = [text] + ["\n"] * (count - text.count("\n"))
    return "".join(lines)


def fenced_files(assignment: Assignment) -> dict[Path, str]:
    """``{path relative to course_lib: fenced source}`` for the files that define ``assignment``'s references.

    ``assignment.allowed`` names the helpers (``"module:function"``) a learner may use: never fenced.
    """
    by_file: dict[Path, tuple[str, set[str]]] = {}
    for exercise in assignment.exercises:
        fn = exercise.reference_fn()
        if not inspect.isfunction(fn):
            raise TypeError(f"the reference {exercise.reference} must be a function, got {type(fn).__name__}")
        module, names = by_file.setdefault(module_file(fn), (fn.__module__, set()))
        names.add(fn.__name__)
    allowed = {(module_file(fn), fn.__name__) for fn in map(resolve, assignment.allowed)}
    return {path.relative_to(PACKAGE): fence_source(path.read_text(), names, module,
                                                    {name for file, name in allowed if file == path})
            for path, (module, names) in by_file.items()}


def tripwire_names(fenced: dict[Path, str]) -> set[str]:
    """The qualified names of the references fenced in ``fenced`` (what a genuine tripwire can report)."""
    pattern = re.compile(re.escape(TRIPWIRE.format(qualname="@")).replace("'@'", "'([^']+)'"))
    return {m.group(1) for text in fenced.values() for m in pattern.finditer(text)}


def write_snapshot(folder: Path, fenced: dict[Path, str] | None = None) -> Path:
    """Copy ``course_lib``'s sources to ``folder/course_lib``, with ``fenced`` files replaced; return ``folder``."""
    target = folder / "course_lib"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "examples"))
    for relative, text in (fenced or {}).items():
        (target / relative).write_text(text)
    return folder


# --- copies of the reference ------------------------------------------------------------------

SKIPPED_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                  tokenize.ENCODING, tokenize.ENDMARKER}


def body_tokens(source: str) -> list[str]:
    """The tokens of the body of the (first) function defined in ``source``, docstring and layout left out."""
    source = textwrap.dedent(source)
    tree = ast.parse(source)
    fn = next(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    body = fn.body[1:] if ast.get_docstring(fn, clean=False) is not None else fn.body
    if not body:
        return []
    start, end = (body[0].lineno, body[0].col_offset), (fn.end_lineno, fn.end_col_offset)
    return [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type not in SKIPPED_TOKENS and start <= tok.start and tok.end <= end]


def same_tokens(learner_source: str, reference: object) -> bool:
    """Whether the function in ``learner_source`` has ``reference``'s body, token for token."""
    try:
        mine = body_tokens(learner_source)
    except (SyntaxError, StopIteration, tokenize.TokenError):
        return False
    return bool(mine) and mine == body_tokens(inspect.getsource(reference))


def learner_function_sources(sources: Iterable[str], names: set[str]) -> dict[str, str]:
    """The source of the last top-level ``def`` of each of ``names`` in the cells ``sources``."""
    found: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
                found[node.name] = ast.get_source_segment(source, node) or ""
    return found

"""The course's notebooks: executed in place with fresh outputs, numbers in their prose filled in from the code
that computes them, and openable anywhere (Jupyter, Colab, Binder).

- ``python -m course_lib.notebooks execute PATH [PATH ...]`` runs every ``.ipynb`` under the given files or
  folders (``_build`` and checkpoints skipped) in a fresh kernel of this Python, from the notebook's own
  folder, with progress bars off, and writes the outputs back, without the machine's traces: stderr streams
  (warnings, progress bars) are dropped, and absolute paths of this machine's Python and of the checkout
  (a traceback's ``File /.../course_lib/data.py``) become relative (``course_lib/data.py``). A notebook that
  fails is left as it was and the others still run (the exit status says). It then fills the executed
  notebooks' figures (``fill``).
- ``python -m course_lib.notebooks fill PATH [PATH ...] [--check]`` writes into the prose of every notebook the
  figures its code recorded (:func:`record`). The prose quotes a figure as an inline HTML marker,
  ``<span data-figure="found_train">3,500</span>``, which reads as ``3,500`` in Jupyter, JupyterLab, Colab and
  the HTML book alike; ``fill`` rewrites the marker's text from the notebook's stored record outputs (a figure of
  another notebook is named ``other.ipynb::name``, its path relative to the quoting notebook). With ``--check``
  nothing is written and the exit status says whether every marker shows its recorded value. After
  re-executing notebooks by hand, run ``fill book`` (``make notebooks`` does: execute, then fill).
- ``python -m course_lib.notebooks install-cells PATH [PATH ...] [--check]`` makes the first cell of every
  notebook the guarded install cell (:func:`install_cell_source`): opened outside the course's environment
  (Colab, a bare Jupyter), it installs the course from its repository, pinned to this version; inside, it does
  nothing. It is built from the one repository setting (:func:`course_lib.repository_url`) and hidden in the
  book (tag ``remove-cell``). With ``--check`` nothing is written and the exit status says whether every
  notebook is up to date.

A code cell records the figures its prose quotes with ``record(name=value)``: a reader of the notebook sees
``name = value`` under the cell; the output carries the value in myst-nb's glue format too (written without
myst-nb, which is only a book-building tool), so the HTML book hides these outputs and its Markdown pages can
still quote a notebook's figure with ``{glue:text}`` (``book/algorithms/*.md``).
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from . import release_ref, repository_url

KERNEL = "python3"
KERNELSPEC = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
INSTALL_TAG = "remove-cell"
GLUE_PREFIX = "application/papermill.record/"  # myst-nb's glue outputs: hidden in the book, quoted by {glue} roles
MARKER = re.compile(r'<span data-figure="(?P<ref>[^"<>]*)">(?P<text>.*?)</span>', re.DOTALL)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`(?P<ref>[^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^[ \t]*[`:]{3,}\{glue(?::\w+)?\}[ \t]+(?P<key>\S+)[ \t]*\n"
                            r"(?P<options>(?:[ \t]*:[\w-]+:.*\n)*)", re.MULTILINE)
SKIPPED = {"_build", ".ipynb_checkpoints"}
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~&])")  # backslash-escaped in a text figure


def find_notebooks(paths: list[str | Path]) -> list[Path]:
    """Every ``.ipynb`` file named in or under ``paths``, sorted, skipping build and checkpoint folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix == ".ipynb":
            found.append(p)
        elif p.is_dir():
            found += [f for f in p.rglob("*.ipynb") if not SKIPPED & set(f.parts)]
        else:
            raise FileNotFoundError(f"{p} is neither a notebook nor a folder")
    return sorted(set(found))


def install_cell_source() -> str:
    """The first cell of every notebook: install the course, pinned to this version, when it is missing."""
    return ("# Opened outside the course's environment (e.g. in Colab)? This installs the course first.\n"
            "import importlib.util\n"
            "if importlib.util.find_spec(\"course_lib\") is None:\n"
            f"    %pip install --quiet \"course_lib @ git+{repository_url()}@{release_ref()}\"")


def has_install_cell(nb: nbformat.NotebookNode) -> bool:
    """Whether ``nb`` starts with the current install cell, hidden in the book."""
    first = nb.cells[0] if nb.cells else None
    return (first is not None and first.cell_type == "code" and first.source == install_cell_source()
            and INSTALL_TAG in first.metadata.get("tags", []))


def with_install_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the install cell first (an older install cell, recognised by its tag, is replaced)."""
    if has_install_cell(nb):
        return nb
    cell = nbformat.v4.new_code_cell(install_cell_source(), metadata={"tags": [INSTALL_TAG]})
    cell.id = "install-course"  # stable, so that re-running this changes nothing
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and INSTALL_TAG in first.metadata.get("tags", []) \
            and "importlib.util.find_spec" in first.source:
        cell.execution_count = first.execution_count
        nb.cells[0] = cell
    else:
        nb.cells.insert(0, cell)
    return nb


# ---------------------------------------------------------------------------------------------------------
# Figures: numbers computed by a notebook's code and quoted in its prose

@dataclass(frozen=True)
class Recorded:
    """A figure as a notebook's outputs store it: its text (``None`` for a displayed object such as a plot,
    which pages can glue but prose cannot quote), and whether that text is Markdown or plain text."""

    text: str | None
    markdown: bool = False

    def quoted(self) -> str:
        """The figure as it stands in Markdown prose: Markdown as is, plain text with its Markdown escaped."""
        if self.text is None:
            raise ValueError("a displayed object (a plot) cannot be quoted in text")
        return self.text if self.markdown else MARKDOWN_SPECIAL.sub(r"\\\1", self.text)


def record(**figures: Any) -> None:
    """Show each figure under its name, for the reader of the notebook, and keep it for the prose.

    ``record(found_train=f"{len(splits.train):,}")`` shows ``found_train = 3,500`` under the cell, and the
    prose quotes it as ``<span data-figure="found_train">3,500</span>`` (:func:`fill` writes the value there).
    A figure is a ``str`` formatted as the prose quotes it (plain text), an ``IPython.display.Markdown`` (one
    paragraph of Markdown), or a matplotlib figure, which is displayed as itself for a book page's ``{glue}``
    directive. Each figure is one output in myst-nb's glue format, written here without myst-nb.
    """
    from IPython import get_ipython
    from IPython.core.formatters import format_display_data
    from IPython.display import Markdown, display
    from matplotlib.figure import Figure

    for name, value in figures.items():
        metadata: dict[str, Any] = {"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}}
        text = value.data if isinstance(value, Markdown) else value
        if isinstance(text, str) and (re.search(r"\n[ \t]*\n", text) or "</span>" in text):
            raise ValueError(f"figure {name} must be one paragraph (no blank line, no </span>), got {text!r}")
        if isinstance(value, str):
            data = {"text/plain": f"{name} = {text}", GLUE_PREFIX + "text/plain": repr(text)}
        elif isinstance(value, Markdown) and isinstance(text, str):
            data = {"text/plain": f"{name} = {text}", GLUE_PREFIX + "text/markdown": text}
        elif isinstance(value, Figure):
            data, shown = format_display_data(value)
            metadata = {**shown, "scrapbook": {"name": name, "mime_prefix": ""}}
        else:
            raise TypeError(f"figure {name} must be a str formatted for the text, an IPython.display.Markdown or a "
                            f"matplotlib Figure, got {type(value).__name__} (format numbers: f\"{{x:.1f}}\")")
        if get_ipython() is None:  # a plain Python process: the reader's view only
            print(data.get("text/plain", name))
        else:
            display(data, raw=True, metadata=metadata)


def recorded(nb: nbformat.NotebookNode) -> dict[str, Recorded]:
    """The figures that the stored outputs of ``nb`` record, by name (:func:`record`, or myst-nb's ``glue``)."""
    found: dict[str, Recorded] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            glued = output.get("metadata", {}).get("scrapbook")
            if not glued:
                continue
            name, data = glued["name"], output.get("data", {})
            if name in found:
                raise ValueError(f"figure {name} is recorded twice")
            if GLUE_PREFIX + "text/markdown" in data:
                found[name] = Recorded(data[GLUE_PREFIX + "text/markdown"], markdown=True)
            elif GLUE_PREFIX + "text/plain" in data:
                text = ast.literal_eval(data[GLUE_PREFIX + "text/plain"])
                if not isinstance(text, str):
                    raise ValueError(f"figure {name} is recorded as {type(text).__name__}, not as formatted text")
                found[name] = Recorded(text)
            else:
                found[name] = Recorded(None)
    return found


class _Records:
    """The figures of each notebook, read once, by resolved path."""

    def __init__(self) -> None:
        self._by_path: dict[Path, dict[str, Recorded]] = {}

    def of(self, path: Path) -> dict[str, Recorded]:
        path = path.resolve()
        if path not in self._by_path:
            self._by_path[path] = recorded(nbformat.read(path, as_version=4))
        return self._by_path[path]


def _source(path: Path, ref: str) -> tuple[Path, str]:
    """The notebook and the name that a reference ``name`` or ``other.ipynb::name`` in ``path`` points to."""
    doc, _, name = ref.rpartition("::")
    return ((path.parent / doc) if doc else path).resolve(), name


def fill_notebook(path: Path, records: _Records | None = None) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    """``path`` with every figure marker's text set to the recorded figure, the markers that showed another
    text (``stale``) and the markers that cannot be filled (``problems``: an unknown figure or notebook)."""
    records = records or _Records()
    nb = nbformat.read(path, as_version=4)
    stale: list[str] = []
    problems: list[str] = []

    def filled(marker: re.Match) -> str:
        source, name = _source(path, marker["ref"])
        try:
            figure = records.of(source).get(name)
        except (OSError, ValueError, SyntaxError) as e:
            problems.append(f"{path}: figure {marker['ref']}: cannot read {source.name}: {e}")
            return marker.group()
        if figure is None or figure.text is None:
            problems.append(f"{path}: figure {marker['ref']} is not recorded as text in {source.name}")
            return marker.group()
        if figure.quoted() != marker["text"]:
            stale.append(f"{path}: figure {marker['ref']} reads {marker['text']!r}, recorded {figure.quoted()!r}")
        return f'<span data-figure="{marker["ref"]}">{figure.quoted()}</span>'

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = MARKER.sub(filled, cell.source)
    return nb, stale, problems


def fill(paths: list[str | Path], check: bool = False) -> int:
    """Fill the figures of every notebook under ``paths`` (or only check them); print what changed or is wrong;
    return 0 if every marker shows (``check``) or now shows its recorded figure, else 1."""
    records, failed = _Records(), False
    for path in find_notebooks(paths):
        nb, stale, problems = fill_notebook(path, records)
        for line in problems + (stale if check else []):
            print(f"error: {line}", file=sys.stderr)
        failed |= bool(problems) or (check and bool(stale))
        if stale and not check:
            nbformat.write(nb, path)
            print(f"filled {len(stale)} figure(s) in {path}")
    if check and failed:
        print("run `python -m course_lib.notebooks fill PATH` after executing the notebooks", file=sys.stderr)
    return 1 if failed else 0


def figure_references(text: str, path: Path) -> set[tuple[Path, str]]:
    """The figures (notebook, name) that the Markdown ``text`` of the page ``path`` quotes: figure markers,
    ``{glue}`` roles (``{glue:text}`key` ``, ``{glue:text}`other.ipynb::key:fmt` ``) and directives."""
    refs = {_source(path, m["ref"]) for m in MARKER.finditer(text)}
    for m in GLUE_ROLE.finditer(text):
        doc, sep, key = m["ref"].rpartition("::")
        refs.add(_source(path, doc + sep + key.split(":")[0]))  # without a format spec (key:.1f)
    for m in GLUE_DIRECTIVE.finditer(text):
        doc = re.search(r":doc:[ \t]*(\S+)", m["options"])
        refs.add(_source(path, f"{doc[1]}::{m['key']}" if doc else m["key"]))
    return refs


def unused_figures(root: str | Path) -> list[str]:
    """The figures recorded by a notebook under ``root`` that no page under ``root`` quotes (its own prose,
    another notebook's, or a Markdown page's ``{glue}`` role or directive)."""
    root = Path(root)
    notebooks = find_notebooks([root])
    quoted: set[tuple[Path, str]] = set()
    for page in notebooks:
        cells = nbformat.read(page, as_version=4).cells
        quoted |= figure_references("\n".join(c.source for c in cells if c.cell_type == "markdown"), page)
    for page in root.rglob("*.md"):
        if not SKIPPED & set(page.parts):
            quoted |= figure_references(page.read_text(encoding="utf-8"), page)
    records = _Records()
    return [f"{page}: {name}" for page in notebooks for name in records.of(page)
            if (page.resolve(), name) not in quoted]


# ---------------------------------------------------------------------------------------------------------
# Executing: fresh outputs, without the machine's traces

def machine_roots(*folders: Path) -> list[str]:
    """The folders whose absolute paths would say where a notebook ran, longest first: this Python's library
    folders, the folder that holds ``course_lib`` (the checkout, when installed editable), and ``folders``."""
    roots = [p for p in sys.path if os.path.isabs(p)] + list(sysconfig.get_paths().values())
    roots += [str(Path(__file__).resolve().parents[1]), *map(str, folders)]
    roots += [os.path.realpath(p) for p in roots]
    return sorted({r.rstrip(os.sep) for r in roots if len(Path(r).parts) > 2}, key=len, reverse=True)


def relativize(text: str, roots: list[str]) -> str:
    """``text`` with every path under one of ``roots`` made relative to it (``/x/site-packages/torch/a.py`` ->
    ``torch/a.py``)."""
    for root in roots:
        text = text.replace(root + os.sep, "")
    return text


def without_traces(nb: nbformat.NotebookNode, roots: list[str]) -> nbformat.NotebookNode:
    """``nb`` without stderr streams, and with the paths under ``roots`` made relative in every text output
    (streams, error messages and tracebacks, textual data; images are left alone)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = relativize(output.text, roots)
            elif output.output_type == "error":
                output.evalue = relativize(output.evalue, roots)
                output.traceback = [relativize(line, roots) for line in output.traceback]
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str) and not mime.startswith("image/"):
                    output.data[mime] = relativize(value, roots)
    return nb


def execute_notebook(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place in a fresh kernel, keep no machine's traces (:func:`without_traces`); return the
    seconds it took."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    env = dict(os.environ, MPLBACKEND=INLINE_BACKEND)  # figures become outputs (Agg would draw nothing)
    env.setdefault("COURSE_LIB_PROGRESS", "0")
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    for index, cell in enumerate(nb.cells):  # say what is dropped: a new warning may deserve a fix in the code
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                print(f"note: {path}: cell {index} wrote to stderr (not kept): {output.text.strip()[:300]}",
                      file=sys.stderr)
    nbformat.write(without_traces(nb, machine_roots(path.parent.resolve())), path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in place, then fill their figures")
    run.add_argument("paths", nargs="+")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    figures = sub.add_parser("fill", help="write the recorded figures into the notebooks' prose")
    figures.add_argument("paths", nargs="+")
    figures.add_argument("--check", action="store_true", help="write nothing; exit 1 if a figure is out of date")
    cells = sub.add_parser("install-cells", help="give every notebook the guarded install cell")
    cells.add_argument("paths", nargs="+")
    cells.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "fill":
        return fill(notebooks, check=args.check)
    if args.command == "install-cells":
        stale = [p for p in notebooks if not has_install_cell(nbformat.read(p, as_version=4))]
        for p in stale:
            if args.check:
                print(f"out of date: {p} (run `python -m course_lib.notebooks install-cells {p}`)", file=sys.stderr)
            else:
                nbformat.write(with_install_cell(nbformat.read(p, as_version=4)), p)
                print(f"wrote {p}")
        return 1 if args.check and stale else 0
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    executed, failed = [], []
    for nb in notebooks:  # one notebook's failure does not stop the others: one run shows every broken notebook
        try:
            print(f"{nb}: {execute_notebook(nb, args.timeout):.1f} s", flush=True)
            executed.append(nb)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
            print(f"error: {nb} failed and was left as it was:\n{str(e)[-3000:]}", file=sys.stderr, flush=True)
            failed.append(nb)
    figures = fill(executed)
    return 1 if failed else figures


if __name__ == "__main__":
    sys.exit(main())

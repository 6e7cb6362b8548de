"""The course's notebooks: executed in place with fresh outputs, and openable anywhere (Colab, Binder).

- ``python -m course_lib.notebooks execute PATH [PATH ...]`` runs every ``.ipynb`` under the given files or
  folders (``_build`` and checkpoints skipped) in a fresh kernel of this Python, from the notebook's own
  folder, with progress bars off, and writes the outputs back.
- ``python -m course_lib.notebooks install-cells PATH [PATH ...] [--check]`` makes the first cell of every
  notebook the guarded install cell (:func:`install_cell_source`): opened outside the course's environment
  (Colab, a bare Jupyter), it installs the course from its repository, pinned to this version; inside, it does
  nothing. It is built from the one repository setting (:func:`course_lib.repository_url`) and hidden in the
  book (tag ``remove-cell``). With ``--check`` nothing is written and the exit status says whether every
  notebook is up to date.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from . import __version__, repository_url

KERNEL = "python3"
KERNELSPEC = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
INSTALL_TAG = "remove-cell"


def find_notebooks(paths: list[str | Path]) -> list[Path]:
    """Every ``.ipynb`` file named in or under ``paths``, sorted, skipping build and checkpoint folders."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix == ".ipynb":
            found.append(p)
        elif p.is_dir():
            found += [f for f in p.rglob("*.ipynb")
                      if not {"_build", ".ipynb_checkpoints"} & set(f.parts)]
        else:
            raise FileNotFoundError(f"{p} is neither a notebook nor a folder")
    return sorted(set(found))


def install_cell_source() -> str:
    """The first cell of every notebook: install the course, pinned to this version, when it is missing."""
    return ("# Opened outside the course's environment (e.g. in Colab)? This installs the course first.\n"
            "import importlib.util\n"
            "if importlib.util.find_spec(\"course_lib\") is None:\n"
            f"    %pip install --quiet \"course_lib @ git+{repository_url()}@v{__version__}\"")


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


def execute_notebook(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place in a fresh kernel; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    env = dict(os.environ, MPLBACKEND=INLINE_BACKEND)  # figures become outputs (Agg would draw nothing)
    env.setdefault("COURSE_LIB_PROGRESS", "0")
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in place")
    run.add_argument("paths", nargs="+")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    cells = sub.add_parser("install-cells", help="give every notebook the guarded install cell")
    cells.add_argument("paths", nargs="+")
    cells.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args(argv)
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "install-cells":
        stale = [p for p in notebooks if not has_install_cell(nbformat.read(p, as_version=4))]
        for p in stale:
            if args.check:
                print(f"out of date: {p} (run `python -m course_lib.notebooks install-cells {p}`)", file=sys.stderr)
            else:
                nbformat.write(with_install_cell(nbformat.read(p, as_version=4)), p)
                print(f"wrote {p}")
        return 1 if args.check and stale else 0
    for nb in notebooks:
        print(f"{nb}: {execute_notebook(nb, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

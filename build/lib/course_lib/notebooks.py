"""Execute the course's notebooks in place, so that they are committed with fresh outputs.

``python -m course_lib.notebooks execute PATH [PATH ...]`` runs every ``.ipynb`` under the given
files or folders (``_build`` and checkpoints skipped) in a fresh kernel of this Python, from the
notebook's own folder, with progress bars off, and writes the outputs back.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL = "python3"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


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


def execute_notebook(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place in a fresh kernel; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    env = dict(os.environ, MPLBACKEND=INLINE_BACKEND)  # figures become outputs (Agg would draw nothing)
    env.setdefault("COURSE_LIB_PROGRESS", "0")
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.notebooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in place")
    run.add_argument("paths", nargs="+")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for nb in notebooks:
        print(f"{nb}: {execute_notebook(nb, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

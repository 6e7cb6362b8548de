"""Reading a submission: a notebook, or one clear line saying why it is not one."""
from __future__ import annotations

from pathlib import Path

import nbformat


class GradingError(Exception):
    """The notebook could not be graded at all (missing, not a notebook...): a one-line message."""


def notebook_path(path: str | Path) -> Path:
    """``path``, or the one ``.ipynb`` file in folder ``path`` (a Gradescope submission folder)."""
    path = Path(path)
    if not path.exists():
        raise GradingError(f"{path}: no such file")
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        if len(found) != 1:
            names = ", ".join(p.name for p in found[:5]) or "none"
            raise GradingError(f"{path}: expected one notebook (.ipynb) in the submission, found {len(found)} "
                               f"({names})")
        return found[0]
    if not path.is_file():
        raise GradingError(f"{path}: not a file")
    return path


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (see :func:`notebook_path`), or :class:`GradingError` with one line saying
    what is wrong."""
    path = notebook_path(path)
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # noqa: BLE001 - JSON, encoding, schema errors: all mean "not a notebook"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GradingError(f"{path}: not a Jupyter notebook ({first[:200]})") from None
    return nb

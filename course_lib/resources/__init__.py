"""The data the chapters read, shipped inside the package so that a notebook opened alone (Colab, Binder, a
download) finds it wherever the course is installed.

- ``benchmark.json``: the figures ``python -m course_lib.benchmark`` measured (written here by default);
- ``article_snippets.json``: the article's three code snippets, as quoted and as restored (the errata page);
- ``article_section4.zh.txt``: the article's section 4, verbatim, the reference of the quoted snippets.

Read them with :func:`resource`::

    load_results(resource("benchmark.json"))
    json.loads(resource("article_snippets.json").read_text(encoding="utf-8"))
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

NAMES = ("benchmark.json", "article_snippets.json", "article_section4.zh.txt")


def resource(name: str) -> Path:
    """The file ``name`` (one of :data:`NAMES`) of the installed package, found with :mod:`importlib.resources`."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in NAMES:
        raise ValueError(f"name must be one of {', '.join(NAMES)}, got {name!r}")
    return Path(files(__name__) / name)  # pip installs a package as files, so the resource has a path

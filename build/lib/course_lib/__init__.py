"""course_lib: the package behind *Compress & Accelerate*, a course on making neural networks smaller and faster.

Ground floor: :mod:`~course_lib.data`, :mod:`~course_lib.models`; then :mod:`~course_lib.training`,
:mod:`~course_lib.metrics` and the model cache :mod:`~course_lib.zoo`; one module per technique
(:mod:`~course_lib.distillation`, :mod:`~course_lib.pruning`, :mod:`~course_lib.quantization`,
:mod:`~course_lib.acceleration`, :mod:`~course_lib.compression`); on top, :mod:`~course_lib.grading`
and :mod:`~course_lib.benchmark`.
"""
from __future__ import annotations

__version__ = "0.1.0"


def repository_url() -> str:
    """The course's source repository, ``[project.urls] Repository`` of ``pyproject.toml`` (the one setting)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("course_lib").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    raise RuntimeError("course_lib is not installed with its metadata (pip install -e .); "
                       "the repository address is [project.urls] Repository in pyproject.toml")

"""Plain data: what crosses from a sandbox to the grader (loadable with ``torch.load(weights_only=True)``).

An observation of a learner's function is made of tensors, numbers, strings, ``None``, lists, tuples and
dicts only (:func:`to_plain`); anything else becomes a marker naming its type, read back as
:class:`Unsupported` (:func:`from_plain`). Nesting deeper than :data:`MAX_DEPTH` is cut the same way, so
the channel (:mod:`course_lib.grading.confinement.channel`) can bound what it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MAX_DEPTH = 20  # levels of lists, tuples and dicts kept; deeper data becomes a marker
UNSUPPORTED = "__unsupported__"


@dataclass(frozen=True)
class Unsupported:
    """Stands for a value of a type that cannot be compared (a learner's own class, a generator...)."""

    type_name: str


def to_plain(value: Any, depth: int = 0) -> Any:
    """``value`` as tensors, numbers, strings, ``None``, lists, tuples and dicts only."""
    if depth > MAX_DEPTH:
        return {UNSUPPORTED: "deeply nested data"}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__ == "numpy":
        try:
            return torch.as_tensor(value).clone()
        except (TypeError, RuntimeError):
            pass
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {(k if isinstance(k, (int, str)) else repr(k)): to_plain(v, depth + 1) for k, v in value.items()}
    module = type(value).__module__
    return {UNSUPPORTED: type(value).__qualname__ if module == "builtins" else f"{module}.{type(value).__qualname__}"}


def from_plain(value: Any) -> Any:
    """Undo the one marker :func:`to_plain` adds: ``{"__unsupported__": name}`` -> :class:`Unsupported`."""
    if isinstance(value, dict):
        if set(value) == {UNSUPPORTED}:
            return Unsupported(str(value[UNSUPPORTED]))
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(from_plain(v) for v in value)
    return value

"""Loaders whose passes are counted where the learner's code cannot reach: observations it cannot alter.

A rule such as "the test loader is read once, for the chosen student only" is observed by counting the passes
(calls of ``iter``) over a loader. A :class:`CountingLoader` counts them in the process that iterates it: right
for the reference (in the grader) and for ``check`` (in the learner's kernel), but in a sandbox the count would be
the learner's to change (``loader.passes = 1``, a patched ``__iter__``). So a sandbox replaces every
:class:`CountingLoader` among a case's arguments (:func:`serving`) by a :class:`ServedLoader` that holds
no data: each pass asks the grader for the batches (:data:`FETCH`, a request over the sandbox's pipe). The grader
builds the same case itself, answers with the batches of its own loader, counts the requests, and writes that
count into the observation, under the loader's ``counted_as``, over whatever the sandbox reported.

An event in the learner's process that decides a verdict (a gradient reaching a teacher that must not get one) is
sent to the grader the moment it happens (:func:`report`, from a hook the case installs), and the grader writes
its count of those reports into the observation under the count's name (:func:`reported`).
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

FETCH: Callable[[int], list[Any]] | None = None  # set by a sandbox: position -> the batches, from the grader
REPORT: Callable[[str, int], None] | None = None  # set by a sandbox: (count's name, key) -> sent to the grader at once
REPORTED: set[str] = set()  # the counts of an observation that the grader makes from the reports alone


def reported(name: str) -> str:
    """Register ``name`` as a count the grader makes itself, in a sandbox, from the events :func:`report` sends at
    the moment they happen (the number of distinct keys reported during the case): undoing the event afterwards
    (clearing a gradient) or rewriting the count in the learner's process changes nothing. Returns ``name``."""
    REPORTED.add(name)
    return name


def report(name: str, key: int) -> None:
    """In a sandbox, tell the grader now that the event ``key`` of count ``name`` happened; elsewhere nothing."""
    if REPORT is not None:
        REPORT(name, key)


class CountingLoader(DataLoader):
    """A ``DataLoader`` that counts its passes (the calls of ``iter(loader)``: a ``for`` loop, ``evaluate``);
    ``counted_as``: the name of the count in an observation."""

    def __init__(self, *args: Any, counted_as: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes, self.counted_as = 0, counted_as

    def __iter__(self):  # noqa: ANN204 - DataLoader's own iterator type
        self.passes += 1
        return super().__iter__()


class ServedLoader:
    """A loader without data, in a sandbox: each pass fetches the batches of argument ``position`` from the
    grader, which counts the passes."""

    def __init__(self, position: int, batches: int, counted_as: str) -> None:
        self.position, self.batches, self.counted_as, self.passes = position, batches, counted_as, 0

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Any]:
        if FETCH is None:
            raise RuntimeError("a served loader is read in a sandbox only")
        self.passes += 1  # what the sandbox reports; the grader's own count replaces it
        return iter(FETCH(self.position))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"in the grader this loader gives its batches by iteration only (no .{name}): "
                             "`for inputs, labels in loader`")


def serving(make: Callable[[], tuple[tuple, dict]]) -> Callable[[], tuple[tuple, dict]]:
    """A case's ``make`` for a sandbox: every :class:`CountingLoader` argument replaced by a :class:`ServedLoader`,
    and the loaders and their data collected before the learner's code runs, so that it cannot find them."""
    def make_served() -> tuple[tuple, dict]:
        args, kwargs = make()
        args = tuple(ServedLoader(k, len(a), a.counted_as) if isinstance(a, CountingLoader) else a
                     for k, a in enumerate(args))
        gc.collect()
        return args, kwargs
    return make_served


def counted_loaders(args: tuple) -> dict[int, CountingLoader]:
    """``{position: loader}`` of the :class:`CountingLoader` arguments of a case (the grader's own copy)."""
    return {k: a for k, a in enumerate(args) if isinstance(a, CountingLoader)}

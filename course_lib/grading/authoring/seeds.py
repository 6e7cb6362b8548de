"""The seeds of a grading: hidden cases drawn from the instructor's secret, random generators seeded per case.

Every seed is derived with SHA-256 (:func:`derived_seed`), so the grader, its sandboxes and the learner's
:func:`course_lib.grading.check` compute the same seeds on any machine without sending them, and learning
one seed reveals nothing about another. A grading draws from the *learner's secret* (:func:`learner_secret`:
the instructor's secret and the learner's identity), so two learners get different hidden inputs and a
regrade of the same learner the same ones.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def generator(seed: int) -> torch.Generator:
    """A CPU random generator seeded with ``seed``: hidden cases draw from it, never from the global state."""
    return torch.Generator().manual_seed(seed)


def derived_seed(*parts: object) -> int:
    """A seed in ``[0, 2**31)`` drawn from ``parts`` (SHA-256): the same parts, the same seed, on any machine."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2 ** 31)


def learner_secret(secret: int, learner: str) -> int:
    """The secret one learner's hidden cases are drawn from: ``learner`` (an id, or the submission's name) and the
    instructor's ``secret`` together; knowing it reveals nothing about another learner's."""
    if not isinstance(learner, str) or not learner.strip():
        raise ValueError(f"learner must be a non-empty identity, got {learner!r}")
    return derived_seed("learner", secret, learner.strip())


def hidden_seed(secret: int, assignment: str, exercise: str) -> int:
    """The seed of an exercise's hidden cases: learning it reveals nothing about other exercises' cases."""
    return derived_seed("hidden", secret, assignment, exercise)


def rng_seed(exercise: str, kind: str, index: int, secret: int | None) -> int:
    """The seed of the random generators during one case (public cases: independent of the secret, so
    that :func:`course_lib.grading.check` in the notebook seeds them the same way)."""
    return derived_seed("rng", exercise, kind, index, secret if kind == "hidden" else "public")


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed ``torch``, ``random`` and ``numpy`` with ``seed`` inside the block, and restore their states after."""
    if seed is None:
        yield
        return
    import random

    import numpy as np
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])

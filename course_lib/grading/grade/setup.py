"""The grading machine's setup, checked before any learner is scored: a mistake there is one clear line and a
non-zero exit, never a class of zeros.

- :func:`check_platform`: the grader confines learner code with POSIX resource limits (``resource``), so a
  platform without them (Windows) cannot grade at all;
- :func:`read_secret`: the hidden cases' secret, from ``--seed-file`` or ``$COURSE_GRADING_SEED``; missing,
  empty (an unset GitHub secret) or not an integer is a :class:`SetupError`; ``practice`` grading (formative,
  a learner's own machine) uses :data:`PRACTICE_SEED`, which everyone knows;
- :func:`check_confinement`: a confined Python starts as the learner user (a grader that cannot drop
  privileges, a Python that user cannot read, stop here);
- :func:`doctor`: which guarantees hold on this machine (``python -m course_lib.grading doctor``).

This module imports neither torch nor the confinement launcher at import time, so that ``check_platform``
runs where they cannot be imported.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from .reading import GradingError

SEED_ENV = "COURSE_GRADING_SEED"
PRACTICE_SEED = 20240501  # public: practice grading only, its hidden cases are no secret
SETUP_FAILED = 3  # exit status of a run stopped by the machine's setup, before any learner was scored


class SetupError(GradingError):
    """A mistake in the grading machine's setup (secret, privileges, platform): no learner is scored."""


def check_platform() -> None:
    """:class:`SetupError` if this platform lacks what the grader confines learner code with."""
    if importlib.util.find_spec("resource") is None or os.name != "posix":
        raise SetupError(f"this platform ({sys.platform}) has no POSIX resource limits (the `resource` module), "
                         "which confine learner code: grade on Linux (or macOS for practice grading)")


def read_secret(seed_file: str | Path | None, practice: bool = False) -> int:
    """The hidden cases' secret: the integer in ``seed_file``, else in ``$COURSE_GRADING_SEED``, else, for
    ``practice`` grading only, :data:`PRACTICE_SEED`. Never echoed, never on a command line, never passed to a
    learner process."""
    if seed_file is not None:
        try:
            text, source = Path(seed_file).read_text().strip(), f"the seed file {seed_file}"
        except OSError as e:
            raise SetupError(f"the seed file {seed_file} cannot be read ({e.strerror})") from None
    elif os.environ.get(SEED_ENV, "").strip():
        text, source = os.environ[SEED_ENV].strip(), f"${SEED_ENV}"
    elif practice:
        return PRACTICE_SEED
    else:
        state = "empty" if SEED_ENV in os.environ else "unset"
        raise SetupError(f"no grading secret: ${SEED_ENV} is {state} and no --seed-file was given (set the "
                         f"repository's or the autograder's secret; --practice grades with a public seed)")
    if not re.fullmatch(r"[+-]?\d{1,40}", text):
        raise SetupError(f"{source} must hold an integer secret, got {len(text)} characters that are not one")
    return int(text)


def check_confinement(workspace: object) -> object:
    """Start a trivial confined Python in ``workspace``; its :class:`Isolation`, or :class:`SetupError` saying why
    learner code cannot run confined (the user cannot be changed, the interpreter is out of that user's reach)."""
    try:
        return workspace.probe()
    except (RuntimeError, OSError) as e:
        raise SetupError(str(e)) from None


def doctor(seed_file: str | Path | None, user: str, practice: bool) -> tuple[list[str], bool]:
    """The lines of ``doctor``'s report and whether summative grading is possible on this machine."""
    lines: list[str] = []

    def say(ok: bool, what: str, detail: str) -> bool:
        lines.append(f"{'ok ' if ok else 'NO '} {what}: {detail}")
        return ok

    try:
        check_platform()
    except SetupError as e:
        say(False, "platform", str(e))
        return lines, False
    say(True, "platform", f"{sys.platform}, resource limits available")
    given = seed_file is not None or bool(os.environ.get(SEED_ENV, "").strip())
    try:
        read_secret(seed_file, practice)
        secret = say(given, "secret", ("from the seed file" if seed_file else f"from ${SEED_ENV}") if given
                     else "the public practice seed (formative grading only)")
    except SetupError as e:
        secret = say(False, "secret", str(e))
    from ..authoring.specs import NAMES, get_assignment
    from ..confinement.fence import module_file
    from ..confinement.workspace import Workspace

    workspace = Workspace(user, hide=tuple(Path(p) for p in [seed_file] if p is not None))
    try:
        isolation = check_confinement(workspace)
        references = [module_file(ex.reference_fn()) for name in NAMES for ex in get_assignment(name).exercises]
        held = workspace.guarantees(isolation, references, seed_file)
    except SetupError as e:
        say(False, "confinement", str(e))
        return lines, False
    finally:
        workspace.cleanup()
    say(held["learner_user"] != "the grader's own user", "learner user",
        held["learner_user"] + ("" if os.geteuid() == 0 else " (run as root for a user of its own)"))
    say(isolation.limits, "resource limits", "all set" if isolation.limits else "; ".join(isolation.notes))
    say(isolation.network, "network", "none (a network namespace)" if isolation.network else "available")
    say(isolation.root, "file system", "a fresh root: only the interpreter, its libraries and the learner's folder"
        if isolation.root else "covered: the checkout and the seed hidden, every other world-readable file readable"
        if isolation.mounts else "the host's: everything the learner's user can read")
    say(isolation.proc, "processes", "only the learner's own visible" if isolation.proc else
        "every process visible in /proc")
    say(not held["references_readable"], "references", "out of reach" if not held["references_readable"]
        else "readable by learner code")
    say(not held["seed_readable"], "seed file", "out of reach" if not held["seed_readable"] else "readable")
    for note in isolation.notes:
        lines.append(f"    note: {note}")
    summative = held["summative"] and secret
    lines.append("summative grading: " + ("possible" if summative else "NOT possible on this machine"))
    return lines, summative

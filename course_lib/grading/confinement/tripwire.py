"""What a fenced reference runs instead of its body (see :mod:`course_lib.grading.confinement.fence`).

In a sandbox, :data:`CHANNEL` is the sandbox's report channel: :func:`trip` names the reference
there and ends the process at once (``os._exit``, which the learner's code cannot catch), and the
grader scores the exercise 0 with a message saying which reference was called. Anywhere else it
raises ``RuntimeError``. Standard library only: fenced modules import it lazily.
"""
from __future__ import annotations

import json
import os
import struct

REFERENCE_EXIT = 86  # exit status of a sandbox whose learner code reached a reference
CHANNEL: int | None = None


def trip(qualname: str) -> None:
    """Report that ``qualname`` (a fenced reference) was called, and end the process."""
    if CHANNEL is None:
        raise RuntimeError(f"{qualname} is fenced off in this copy of course_lib (a grading sandbox)")
    payload = json.dumps({"type": "tripped", "reference": qualname}).encode()
    try:
        os.write(CHANNEL, struct.pack(">Q", len(payload)) + payload)
    finally:
        os._exit(REFERENCE_EXIT)

"""Calling a function on one case and observing what it did: the same code runs the learner's function (in a
sandbox, and in :func:`course_lib.grading.check`) and the reference (in the grader).

A case that passes a bad argument says so with ``raises``: a word its error message must contain
(the argument's name). Its answer is then the exception itself (:func:`raised`: its type, the types
it derives from, its message), and the learner's function passes when it raises the reference's
type (or a subclass) with a message that names the argument (:func:`compare_raised`). Returning
instead of raising, or raising something else, is a wrong answer like any other.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .compare import describe
from .plain import from_plain, to_plain
from .seeds import seeded

if TYPE_CHECKING:
    from .exercise import Case, Exercise

RAISED, RETURNED = "__raised__", "__returned__"
MAX_MESSAGE = 500


def call_and_observe(fn: Callable, exercise: Exercise, case: Case, seed: int | None = None) -> dict[str, Any]:
    """Run ``fn`` on fresh arguments of ``case``, random generators seeded with ``seed``:
    ``{"value": plain data}`` or ``{"error": "Type: message"}``. For a case that ``raises``, the value
    is what the call did: :func:`raised` for an exception, ``{RETURNED: description}`` otherwise."""
    args, kwargs = case.make()
    try:
        with seeded(seed):
            result = fn(*args, **kwargs)
            if case.raises is None:
                return {"value": to_plain(exercise.observe(result, args, kwargs))}
    except NotImplementedError as e:
        return {"error": f"NotImplementedError: {e}", "not_implemented": True}
    except Exception as e:  # noqa: BLE001 - a learner's function may raise anything; report it
        if case.raises is not None:
            return {"value": raised(e, case.raises)}
        return {"error": f"{type(e).__name__}: {e}{raised_at(e)}"}
    # a bad argument that did not raise: described from plain data only (no method of the result runs)
    try:
        description = describe(from_plain(to_plain(result)))[:MAX_MESSAGE]
    except Exception as e:  # noqa: BLE001 - a learner's object that cannot even be copied
        description = f"an object that could not be read ({type(e).__name__})"
    return {"value": {RETURNED: description}}


def raised_at(error: BaseException) -> str:
    """`` (cell N, line L)``: where in the learner's notebook ``error`` was raised (its traceback's last frame in a
    notebook cell: the grader compiles cell ``N``'s code as ``<cell N>``), or ``""`` when no frame is in one."""
    where, tb = "", error.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith("<cell ") and name.endswith(">"):
            where = f" ({name[1:-1]}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return where


def raised(error: Exception, mentions: str) -> dict[str, Any]:
    """The observation of a call that raised ``error`` in a case whose message must mention ``mentions``."""
    types = [c.__name__ for c in type(error).__mro__ if c not in (object, BaseException)]
    try:
        message = str(error)[:MAX_MESSAGE]
    except Exception as e:  # noqa: BLE001 - a learner's exception whose message cannot be read
        message = f"(a message that could not be read: {type(e).__name__})"
    return {RAISED: type(error).__name__, "types": types, "message": message, "mentions": mentions}


def is_raised(value: Any) -> bool:
    """Whether ``value`` is the observation of an exception (:func:`raised`)."""
    return isinstance(value, dict) and RAISED in value


def compare_raised(got: Any, expected: dict[str, Any]) -> str | None:
    """``None`` if ``got`` raised ``expected``'s exception type (or a subclass of it) with a message that
    contains ``expected["mentions"]`` (case-insensitive), else what differs. Only ``expected`` (the
    reference's observation, made by the grader) says what the message must mention."""
    wanted, word = str(expected[RAISED]), str(expected["mentions"])
    what = f"{wanted} whose message names {word!r}"
    if isinstance(got, dict) and RETURNED in got:
        return f"returned {str(got[RETURNED])[:200]} instead of raising {what}"
    if not is_raised(got) or not isinstance(got.get("types"), list) or not isinstance(got.get("message"), str):
        return f"did not raise {what}"
    message = got["message"][:200]
    if wanted not in got["types"]:
        return f"raised {got[RAISED]}: {message}; expected {what}"
    if word.lower() not in got["message"].lower():
        return (f"raised {got[RAISED]}: {message}; the message must name {word!r}, the argument that is wrong, "
                "and say what is allowed")
    return None

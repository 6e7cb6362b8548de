"""What can happen to an exercise or to one of its cases, and the one sentence a learner reads for each."""
from __future__ import annotations

from enum import Enum


class Status(Enum):
    """Exercise statuses (the function as defined) and case statuses (one call of it)."""

    OK = "ok"
    MISSING = "missing"
    REFERENCE = "reference"
    NOT_CALLABLE = "not_callable"
    CALLS_REFERENCE = "calls_reference"
    START_CRASHED = "start_crashed"
    START_TIMEOUT = "start_timeout"
    ANSWERED = "answered"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    NOT_RUN = "not_run"

    @classmethod
    def from_sandbox(cls, value: object) -> Status:
        """The function status a sandbox reported ("ok", "missing", "reference", "not_callable"); anything
        else is START_CRASHED."""
        allowed = (cls.OK, cls.MISSING, cls.REFERENCE, cls.NOT_CALLABLE)
        return next((s for s in allowed if s.value == value), cls.START_CRASHED)

    def message(self, name: str, detail: str = "") -> str:
        """The learner's sentence: for an exercise status a whole one, for a case status what follows
        "your function"."""
        return MESSAGES[self].format(name=name, detail=detail)


MESSAGES = {
    Status.OK: "",
    Status.MISSING: "no function `{name}` is defined in the notebook (at the top level of a code cell): 0 points",
    Status.REFERENCE: "`{name}` is course_lib's reference ({detail}), not your code: 0 points. Write the function "
                      "yourself.",
    Status.NOT_CALLABLE: "`{name}` is a {detail}, not a function: 0 points",
    Status.CALLS_REFERENCE: "`{name}` calls course_lib's reference implementation ({detail}): 0 points. Write the "
                            "function yourself.",
    Status.START_CRASHED: "the test process of `{name}` stopped while loading the notebook's definitions "
                          "({detail}): 0 points",
    Status.START_TIMEOUT: "the notebook's definitions that `{name}` needs did not load within {detail}: 0 points",
    Status.ANSWERED: "",
    Status.TIMEOUT: "did not finish within {detail}",
    Status.CRASHED: "stopped the test process ({detail})",
    Status.TOO_LARGE: "returned more data than the grader reads ({detail})",
    Status.UNREADABLE: "returned something the grader could not read ({detail})",
    Status.NOT_RUN: "was not run: the exercise's time was spent on earlier cases",
}

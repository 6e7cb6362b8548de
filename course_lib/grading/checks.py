"""Immediate feedback and help in the learner's notebook: ``check("soft_targets", soft_targets)`` and
``hint("soft_targets")`` (re-exported by :mod:`course_lib.grading`).

:func:`check` runs the exercise's *public* cases on the learner's function and on the reference, and
prints, for each case, whether it passed and, if not, what input gave what output and what was
expected. Whatever the learner's function does (raise, return garbage, not be written yet) is printed, not
raised, so "Run all" goes on; ``check`` itself raises only for a name that is no exercise (``ValueError``)
and for a reference that fails on a public case (``RuntimeError``: a bug of the course, not of the learner).
The hidden cases are run only by the grader.

:func:`hint` prints the exercise's next hint step each time it is called (the spec's ``hints``): the
stub's message says what to compute, the steps say how, one at a time, the last one closest to code.
"""
from __future__ import annotations

from collections.abc import Callable

from .authoring.calling import call_and_observe
from .authoring.plain import from_plain
from .authoring.seeds import rng_seed
from .authoring.specs import find_exercise


def check(name: str, fn: Callable) -> None:
    """Run the public tests of exercise ``name`` on ``fn`` and print what passed and what did not."""
    assignment, exercise = find_exercise(name)
    if not callable(fn):
        print(f"{name}: expected a function, got {type(fn).__name__}. Define it with `def {name}(...)`.")
        return
    reference = exercise.reference_fn()
    if fn is reference or (getattr(fn, "__module__", None) or "").startswith("course_lib."):
        print(f"{name}: this is course_lib's own {exercise.reference}, not your function; "
              "the grader scores it 0. Write it yourself.")
        return
    cases = exercise.public()
    lines, passed = [], 0
    for i, case in enumerate(cases):
        seed = rng_seed(exercise.name, "public", i, None)  # as the grader seeds this case
        got = call_and_observe(fn, exercise, case, seed=seed)
        if got.get("not_implemented"):
            print(f"{name}: not written yet (it raises NotImplementedError). Replace the "
                  "`raise NotImplementedError(...)` line with your code, run the cell, then this one.")
            return
        expected = call_and_observe(reference, exercise, case, seed=seed)
        if "error" in expected:
            raise RuntimeError(f"the reference {exercise.reference} failed on a public case: {expected['error']}")
        if "error" in got:
            msg = f"raised {got['error']}"
        else:
            args, kwargs = case.make()
            msg = exercise.check_answer(from_plain(got["value"]), from_plain(expected["value"]), args, kwargs)
        if msg is None:
            passed += 1
            lines.append(f"  [pass] {case.description}")
        else:
            lines.append(f"  [FAIL] {case.description}\n         your function {msg}")
    verdict = "all passed" if passed == len(cases) else "not there yet"
    print(f"{name}: {passed} of {len(cases)} public tests passed ({verdict}).")
    print("\n".join(lines))
    if passed < len(cases) and exercise.relies_on:
        print(f"  Note: {exercise.relies_on_note()}")


_shown: dict[str, int] = {}  # hint steps already printed, by exercise, in this kernel


def hint(name: str, step: int | None = None) -> None:
    """Print the next hint step for exercise ``name`` (or step ``step``, counted from 1, again)."""
    _, exercise = find_exercise(name)
    steps = exercise.hints
    if not steps:
        print(f"{name}: no hints beyond the exercise text and the stub's message: {exercise.hint}.")
        return
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= len(steps):
            raise ValueError(f"step must be an integer from 1 to {len(steps)}, got {step!r}")
        index = step - 1
    else:
        index = min(_shown.get(name, 0), len(steps) - 1)
        _shown[name] = index + 1
    more = (f" Call hint({name!r}) again for the next one." if index + 1 < len(steps)
            else " That was the last hint; check() shows which input your function gets wrong.")
    print(f"{name}, hint {index + 1} of {len(steps)}: {steps[index]}{more}")


__all__ = ["check", "hint"]

"""Judge what the sandboxes observed against the references, in the grader's process, and score.

:func:`expected_answers` runs the references on the same cases, with the same random seeds, here:
this process never runs the learner's code, so nothing a notebook does can change how its answers
are judged. :func:`score_exercise` gives each exercise its public and hidden points in proportion
to the cases passed, 0 when the function is missing, is or calls a reference, and writes the
feedback (what input gave what output, what was expected, where the largest difference is);
:func:`score_assignment` does so for every exercise of a notebook and flags copies of a reference.
It is a pure function of its arguments: scoring the same observations twice gives the same result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..authoring.calling import call_and_observe
from ..authoring.exercise import Assignment, Case, Exercise
from ..authoring.seeds import hidden_seed, rng_seed
from ..confinement.fence import learner_function_sources, same_tokens
from .observations import Observations
from .status import Status


@dataclass
class ExerciseResult:
    """Scores and feedback of one exercise; ``hidden_output`` is shown only after grades are published."""

    name: str
    public_score: float
    public_max: float
    hidden_score: float
    hidden_max: float
    public_passed: int
    public_total: int
    hidden_passed: int
    hidden_total: int
    public_output: str
    hidden_output: str
    flags: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.public_score + self.hidden_score


def cases_of(exercise: Exercise, assignment: str, secret: int) -> dict[str, list[Case]]:
    """The exercise's public cases and its hidden cases for ``secret``."""
    return {"public": exercise.public(), "hidden": exercise.hidden(hidden_seed(secret, assignment, exercise.name))}


def expected_answers(exercise: Exercise, cases: dict[str, list[Case]], secret: int) -> dict[tuple[str, int], Any]:
    """The reference's observation of every case (``RuntimeError`` if the reference itself fails)."""
    reference = exercise.reference_fn()
    expected = {}
    for kind, kind_cases in cases.items():
        for i, case in enumerate(kind_cases):
            answer = call_and_observe(reference, exercise, case, seed=rng_seed(exercise.name, kind, i, secret))
            if "error" in answer:
                raise RuntimeError(f"the reference {exercise.reference} failed on '{case.description}': "
                                   f"{answer['error']}")
            expected[(kind, i)] = answer["value"]
    return expected


NOT_WRITTEN = "is not written yet (raises NotImplementedError)"


def _judge(exercise: Exercise, case: Case, outcome: Any, expected: Any) -> str | None:
    """``None`` if the case passed, else what follows "your function" in the feedback."""
    if outcome is None:
        return "produced no result"
    if outcome.status is not Status.ANSWERED:
        return outcome.status.message(exercise.name, outcome.detail)
    got = outcome.result
    if "error" in got:
        if got.get("not_implemented"):
            return NOT_WRITTEN
        return f"raised {str(got['error'])[:500]}"
    args, kwargs = case.make()
    try:
        return exercise.check_answer(got.get("value"), expected, args, kwargs)
    except Exception as e:  # noqa: BLE001 - odd data from the learner's function
        return f"returned something that could not be compared ({type(e).__name__}: {e})"


def score_exercise(exercise: Exercise, obs: Observations, cases: dict[str, list[Case]],
                   expected: dict[tuple[str, int], Any]) -> ExerciseResult:
    """Score ``exercise`` from the sandboxes' observations ``obs`` and the references' ``expected`` answers."""
    public, hidden = cases["public"], cases["hidden"]
    result = ExerciseResult(exercise.name, 0.0, exercise.public_points, 0.0, exercise.hidden_points,
                            0, len(public), 0, len(hidden), "", "")
    if obs.status is not Status.OK:
        result.public_output = obs.status.message(exercise.name, obs.detail) + _definition_notes(obs)
        result.hidden_output = obs.status.message(exercise.name, obs.hidden_detail or obs.detail)
        return result
    outcomes = {kind: [(case.description, _judge(exercise, case, obs.cases.get((kind, i)), expected[(kind, i)]))
                       for i, case in enumerate(kind_cases)]
                for kind, kind_cases in (("public", public), ("hidden", hidden))}
    result.public_passed = sum(m is None for _, m in outcomes["public"])
    result.hidden_passed = sum(m is None for _, m in outcomes["hidden"])
    result.public_score = round(exercise.public_points * result.public_passed / max(1, len(public)), 2)
    result.hidden_score = round(exercise.hidden_points * result.hidden_passed / max(1, len(hidden)), 2)
    result.public_output = _feedback(exercise, outcomes["public"], "public")
    result.hidden_output = _feedback(exercise, outcomes["hidden"], "hidden")
    result.public_output += _definition_notes(obs)
    return result


def _definition_notes(obs: Observations) -> str:
    notes = ""
    if obs.definition_errors:
        notes += "\nWhile defining your functions: " + "; ".join(obs.definition_errors[:5])
    if obs.skipped:
        notes += "\nNot run (the time for loading your definitions was spent): " + ", ".join(obs.skipped[:10])
    return notes


def _feedback(exercise: Exercise, outcomes: list[tuple[str, str | None]], kind: str) -> str:
    passed = sum(m is None for _, m in outcomes)
    lines = [f"{exercise.name}: {passed} of {len(outcomes)} {kind} tests passed."]
    for description, msg in outcomes:
        lines.append(f"  [pass] {description}" if msg is None else f"  [FAIL] {description}: your function {msg}")
    if exercise.relies_on and any(m is not None and m != NOT_WRITTEN for _, m in outcomes):
        lines.append(f"  Note: {exercise.relies_on_note()}")
    return "\n".join(lines)


def score_assignment(spec: Assignment, sources: list[str], secret: int,
                     observed: dict[str, Observations]) -> list[ExerciseResult]:
    """Each exercise's result from the sandboxes' observations ``observed``; a function whose body is its
    reference's token for token (in the notebook's cells ``sources``) is flagged for the instructor."""
    learner = learner_function_sources(sources, {ex.name for ex in spec.exercises})
    results = []
    for ex in spec.exercises:
        cases = cases_of(ex, spec.name, secret)
        with torch.random.fork_rng(devices=[]):
            expected = expected_answers(ex, cases, secret)
        result = score_exercise(ex, observed[ex.name], cases, expected)
        if ex.name in learner and same_tokens(learner[ex.name], ex.reference_fn()):
            result.flags.append(f"{ex.name} is {ex.reference}'s body token for token")
        results.append(result)
    return results

"""Observations the learner cannot alter (issue 26): a rule observed on an object of the case is observed by the
grader, not in the learner's process (slow: grades a notebook).

``temperature_sweep`` must read its test loader once, for the chosen student only; the case's loader counts its
passes. A sweep that evaluates every candidate on the test loader, then sets every counter it can find to 1 (the
loader's own ``passes``, any object in memory that looks like a counting loader), fools a count kept in its own
process, as the first test shows; graded, its loader is served and counted by the grader, and the tampering earns
nothing: the counting cases fail, and only they.
"""
from __future__ import annotations

import pytest
from test_grading_attacks import IMPORTS, LOSS, SOFT, STEP, by_test, notebook

from course_lib.grading.authoring.calling import call_and_observe
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.authoring.specs.distillation.loops import PASSES
from course_lib.grading.confinement.options import Options, TimeLimits
from course_lib.grading.grade.grader import grade

pytestmark = pytest.mark.slow
LOOP = '''def distill_steps(student, teacher, loader, optimizer, steps, temperature=4.0, alpha=0.9):
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    losses = []
    while True:
        for inputs, labels in loader:
            losses.append(distillation_step(student, teacher, inputs, labels, optimizer, temperature, alpha))
            if len(losses) == steps:
                return losses'''
TAMPERING_SWEEP = '''import copy, gc, warnings
from course_lib.training import evaluate

def temperature_sweep(student, teacher, train_loader, val_loader, test_loader, temperatures, *, steps, alpha=0.9,
                      lr=1e-3, seed=0):
    if not temperatures:
        raise ValueError("temperatures must list at least one temperature, got none")
    val, test, best = {}, {}, None
    for t in temperatures:
        torch.manual_seed(seed)
        candidate = copy.deepcopy(student)
        optimizer = torch.optim.Adam(candidate.parameters(), lr=lr)
        distill_steps(candidate, teacher, train_loader, optimizer, steps, t, alpha)
        val[t] = evaluate(candidate, val_loader)
        test[t] = evaluate(candidate, test_loader)  # every candidate on the test loader: the rule says no
        if best is None or (val[t], -t) > (val[best], -best):
            best = t
    warnings.simplefilter("ignore")  # touching every object warns about deprecated ones
    for thing in [test_loader, *gc.get_objects()]:  # then hide it: every pass counter set to the allowed 1
        try:
            if "passes" in vars(thing):
                thing.passes = 1
        except Exception:
            pass
    return best, val, test[best]'''
SLOW = Options(time=TimeLimits(case_cpu=20, case_wall=60, exercise=240, definitions=10), execute=False)


def _learner_function() -> object:
    namespace: dict = {}
    for source in (IMPORTS, LOSS, STEP, LOOP, TAMPERING_SWEEP):
        exec(compile(source, "<notebook>", "exec"), namespace)  # noqa: S102 - the learner's code, here
    return namespace["temperature_sweep"]


def test_in_its_own_process_the_tampering_fools_the_count():
    """What the grader must not trust: observed where the function runs, the count says 1 pass, not 3."""
    exercise = get_assignment("distillation").exercise("temperature_sweep")
    case = next(c for c in exercise.public() if "counts its passes" in c.description)
    observed = call_and_observe(_learner_function(), exercise, case, seed=0)["value"]
    expected = call_and_observe(exercise.reference_fn(), exercise, case, seed=0)["value"]
    assert observed[PASSES] == expected[PASSES] == 1
    assert exercise.check_answer(observed, expected, *case.make()) is None


def test_graded_the_tampering_earns_nothing(tmp_path):
    path = notebook(tmp_path / "01_distillation.ipynb", "distillation", IMPORTS, SOFT, LOSS, STEP, LOOP,
                    TAMPERING_SWEEP)
    tests = by_test(grade(path, "distillation", options=SLOW))
    for kind, temperatures in (("public", 3), ("hidden", 2)):  # the counting cases try 3 and 2 temperatures
        output = tests[f"temperature_sweep ({kind} tests)"]["output"]
        failed = [line for line in output.splitlines() if line.startswith("  [FAIL]")]
        passed = [line for line in output.splitlines() if line.startswith("  [pass]")]
        assert len(failed) == 1 and "counts its passes" in failed[0], output
        assert f"returned {temperatures} as the number of passes over test_loader, expected 1" in failed[0], output
        assert len(passed) >= 3 and not any("counts its passes" in line for line in passed), output

"""Observations the learner cannot alter (issue 26): a rule observed on an object of the case is observed by the
grader, not in the learner's process (slow: grades a notebook).

``temperature_sweep`` must read its test loader once, for the chosen student only; the case's loader counts its
passes. A sweep that evaluates every candidate on the test loader, then sets every counter it can find to 1 (the
loader's own ``passes``, any object in memory that looks like a counting loader), fools a count kept in its own
process, as the first test shows; graded, its loader is served and counted by the grader, and the tampering earns
nothing: the counting cases fail, and only they.

``distillation_step`` must run the teacher in eval mode without building an autograd graph through it, and leave
it unchanged. A step that removes the course's counting hook, runs the teacher once in train mode (its running
statistics move), builds a graph through it, then clears the teacher's gradients and restores its buffers leaves
nothing to see after the call in its own process; graded, the teacher is served (the grader runs it and sees
every pass), and the step scores 0.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest
from test_grading_attacks import IMPORTS, LOSS, SOFT, STEP, by_test, notebook, points

from course_lib.grading.authoring.calling import call_and_observe
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.authoring.specs.distillation.loops import PASSES
from course_lib.grading.authoring.specs.distillation.step import TEACHER_GRAPHS, TEACHER_STATE
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
UNDETACHED_LOSS = LOSS.replace("teacher_logits.detach()", "teacher_logits")  # the gradient reaches the teacher
HIDING_STEP = '''def distillation_step(student, teacher, inputs, labels, optimizer, temperature=4.0,
                      alpha=0.9):
    teacher._forward_pre_hooks.clear()  # the course's count of graph-building passes: gone
    teacher.eval()
    student.train()
    loss = distillation_loss(student(inputs), teacher(inputs), labels, temperature, alpha)  # a graph through it
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    saved = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher.train()
    teacher(inputs)  # a pass in train mode: the running statistics move
    teacher.load_state_dict(saved)  # and are put back
    teacher.zero_grad(set_to_none=True)  # no trace: every teacher gradient is None again
    return loss.item()'''
FROZEN_STEP = STEP.replace("    with torch.no_grad():\n        t = teacher(inputs)",
                           "    teacher.requires_grad_(False)  # autograd stays on, but no parameter needs a gradient\n"
                           "    t = teacher(inputs)")
SLOW = Options(time=TimeLimits(case_cpu=20, case_wall=60, exercise=240, definitions=10), execute=False)
FAST = Options(execute=False)


def _learner_function() -> object:
    namespace: dict = {}
    for source in (IMPORTS, LOSS, STEP, LOOP, TAMPERING_SWEEP):
        exec(compile(source, "<notebook>", "exec"), namespace)  # noqa: S102 - the learner's code, here
    return namespace["temperature_sweep"]


def _tampered_observation() -> dict:
    """The tampering sweep's observation on the counting case, where it runs (in a process of its own)."""
    exercise = get_assignment("distillation").exercise("temperature_sweep")
    case = next(c for c in exercise.public() if "counts its passes" in c.description)
    return call_and_observe(_learner_function(), exercise, case, seed=0)["value"]


def _in_a_child(work: Callable[[], object]) -> object:
    """``work()`` (a module-level function) in a fresh interpreter (``spawn``), its result pickled back: the
    tampering sweep walks every object in memory and sets each ``passes`` attribute it finds (``torch.fx.passes``
    among them), which would break every later ``torch.compile`` in this pytest worker; and a forked child could
    not train at all if this worker has back-propagated through a compiled model (autograd refuses the fork)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(work)


def test_in_its_own_process_the_tampering_fools_the_count():
    """What the grader must not trust: observed where the function runs, the count says 1 pass, not 3."""
    exercise = get_assignment("distillation").exercise("temperature_sweep")
    case = next(c for c in exercise.public() if "counts its passes" in c.description)
    observed = _in_a_child(_tampered_observation)
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


def _step_observed(*sources: str, case: int = 1) -> tuple[dict, dict]:
    """The observation of the learner's ``distillation_step`` (defined by ``sources``) on public case ``case``
    (a teacher with BatchNorm), in this process, and the reference's."""
    namespace: dict = {}
    for source in (IMPORTS, *sources):
        exec(compile(source, "<notebook>", "exec"), namespace)  # noqa: S102 - the learner's code, here
    exercise = get_assignment("distillation").exercise("distillation_step")
    chosen = exercise.public()[case]
    observed = call_and_observe(namespace["distillation_step"], exercise, chosen, seed=0)["value"]
    return observed, call_and_observe(exercise.reference_fn(), exercise, chosen, seed=0)["value"]


def test_in_its_own_process_a_step_can_hide_what_it_did_to_the_teacher():
    """What the grader must not trust: no graph counted, the buffers as they were, the right update."""
    observed, expected = _step_observed(UNDETACHED_LOSS, HIDING_STEP)
    assert observed[TEACHER_GRAPHS] == expected[TEACHER_GRAPHS] == 0
    exercise = get_assignment("distillation").exercise("distillation_step")
    assert exercise.check_answer(observed, expected, *exercise.public()[1].make()) is None


def test_a_teacher_frozen_by_requires_grad_builds_no_graph_either():
    observed, expected = _step_observed(LOSS, FROZEN_STEP)
    assert "no_grad" not in FROZEN_STEP and observed[TEACHER_GRAPHS] == 0
    exercise = get_assignment("distillation").exercise("distillation_step")
    assert exercise.check_answer(observed, expected, *exercise.public()[1].make()) is None


def test_graded_a_step_that_hides_what_it_did_to_the_teacher_scores_zero(tmp_path):
    path = notebook(tmp_path / "01_distillation.ipynb", "distillation", IMPORTS, UNDETACHED_LOSS, HIDING_STEP)
    results = grade(path, "distillation", options=FAST)
    assert points(results, "distillation_step") == 0
    output = by_test(results)["distillation_step (public tests)"]["output"]
    assert f"returned 2 as {TEACHER_GRAPHS}, expected 0" in output, output  # the loss's pass, the train-mode one
    bn_case = next(line for line in output.splitlines() if "a teacher with BatchNorm, left in train" in line)
    assert bn_case.startswith("  [FAIL]") and TEACHER_STATE in bn_case, output  # the grader's statistics moved
    assert points(results, "distillation_loss") > 0  # the loss's values are right: only the step fails

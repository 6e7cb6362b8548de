"""A served module (issue 26): in a sandbox the learner's code gets a shell of the case's teacher, and the grader
runs its own copy, counts the passes that would build an autograd graph and reports its copy's state."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.grading.authoring import served
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.authoring.specs.distillation.step import TEACHER_GRAPHS, TEACHER_STATE
from course_lib.grading.confinement.channel import decode, encode
from course_lib.grading.grade.observations import CaseOutcome
from course_lib.grading.grade.sandbox_client import Served
from course_lib.grading.grade.status import Status

STEP = get_assignment("distillation").exercise("distillation_step")
BN_CASE = 1  # public case 1: a teacher with BatchNorm, left in train mode


class _Box:
    """What the grader's side sends to a sandbox, kept."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, message: dict) -> bool:
        self.sent.append(message)
        return True


def _teacher_and_shell() -> tuple[nn.Module, nn.Module]:
    args, _ = STEP.public()[BN_CASE].make()
    served_args, _ = served.serving(STEP.public()[BN_CASE].make)()
    return args[1], served_args[1]


def test_the_learner_gets_the_teachers_tree_with_zero_weights_and_the_rest_unchanged():
    (student, teacher, inputs, *_), _ = STEP.public()[BN_CASE].make()
    (s_student, shell, s_inputs, *_), _ = served.serving(STEP.public()[BN_CASE].make)()
    assert isinstance(shell, served.ServedModule) and isinstance(shell, nn.Sequential)
    assert [type(m) for m in shell.modules()][1:] == [type(m) for m in teacher.modules()][1:]
    assert [m.training for m in shell.modules()] == [m.training for m in teacher.modules()]
    assert all(not v.any() for v in shell.state_dict().values())
    assert any(v.any() for v in teacher.state_dict().values())
    assert type(s_student) is type(student) and torch.equal(s_inputs, inputs)  # only the teacher is served


def test_the_shell_sends_its_input_modes_and_whether_a_graph_would_be_built(monkeypatch):
    _, shell = _teacher_and_shell()
    calls = []
    monkeypatch.setattr(served, "FORWARD", lambda *a: calls.append(a) or torch.ones(2, 4))
    x = torch.randn(2, 6)
    assert torch.equal(shell(x), torch.ones(2, 4))
    shell.eval()
    with torch.no_grad():
        shell(x)
    with torch.inference_mode():
        shell(x)
    shell[1].train()  # one submodule back in train mode
    shell.requires_grad_(False)
    shell(x)
    position, sent, modes, graph = calls[0]
    assert position == 1 and torch.equal(sent, x) and all(modes) and graph is True
    assert [c[3] for c in calls] == [True, False, False, False]
    assert [c[2] for c in calls[1:3]] == [[False] * 5] * 2 and calls[3][2] == [False, False, True, False, False]
    assert shell.graph_passes == 1  # the sandbox's own count, which the grader replaces


def test_outside_a_sandbox_or_with_other_arguments_the_shell_refuses(monkeypatch):
    _, shell = _teacher_and_shell()
    with pytest.raises(RuntimeError, match="sandbox"):
        shell(torch.randn(2, 6))
    monkeypatch.setattr(served, "FORWARD", lambda *a: torch.zeros(1))
    with pytest.raises(TypeError, match="one input tensor"):
        shell(torch.randn(2, 6), torch.randn(2, 6))


def test_the_grader_runs_its_own_teacher_in_the_modes_sent_and_counts_graphs():
    grader = Served(STEP, None, "public", BN_CASE)
    box, x = _Box(), torch.randn(8, 6)
    teacher, _ = _teacher_and_shell()  # an independent copy of the case's teacher: the reference
    grader.run_forward(box, {"position": 1, "inputs": encode(x), "modes": [True] * 5, "graph": True})
    with torch.no_grad():
        expected_train = teacher.train()(x)  # moves the running statistics, as the grader's pass must have
        expected_eval = teacher.eval()(x)
    grader.run_forward(box, {"position": 1, "inputs": encode(x), "modes": [False] * 5, "graph": False})
    outputs = [decode(m["output"]) for m in box.sent]
    assert torch.allclose(outputs[0], expected_train) and torch.allclose(outputs[1], expected_eval)
    value = {TEACHER_STATE: [], TEACHER_GRAPHS: 0, "other": 1}  # what the sandbox claimed
    observed = grader.observe(CaseOutcome(Status.ANSWERED, {"value": value})).result["value"]
    assert observed[TEACHER_GRAPHS] == 1 and observed["other"] == 1
    assert all(torch.equal(a, b) for a, b in zip(observed[TEACHER_STATE], teacher.state_dict().values(), strict=True))


@pytest.mark.parametrize("message, error", [
    ({"position": 1, "inputs": encode(torch.randn(8, 6)), "modes": [True], "graph": False}, "modes of its 5"),
    ({"position": 1, "inputs": encode([1, 2]), "modes": [True] * 5, "graph": False}, "floating-point input"),
    ({"position": 1, "inputs": encode(torch.randn(8, 7)), "modes": [True] * 5, "graph": False}, "forward pass failed")])
def test_the_grader_answers_a_bad_pass_with_an_error_and_runs_nothing(message, error):
    grader, box = Served(STEP, None, "public", BN_CASE), _Box()
    grader.run_forward(box, message)
    assert box.sent[0]["type"] == "output" and error in box.sent[0]["error"]
    assert "output" not in box.sent[0]


def test_a_position_that_holds_no_served_module_gets_no_answer():
    grader, box = Served(STEP, None, "public", BN_CASE), _Box()
    grader.run_forward(box, {"position": 0, "inputs": encode(torch.randn(8, 6)), "modes": [True] * 4,
                             "graph": False})
    assert box.sent == []

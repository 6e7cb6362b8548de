"""One training step of exercise 1: ``distillation_step``."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ... import served
from ...exercise import Case, Exercise
from .losses import UNLABELED

# --- distillation_step -----------------------------------------------------------------------------------

def _step_case(seed: int, text: str, kwargs: dict | None = None, *, teacher_bn: bool = False,
               student_bn: bool = False, student_eval: bool = False, unlabeled: float = 0.0,
               optimizer: str = "sgd", stale: bool = False) -> Case:
    """A 6-8-4 student, a 6-16-4 teacher, a batch of 8; with ``stale``, every parameter of the student holds a
    gradient from an earlier step in ``.grad`` (as after a step whose gradients were not cleared)."""
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            student = nn.Sequential(*([nn.Linear(6, 8)] + ([nn.BatchNorm1d(8)] if student_bn else [])
                                      + [nn.ReLU(), nn.Linear(8, 4)]))
            teacher = nn.Sequential(*([nn.Linear(6, 16)] + ([nn.BatchNorm1d(16)] if teacher_bn else [])
                                      + [nn.ReLU(), nn.Linear(16, 4)]))
            if teacher_bn:  # trained running statistics, far from those of a batch
                teacher[1].running_mean.normal_()
                teacher[1].running_var.uniform_(0.5, 2.0)
            inputs = torch.randn(8, 6)
            labels = torch.randint(0, 4, (8,))
            labels[torch.rand(8) < unlabeled] = UNLABELED
            if stale:
                for p in student.parameters():
                    p.grad = torch.randn(p.shape)
        served.serve(teacher, state_as=TEACHER_STATE, graph_passes_as=TEACHER_GRAPHS)  # run by the grader, graded
        student.train(not student_eval)  # the teacher is left in train mode, as nn.Module builds it
        opt = (torch.optim.SGD(student.parameters(), lr=0.5) if optimizer == "sgd"
               else torch.optim.Adam(student.parameters(), lr=0.05))
        return (student, teacher, inputs, labels, opt), dict(kwargs or {})
    return Case(text, make)


TEACHER_STATE = "the teacher's parameters and buffers after the step"
TEACHER_GRAPHS = ("the number of the teacher's forward passes that built an autograd graph (autograd on, "
                  "its parameters requiring gradients)")


def step_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned loss and its type, the student's and the teacher's parameters and buffers after the step,
    and how many of the teacher's forward passes built an autograd graph (a gradient could then reach it). In a
    sandbox the teacher is served (:func:`~course_lib.grading.authoring.served.serve`): the grader ran it, and
    its own teacher's state and count replace these."""
    student, teacher = args[0], args[1]
    return {"the returned loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the type of the returned loss": type(result).__name__,
            "the student's parameters and buffers after the step": [v.detach() for v in student.state_dict().values()],
            TEACHER_STATE: [v.detach() for v in teacher.state_dict().values()],
            TEACHER_GRAPHS: teacher.graph_passes}


def step_public() -> list[Case]:
    return [_step_case(0, "a 6-8-4 student, a 6-16-4 teacher, a batch of 8 random inputs, SGD(lr=0.5), default "
                          "temperature and alpha"),
            _step_case(1, "a teacher with BatchNorm, left in train mode by the caller (it must run in eval mode: "
                          "its running statistics must not change), temperature=2, alpha=0.5",
                       {"temperature": 2.0, "alpha": 0.5}, teacher_bn=True),
            _step_case(2, "a student with BatchNorm, left in eval mode by the caller (it must train in train mode)",
                       student_bn=True, student_eval=True),
            _step_case(3, "labels with UNLABELED (-1) entries, temperature=3", {"temperature": 3.0}, unlabeled=0.5),
            _step_case(4, "an optimizer that holds gradients from an earlier step (the student's parameters have a "
                          "non-zero .grad before the call): they must not enter this step, SGD(lr=0.5)", stale=True)]


def step_hidden(seed: int) -> list[Case]:
    return [_step_case(seed + 1, "a teacher with BatchNorm in train mode, default settings", teacher_bn=True),
            _step_case(seed + 2, "teacher and student with BatchNorm, the student in eval mode, temperature=6, "
                                 "alpha=0.3", {"temperature": 6.0, "alpha": 0.3}, teacher_bn=True, student_bn=True,
                       student_eval=True),
            _step_case(seed + 3, "temperature=1, alpha=1, Adam", {"temperature": 1.0, "alpha": 1.0},
                       optimizer="adam"),
            _step_case(seed + 4, "most labels UNLABELED, a teacher with BatchNorm", unlabeled=0.8, teacher_bn=True),
            _step_case(seed + 5, "an optimizer (Adam) that holds gradients from an earlier step: the student's "
                                 "parameters have a non-zero .grad before the call, temperature=2",
                       {"temperature": 2.0}, optimizer="adam", stale=True)]


EXERCISES = (
    Exercise("distillation_step", "course_lib.distillation", step_public, step_hidden,
             hint="one optimizer step of the student on your distillation_loss with the teacher's logits, "
                  "the teacher in eval mode and without gradients, the student in train mode; returns the loss "
                  "before the step as a float",
             observe=step_observe, relies_on=("distillation_loss",),
             hints=("Set the modes first, whatever the caller left: the teacher in eval mode (its BatchNorm then "
                    "uses its running statistics and does not update them), the student in train mode.",
                    "Run the teacher with autograd switched off (torch.no_grad), so that no graph is built "
                    "through it and none of its parameters receives a gradient.",
                    "The loss is your distillation_loss of the student's logits and the teacher's on the same "
                    "inputs, with the labels, temperature and alpha passed on.",
                    "The optimizer may still hold gradients from an earlier step: clear them before "
                    "back-propagating the loss, then let the optimizer step.",
                    "Return the loss as a Python float (a one-element tensor's .item()), not a tensor that keeps "
                    "the graph alive.")),
)

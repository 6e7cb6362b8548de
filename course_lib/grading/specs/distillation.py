"""Exercise 1, knowledge distillation: ``soft_targets``, ``distillation_loss``, ``distillation_step``.

References: :mod:`course_lib.distillation`. Hidden cases: random logits of several shapes and
scales (up to 1,000, where a softmax that does not subtract the maximum overflows), temperatures
from 0.5 to 10, the extreme weights ``alpha = 0`` and ``1``, the gradient with respect to the
student's logits, and an optimizer step with a teacher that has batch-norm layers (it must run in
eval mode) and must not be updated.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..spec import Assignment, Case, Exercise


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- soft_targets ------------------------------------------------------------------------------

def _soft_case(logits: list | torch.Tensor, temperature: float, text: str | None = None) -> Case:
    t = torch.as_tensor(logits, dtype=torch.float32)
    text = text or f"logits={t.tolist()}, temperature={temperature}"
    return Case(text, lambda: ((t.clone(), temperature), {}))


def soft_public() -> list[Case]:
    return [_soft_case([[1.0, 2.0, 3.0]], 1.0),
            _soft_case([[1.0, 2.0, 3.0]], 4.0),
            _soft_case([[0.0, 0.0, 0.0, 0.0], [2.0, -1.0, 0.5, 0.0]], 2.0)]


def soft_hidden(seed: int) -> list[Case]:
    cases = []
    for i, (shape, scale, temperature) in enumerate([((8, 10), 3.0, 1.0), ((8, 10), 3.0, 4.0), ((5, 7), 5.0, 10.0),
                                                     ((2, 3, 5), 2.0, 2.5), ((4, 10), 1.0, 0.5),
                                                     ((3, 6), 1000.0, 1.0)]):
        logits = torch.randn(shape, generator=_gen(seed + i)) * scale
        cases.append(_soft_case(logits, temperature, f"random logits of shape {shape} (scale {scale:g}), "
                                                     f"temperature={temperature}"))
    return cases


# --- distillation_loss -------------------------------------------------------------------------

def _loss_case(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, kwargs: dict, text: str) -> Case:
    def make() -> tuple[tuple, dict]:
        return (student.clone().requires_grad_(True), teacher.clone(), labels.clone()), dict(kwargs)
    return Case(text, make)


def loss_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The loss and its gradient with respect to ``student_logits`` (``None`` if it has none)."""
    student = args[0]
    grad = None
    if isinstance(result, torch.Tensor) and result.requires_grad and result.dim() == 0:
        grad = torch.autograd.grad(result, student, allow_unused=True)[0]
    return {"the loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the gradient with respect to student_logits": grad}


def loss_public() -> list[Case]:
    s = torch.tensor([[1.0, 2.0, 3.0]])
    t = torch.tensor([[3.0, 2.0, 1.0]])
    y = torch.tensor([0])
    return [_loss_case(s, t, y, {"temperature": 1.0, "alpha": 0.5},
                       "student_logits=[[1, 2, 3]], teacher_logits=[[3, 2, 1]], labels=[0], temperature=1, alpha=0.5"),
            _loss_case(s, t, y, {}, "the same logits with the default temperature=4.0, alpha=0.9"),
            _loss_case(s, s, torch.tensor([2]), {"temperature": 2.0, "alpha": 1.0},
                       "identical student and teacher logits [[1, 2, 3]], labels=[2], temperature=2, alpha=1 "
                       "(the loss must be 0)")]


def loss_hidden(seed: int) -> list[Case]:
    cases = []
    settings = [((16, 10), 2.0, 4.0, 0.9), ((16, 10), 2.0, 1.0, 0.5), ((8, 5), 3.0, 8.0, 0.7),
                ((8, 5), 3.0, 3.0, 0.0), ((8, 5), 3.0, 3.0, 1.0), ((4, 10), 300.0, 2.0, 0.9)]
    for i, (shape, scale, temperature, alpha) in enumerate(settings):
        g = _gen(seed + i)
        s = torch.randn(shape, generator=g) * scale
        t = torch.randn(shape, generator=g) * scale
        y = torch.randint(0, shape[1], (shape[0],), generator=g)
        cases.append(_loss_case(s, t, y, {"temperature": temperature, "alpha": alpha},
                                f"random logits of shape {shape} (scale {scale:g}), temperature={temperature}, "
                                f"alpha={alpha}"))
    return cases


# --- distillation_step -------------------------------------------------------------------------

def _step_case(seed: int, batch_norm: bool, kwargs: dict, text: str) -> Case:
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
            layers = [nn.Linear(6, 16)] + ([nn.BatchNorm1d(16)] if batch_norm else []) + [nn.ReLU(), nn.Linear(16, 4)]
            teacher = nn.Sequential(*layers)
            if batch_norm:
                teacher[1].running_mean.normal_()
                teacher[1].running_var.uniform_(0.5, 2.0)
            inputs = torch.randn(8, 6)
            labels = torch.randint(0, 4, (8,))
        optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
        return (student, teacher, inputs, labels, optimizer), dict(kwargs)
    return Case(text, make)


def step_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned loss, and the student's and the teacher's parameters (and buffers) after the step."""
    student, teacher = args[0], args[1]
    return {"the returned loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the student's parameters after the step": [p.detach() for p in student.state_dict().values()],
            "the teacher's parameters and buffers after the step": [p.detach() for p in teacher.state_dict().values()]}


def step_public() -> list[Case]:
    return [_step_case(0, False, {}, "a 6-8-4 student, a 6-16-4 teacher, a batch of 8 random inputs, SGD(lr=0.5), "
                                     "default temperature and alpha"),
            _step_case(1, False, {"temperature": 2.0, "alpha": 0.5}, "the same with temperature=2, alpha=0.5")]


def step_hidden(seed: int) -> list[Case]:
    return [_step_case(seed + 1, True, {}, "a teacher with batch norm (it must be in eval mode), default settings"),
            _step_case(seed + 2, True, {"temperature": 6.0, "alpha": 0.3}, "a teacher with batch norm, "
                                                                           "temperature=6, alpha=0.3"),
            _step_case(seed + 3, False, {"temperature": 1.0, "alpha": 1.0}, "temperature=1, alpha=1")]


ASSIGNMENT = Assignment(
    name="distillation",
    title="Knowledge distillation",
    exercises=(
        Exercise("soft_targets", "course_lib.distillation:soft_targets", soft_public, soft_hidden,
                 hint="divide the logits by the temperature and take a softmax over the last dimension"),
        Exercise("distillation_loss", "course_lib.distillation:distillation_loss", loss_public, loss_hidden,
                 hint="alpha * T**2 * KL(teacher || student) on the softened distributions (averaged over the "
                      "batch) plus (1 - alpha) * cross-entropy with the labels",
                 observe=loss_observe, public_points=1.0, hidden_points=3.0),
        Exercise("distillation_step", "course_lib.distillation:distillation_step", step_public, step_hidden,
                 hint="teacher in eval mode without gradients, student in train mode; compute the loss, "
                      "zero the gradients, backward, step, and return the loss as a float",
                 observe=step_observe, rtol=1e-4, atol=1e-5),
    ),
)

"""Distilling a language model in exercise 5: ``lm_distillation_loss``, forward or reverse KL per token."""
from __future__ import annotations

from typing import Any

import torch

from ...exercise import Case, Exercise
from ...seeds import generator
from ..distillation.losses import loss_observe

F64 = torch.float64
S = [[[1.0, 2.0, 0.0, -1.0], [0.5, 0.5, 3.0, 0.0]]]  # (B=1, T=2, V=4)
T = [[[2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 4.0]]]


def _case(text: str, student: Any, teacher: Any, kwargs: dict | None = None, targets: Any = None,
          dtype: torch.dtype = torch.float32, raises: str | None = None) -> Case:
    """Student and teacher logits that both require a gradient (the teacher's must receive none)."""
    s, t = torch.as_tensor(student, dtype=dtype), torch.as_tensor(teacher, dtype=dtype)
    y = None if targets is None else torch.as_tensor(targets, dtype=torch.int64)

    def make() -> tuple[tuple, dict]:
        extra = {} if y is None else {"targets": y.clone()}
        return (s.clone().requires_grad_(True), t.clone().requires_grad_(True)), {**(kwargs or {}), **extra}
    return Case(text, make, raises)


def kd_public() -> list[Case]:
    return [_case(f"student_logits={S}, teacher_logits={T} (shape (1, 2, 4): 2 positions), default temperature=1, "
                  "direction='forward' (KL(teacher || student), averaged over the 2 positions)", S, T),
            _case("the same, direction='reverse' (KL(student || teacher))", S, T, {"direction": "reverse"}),
            _case("the same, temperature=2 (both softened, and the factor T^2)", S, T, {"temperature": 2.0}),
            _case("the same, targets=[[5, -100]] (the second position is ignored: the mean is over 1 position)",
                  S, T, targets=[[5, -100]]),
            _case("the same, targets=[[-1, 3]], ignore_index=-1, direction='reverse'", S, T,
                  {"ignore_index": -1, "direction": "reverse"}, targets=[[-1, 3]]),
            _case("the same, targets=[[-100, -100]] (no position counts: the loss is 0)", S, T,
                  targets=[[-100, -100]]),
            _case("student_logits=[[0, 200, -200]], teacher_logits=[[200, 0, -200]] (softmax(-200) is 0 in "
                  "float32, and log(0) is -inf)", [[0.0, 200.0, -200.0]], [[200.0, 0.0, -200.0]]),
            _case("the first logits in float64, temperature=3 (the loss and its gradient stay float64)", S, T,
                  {"temperature": 3.0}, dtype=F64),
            _case("direction='backward' (must raise ValueError naming direction)", S, T, {"direction": "backward"},
                  raises="direction"),
            _case("temperature=0 (must raise ValueError naming temperature)", S, T, {"temperature": 0.0},
                  raises="temperature")]


def kd_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    s, t = torch.randn(2, 8, 12, generator=g) * 3, torch.randn(2, 8, 12, generator=g) * 3
    y = torch.randint(0, 12, (2, 8), generator=g)
    y[torch.rand(2, 8, generator=g) < 0.4] = -100
    return [_case("random (2, 8, 12) logits, forward", s, t),
            _case("random (2, 8, 12) logits, reverse, temperature=2", s, t, {"direction": "reverse",
                                                                               "temperature": 2.0}),
            _case("random logits, forward, temperature=4, some positions ignored", s, t, {"temperature": 4.0},
                  targets=y),
            _case("random logits, reverse, some positions ignored with ignore_index=7", s, t,
                  {"direction": "reverse", "ignore_index": 7}, targets=torch.where(y == -100, 7, y)),
            _case("random float64 (2, 8, 12) logits, reverse, temperature=0.5", s, t,
                  {"direction": "reverse", "temperature": 0.5}, dtype=F64),
            _case("random (16, 12) logits of scale 300 (2-d: 16 positions)", s.reshape(16, 12) * 100,
                  t.reshape(16, 12) * 100),
            _case("direction='Forward' (must raise ValueError naming direction)", s, t, {"direction": "Forward"},
                  raises="direction"),
            _case("temperature=-1 (must raise ValueError naming temperature)", s, t, {"temperature": -1.0},
                  raises="temperature")]


EXERCISES = (
    Exercise("lm_distillation_loss", "course_lib.llm.distill", kd_public, kd_hidden,
             hint="T^2 times KL(teacher || student) (forward) or KL(student || teacher) (reverse) between the "
                  "softened next-token distributions, averaged over the positions whose target is not ignore_index; "
                  "no gradient into the teacher",
             observe=loss_observe, dtypes=True,
             hints=("temperature <= 0 is a ValueError naming temperature; a direction other than 'forward' or "
                    "'reverse' is a ValueError naming direction.",
                    "log q = torch.log_softmax(student_logits / T, dim=-1) and log p likewise from "
                    "teacher_logits.detach(): never the log of a softmax, which is -inf where it underflows.",
                    "Per position, forward: (p * (log p - log q)).sum(-1); reverse: (q * (log q - log p)).sum(-1), "
                    "with p = log p.exp() and q = log q.exp().",
                    "counted = targets != ignore_index (every position when targets is None); the loss is T ** 2 "
                    "* (the per-position values where counted).sum() / counted.sum().clamp(min=1).")),
)

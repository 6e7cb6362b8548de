"""The losses of exercise 1: ``soft_targets``, ``distillation_loss`` and ``hard_label_loss``."""
from __future__ import annotations

from typing import Any

import torch

from ...exercise import Case, Exercise
from ...seeds import generator

UNLABELED = -1  # as course_lib.distillation.UNLABELED; the notebook states the value


# --- soft_targets ----------------------------------------------------------------------------------------

def _soft_case(logits: list | torch.Tensor, temperature: float, text: str | None = None,
               dtype: torch.dtype = torch.float32) -> Case:
    t = torch.as_tensor(logits, dtype=dtype)
    text = text or f"logits={t.tolist()}, temperature={temperature}"
    return Case(text, lambda: ((t.clone(), temperature), {}))


def soft_public() -> list[Case]:
    return [_soft_case([[1.0, 2.0, 3.0]], 1.0),
            _soft_case([[1.0, 2.0, 3.0]], 4.0),
            _soft_case([[[2000.0, 0.0, -2000.0, 1998.0]], [[2.0, -1.0, 0.5, 0.0]]], 2.0,
                       "float64 logits [[[2000, 0, -2000, 1998]], [[2, -1, 0.5, 0]]] of shape (2, 1, 4), temperature=2 "
                       "(a softmax over the last dimension; exp(1000) overflows even in float64; the result stays "
                       "float64)",
                       dtype=torch.float64)]


def soft_hidden(seed: int) -> list[Case]:
    cases = []
    settings = [((8, 10), 3.0, 1.0, torch.float32), ((8, 10), 3.0, 4.0, torch.float64),
                ((5, 7), 5.0, 10.0, torch.float32), ((2, 3, 5), 2.0, 2.5, torch.float32),
                ((4, 10), 1.0, 0.5, torch.float32), ((3, 6), 1000.0, 1.0, torch.float64)]
    for i, (shape, scale, temperature, dtype) in enumerate(settings):
        logits = torch.randn(shape, generator=generator(seed + i), dtype=dtype) * scale
        cases.append(_soft_case(logits, temperature, f"random {str(dtype).removeprefix('torch.')} logits of shape "
                                                     f"{shape} (scale {scale:g}), temperature={temperature}",
                                dtype=dtype))
    return cases


# --- distillation_loss and hard_label_loss ---------------------------------------------------------------

S = [[1.0, 2.0, 3.0], [0.0, -1.0, 2.0]]
T = [[3.0, 2.0, 1.0], [0.5, 0.5, 4.0]]


def _loss_case(text: str, student: Any, teacher: Any, labels: Any, kwargs: dict | None = None,
               dtype: torch.dtype = torch.float32, raises: str | None = None) -> Case:
    """Student and teacher logits that both require a gradient (the teacher's must receive none)."""
    s, t = torch.as_tensor(student, dtype=dtype), torch.as_tensor(teacher, dtype=dtype)
    y = torch.as_tensor(labels, dtype=torch.int64)

    def make() -> tuple[tuple, dict]:
        return (s.clone().requires_grad_(True), t.clone().requires_grad_(True), y.clone()), dict(kwargs or {})
    return Case(text, make, raises)


def loss_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The loss, its gradient with respect to ``student_logits``, and whether any gradient reaches
    ``teacher_logits``."""
    student, teacher = args[0], args[1]
    grad, reaches = None, False
    if isinstance(result, torch.Tensor) and result.requires_grad and result.dim() == 0:
        grad, teacher_grad = torch.autograd.grad(result, [student, teacher], allow_unused=True)
        reaches = teacher_grad is not None and bool((teacher_grad != 0).any())
    return {"the loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the gradient with respect to student_logits": grad,
            "whether a gradient reaches teacher_logits": reaches}


def loss_public() -> list[Case]:
    return [_loss_case("student_logits=[[1, 2, 3], [0, -1, 2]], teacher_logits=[[3, 2, 1], [0.5, 0.5, 4]], "
                       "labels=[0, 2], temperature=1, alpha=0.5 (a batch of 2: the KL term is averaged over it; the "
                       "divergence is KL(p_teacher || q_student), from the teacher's distribution to the student's, "
                       "not the reverse)",
                       S, T, [0, 2], {"temperature": 1.0, "alpha": 0.5}),
            _loss_case("the same logits with the default temperature=4.0 and alpha=0.9 (both distributions "
                       "softened, and the factor T^2)", S, T, [0, 2]),
            _loss_case("the same logits, temperature=4, alpha=0 (the cross-entropy of the unsoftened student "
                       "logits alone)", S, T, [0, 2], {"temperature": 4.0, "alpha": 0.0}),
            _loss_case("the same logits, labels=[0, -1]: the second image is UNLABELED (soft term only; the label "
                       "term is the first image's cross-entropy divided by the batch size 2), temperature=2, "
                       "alpha=0.5", S, T, [0, UNLABELED], {"temperature": 2.0, "alpha": 0.5}),
            _loss_case("student_logits equal to teacher_logits, labels=[1, 0], temperature=2, alpha=1 (the loss and "
                       "its gradient must be 0)", S, S, [1, 0], {"temperature": 2.0, "alpha": 1.0}),
            _loss_case("student_logits=[[0, 200, -200], [1, 2, 3]], teacher_logits=[[200, 0, -200], [3, 2, 1]], "
                       "labels=[1, 2], temperature=1 (softmax(-200) is 0 in float32, and log(0) is -inf)",
                       [[0.0, 200.0, -200.0], [1.0, 2.0, 3.0]], [[200.0, 0.0, -200.0], [3.0, 2.0, 1.0]], [1, 2],
                       {"temperature": 1.0}),
            _loss_case("the first logits in float64, temperature=3, alpha=0.7 (the loss and its gradient stay "
                       "float64)", S, T, [0, 2], {"temperature": 3.0, "alpha": 0.7}, dtype=torch.float64),
            _loss_case("alpha=1.5 (must raise ValueError naming alpha)", S, T, [0, 2], {"alpha": 1.5},
                       raises="alpha"),
            _loss_case("temperature=0 (must raise ValueError naming temperature)", S, T, [0, 2],
                       {"temperature": 0.0}, raises="temperature")]


def _random_logits(seed: int, shape: tuple[int, int], scale: float, unlabeled: float,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = generator(seed)
    s = torch.randn(shape, generator=g, dtype=dtype) * scale
    t = torch.randn(shape, generator=g, dtype=dtype) * scale
    y = torch.randint(0, shape[1], (shape[0],), generator=g)
    y[torch.rand(shape[0], generator=g) < unlabeled] = UNLABELED
    return s, t, y


def loss_hidden(seed: int) -> list[Case]:
    settings = [((16, 10), 2.0, 4.0, 0.9, 0.0), ((16, 10), 2.0, 1.0, 0.5, 0.0), ((8, 5), 3.0, 8.0, 0.7, 0.5),
                ((8, 5), 3.0, 3.0, 0.0, 0.0), ((8, 5), 3.0, 3.0, 1.0, 0.3), ((4, 10), 300.0, 2.0, 0.9, 0.0),
                ((32, 10), 2.0, 4.0, 0.9, 0.9), ((6, 4), 1.0, 2.0, 0.5, 1.0)]
    cases = []
    for i, (shape, scale, temperature, alpha, unlabeled) in enumerate(settings):
        s, t, y = _random_logits(seed + i, shape, scale, unlabeled)
        share = "every label UNLABELED" if unlabeled == 1.0 else f"about {unlabeled:.0%} UNLABELED" if unlabeled \
            else "all labeled"
        cases.append(_loss_case(f"random logits of shape {shape} (scale {scale:g}), {share}, "
                                f"temperature={temperature}, alpha={alpha}", s, t, y,
                                {"temperature": temperature, "alpha": alpha}))
    s, t, y = _random_logits(seed + 20, (10, 6), 2.0, 0.4, torch.float64)
    cases += [_loss_case("random float64 logits of shape (10, 6), some UNLABELED, temperature=5, alpha=0.8", s, t, y,
                         {"temperature": 5.0, "alpha": 0.8}, dtype=torch.float64),
              _loss_case("alpha=-0.1 (must raise ValueError naming alpha)", s, t, y, {"alpha": -0.1}, raises="alpha"),
              _loss_case("temperature=-2 (must raise ValueError naming temperature)", s, t, y, {"temperature": -2.0},
                         raises="temperature")]
    return cases


def hard_public() -> list[Case]:
    return [_loss_case("student_logits=[[1, 2, 3], [0, -1, 2]], teacher_logits=[[3, 2, 1], [0.5, 0.5, 4]] (the "
                       "teacher's decisions: 0 and 2), labels=[1, 2], alpha=0.5", S, T, [1, 2], {"alpha": 0.5}),
            _loss_case("the same, alpha=1 (the teacher's decisions alone: the labels play no role)", S, T, [1, 2],
                       {"alpha": 1.0}),
            _loss_case("the same logits, labels=[1, -1] (the second image UNLABELED: the teacher's term only), "
                       "default alpha=0.9", S, T, [1, UNLABELED]),
            _loss_case("the logits in float64, alpha=0.3 (the loss stays float64)", S, T, [1, 2], {"alpha": 0.3},
                       dtype=torch.float64),
            _loss_case("alpha=-0.5 (must raise ValueError naming alpha)", S, T, [1, 2], {"alpha": -0.5},
                       raises="alpha")]


def hard_hidden(seed: int) -> list[Case]:
    cases = []
    for i, (shape, alpha, unlabeled) in enumerate([((16, 10), 0.9, 0.0), ((16, 10), 0.5, 0.5), ((8, 5), 1.0, 0.0),
                                                   ((8, 5), 0.0, 0.0), ((32, 10), 0.9, 0.97), ((5, 3), 0.7, 1.0)]):
        s, t, y = _random_logits(seed + i, shape, 3.0, unlabeled)
        cases.append(_loss_case(f"random logits of shape {shape}, about {unlabeled:.0%} UNLABELED, alpha={alpha}",
                                s, t, y, {"alpha": alpha}))
    s, t, y = _random_logits(seed + 20, (7, 4), 2.0, 0.3, torch.float64)
    cases += [_loss_case("random float64 logits of shape (7, 4), alpha=0.6", s, t, y, {"alpha": 0.6},
                         dtype=torch.float64),
              _loss_case("alpha=2 (must raise ValueError naming alpha)", s, t, y, {"alpha": 2.0}, raises="alpha")]
    return cases


EXERCISES = (
    Exercise("soft_targets", "course_lib.distillation", soft_public, soft_hidden,
             hint="the softened probabilities p_T(z) over the last dimension, finite for any logits, in the dtype "
                  "of the logits",
             dtypes=True,
             hints=("Which dimension holds the classes? The last one, whatever the number of dimensions: "
                    "dim=-1.",
                    "exp(1000) is inf in any float type, and inf / inf is nan. A softmax is unchanged when the "
                    "same number is subtracted from every logit; torch.softmax does that for you.")),
    Exercise("distillation_loss", "course_lib.distillation", loss_public, loss_hidden,
             hint="alpha * T^2 * KL(teacher || student) on the softened distributions, averaged over the batch, "
                  "plus (1 - alpha) * the cross-entropy of the labeled examples divided by the batch size; no "
                  "gradient into the teacher",
             observe=loss_observe, dtypes=True, public_points=1.5, hidden_points=3.0,
             hints=("Check the arguments first: alpha outside [0, 1] and a temperature that is not positive "
                    "are ValueErrors naming them.",
                    "Both distributions are softened by the same T. Work with logarithms: log q = "
                    "F.log_softmax(student_logits / T, dim=-1), and log p likewise from teacher_logits.detach() "
                    "(log(softmax) is -inf where the softmax underflows to 0).",
                    "KL(p || q) = sum_k p_k (log p_k - log q_k): sum over the classes, then the mean over the "
                    "batch. Written out with log p and log q it is one line. If you use F.kl_div instead, mind "
                    "its argument order, the reverse of the maths: its first argument is the student's log q, "
                    "its second the teacher's distribution; and read its documentation on the reduction and on "
                    "a target given as logarithms.",
                    "The label term uses the unsoftened student_logits. It sums the cross-entropies of the "
                    "labeled examples only (UNLABELED ones contribute nothing) and divides by the batch size N, "
                    "the number of examples labeled or not, not by the number of labeled examples.",
                    "Multiply the KL term by alpha * T ** 2 and the label term by 1 - alpha.")),
    Exercise("hard_label_loss", "course_lib.distillation", hard_public, hard_hidden,
             hint="alpha * the cross-entropy of the student with the teacher's decisions (every example) plus "
                  "(1 - alpha) * the cross-entropy of the labeled examples divided by the batch size",
             observe=loss_observe, dtypes=True,
             hints=("alpha outside [0, 1] is a ValueError naming alpha.",
                    "The teacher's decision for each example is the class of its largest logit: argmax over "
                    "the last dimension, one integer per example (a temperature would not change it).",
                    "F.cross_entropy(student_logits, decisions) averages over every example, labeled or not; "
                    "the label term is the one of distillation_loss.")),
)

"""Exercise 1, knowledge distillation: ``soft_targets``, ``distillation_loss``, ``hard_label_loss``,
``distillation_step``, the few-label experiment's loop ``distill_steps`` and the ``temperature_sweep`` that
chooses $T$ on validation data.

References: :mod:`course_lib.distillation` (:func:`~course_lib.distillation.loops.distill_steps` and
:func:`~course_lib.distillation.loops.temperature_sweep` were written for this exercise). Every rule the notebook
states has a public case: the last dimension of any shape, no overflow for large logits, the dtype of the
logits kept; the KL divergence in the direction teacher to student, summed over classes and averaged over the
batch, times $T^2$; the hard term on the student's unsoftened logits; examples labeled ``UNLABELED`` (-1) with
the soft (or teacher's) term only and the label term summed over the labeled examples divided by the batch
size; no gradient into the teacher's logits (every case passes teacher logits that require a gradient); the
teacher in eval mode, unchanged and without gradients, the student in train mode, the loss as a Python float; a
new pass over the loader when it runs out; each temperature from the same weights and random state, Adam,
the choice on validation with ties to the lowest temperature, the test split evaluated for the chosen student
only (a test loader that counts its passes: one). An optimizer that holds gradients from an earlier step has a
public and a hidden case of ``distillation_step``. The errors the notebook names have public and hidden cases.
``distillation_step``, ``distill_steps`` and ``temperature_sweep`` call the learner's earlier functions: their
``relies_on`` note says so in the feedback of a failed test.

The three public cases and six hidden cases of ``soft_targets``, its stub message (beginning "divide the
logits") and its absence of error cases are relied on by ``tests/test_grading.py`` and
``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..spec import Assignment, Case, Exercise, Question, compare_values, describe, generator

UNLABELED = -1  # as course_lib.distillation.UNLABELED; the notebook states the value


# --- soft_targets ------------------------------------------------------------------------------

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


# --- distillation_loss and hard_label_loss ---------------------------------------------------------

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


# --- distillation_step -------------------------------------------------------------------------

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
        student.train(not student_eval)  # the teacher is left in train mode, as nn.Module builds it
        opt = (torch.optim.SGD(student.parameters(), lr=0.5) if optimizer == "sgd"
               else torch.optim.Adam(student.parameters(), lr=0.05))
        return (student, teacher, inputs, labels, opt), dict(kwargs or {})
    return Case(text, make)


def step_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned loss and its type, the student's and the teacher's parameters and buffers after the step,
    and how many of the teacher's parameters received a gradient."""
    student, teacher = args[0], args[1]
    return {"the returned loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the type of the returned loss": type(result).__name__,
            "the student's parameters and buffers after the step": [v.detach() for v in student.state_dict().values()],
            "the teacher's parameters and buffers after the step": [v.detach() for v in teacher.state_dict().values()],
            "the number of the teacher's parameters that received a gradient":
                sum(p.grad is not None for p in teacher.parameters())}


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


# --- distill_steps -------------------------------------------------------------------------------

def _loop_case(seed: int, text: str, steps: int, kwargs: dict | None = None, *, examples: int = 20,
               shuffle: bool = False, unlabeled: float = 0.25, raises: str | None = None) -> Case:
    """A 6-8-4 student, a 6-16-4 teacher with BatchNorm (in train mode), ``examples`` random examples in batches
    of 8 (the last one smaller), a share of them UNLABELED, and Adam."""
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
            teacher = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
            teacher[1].running_var.uniform_(0.5, 2.0)
            inputs = torch.randn(examples, 6)
            labels = torch.randint(0, 4, (examples,))
            labels[torch.rand(examples) < unlabeled] = UNLABELED
        loader = DataLoader(TensorDataset(inputs, labels), batch_size=8, shuffle=shuffle,
                            generator=generator(seed) if shuffle else None)
        optimizer = torch.optim.Adam(student.parameters(), lr=0.05)
        return (student, teacher, loader, optimizer, steps), dict(kwargs or {})
    return Case(text, make, raises)


def loop_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned losses, and the student's and the teacher's parameters and buffers after the loop."""
    student, teacher = args[0], args[1]
    return {"the returned losses": list(result) if isinstance(result, tuple) else result,
            "the student's parameters after the loop": [v.detach() for v in student.state_dict().values()],
            "the teacher's parameters and buffers after the loop": [v.detach() for v in teacher.state_dict().values()]}


def loop_public() -> list[Case]:
    return [_loop_case(0, "20 examples in batches of 8, 8 and 4, a quarter UNLABELED, in a fixed order, steps=2 "
                          "(the loop stops within the first pass)", 2),
            _loop_case(1, "the same loader, steps=5 (after the third batch a new pass starts from the first)", 5,
                       {"temperature": 2.0, "alpha": 0.5}),
            _loop_case(2, "a loader that shuffles, steps=7 (each new pass is a new epoch in a new order: replaying "
                          "the first pass's batches is wrong)", 7, shuffle=True),
            _loop_case(3, "steps=0 (must raise ValueError naming steps)", 0, raises="steps")]


def loop_hidden(seed: int) -> list[Case]:
    return [_loop_case(seed + 1, "a shuffling loader of 30 examples, steps=10", 10, {"temperature": 5.0},
                       examples=30, shuffle=True),
            _loop_case(seed + 2, "a loader of 8 examples (one batch), steps=3, alpha=0", 3, {"alpha": 0.0},
                       examples=8, shuffle=True),
            _loop_case(seed + 3, "a fixed-order loader, steps=1", 1),
            _loop_case(seed + 4, "most examples UNLABELED, a shuffling loader, steps=6, temperature=1, alpha=1", 6,
                       {"temperature": 1.0, "alpha": 1.0}, unlabeled=0.9, shuffle=True),
            _loop_case(seed + 5, "steps=-3 (must raise ValueError naming steps)", -3, raises="steps")]


# --- temperature_sweep ----------------------------------------------------------------------------

class CountingLoader(DataLoader):
    """A ``DataLoader`` that counts its passes: the calls of ``iter(loader)`` (a ``for`` loop, ``evaluate``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes = 0

    def __iter__(self):  # noqa: ANN204 - DataLoader's own iterator type
        self.passes += 1
        return super().__iter__()


def _sweep_case(seed: int, text: str, temperatures: list[float], *, alpha: float = 0.9, steps: int = 30,
                disagree: bool = True, count_test: bool = False, raises: str | None = None) -> Case:
    """A confident random 4-32-3 teacher (its last layer scaled by 20) labels 96 training points (two thirds
    UNLABELED), 60 validation points and 60 test points, whose labels are shifted by one class when ``disagree``
    (choosing on them picks another temperature); a 4-8-3 student; the training loader shuffles with PyTorch's
    global generator; Adam with lr=0.05 and ``seed`` for the sweep. With ``count_test``, the test loader is a
    :class:`CountingLoader` (its passes are observed)."""
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            teacher = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
            student = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
            x_train, x_val, x_test = torch.randn(96, 4), torch.randn(60, 4), torch.randn(60, 4)
            with torch.no_grad():
                teacher[2].weight.mul_(20.0)
                y_train, y_val, y_test = (teacher(x).argmax(1) for x in (x_train, x_val, x_test))
            y_train[torch.rand(96) < 2 / 3] = UNLABELED
        if disagree:
            y_test = (y_test + 1) % 3
        loaders = (DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True),
                   DataLoader(TensorDataset(x_val, y_val), batch_size=60),
                   (CountingLoader if count_test else DataLoader)(TensorDataset(x_test, y_test), batch_size=60))
        return (student, teacher, *loaders, list(temperatures)), {"steps": steps, "alpha": alpha, "lr": 0.05,
                                                                  "seed": seed}
    return Case(text, make, raises)


def sweep_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The chosen temperature, the validation accuracy at each temperature (keys ``"T=4"``), the chosen student's
    test accuracy, the student passed in, after the sweep, and, for a :class:`CountingLoader`, the number of passes
    over the test loader; ``{"problem": ...}`` if the result is not a tuple ``(temperature, {temperature:
    accuracy}, accuracy)``."""
    student = [v.detach() for v in args[0].state_dict().values()]
    if not isinstance(result, tuple) or len(result) != 3 or not isinstance(result[1], dict):
        return {"problem": f"{describe(result)[:160]}, not a tuple (temperature, {{temperature: validation "
                           "accuracy}, test accuracy)"}

    def key(t: Any) -> str:
        return f"T={float(t):g}" if isinstance(t, (int, float)) and not isinstance(t, bool) else repr(t)[:40]
    observed = {"the chosen temperature": result[0],
                "the validation accuracy at each temperature": {key(t): a for t, a in result[1].items()},
                "the test accuracy of the chosen student": result[2],
                "the student passed in, after the sweep (it must not change)": student}
    if isinstance(args[4], CountingLoader):
        observed["the number of passes over test_loader"] = args[4].passes
    return observed


def compare_sweep(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    if isinstance(got, dict) and "problem" in got:
        return f"returned {got['problem']}"
    return compare_values(got, expected, rtol=1e-4, atol=1e-6)


def sweep_public() -> list[Case]:
    return [_sweep_case(6, "a 4-8-3 student distilled from a confident 4-32-3 teacher on 96 points (two thirds "
                           "UNLABELED), temperatures=[1, 4, 10], steps=30, alpha=0.9, lr=0.05, seed=6; the test "
                           "labels disagree with the validation labels, so choosing on the test loader picks another "
                           "temperature", [1.0, 4.0, 10.0]),
            _sweep_case(1, "alpha=0, temperatures=[8, 2, 4]: the temperature then changes nothing, every temperature "
                           "ties, and the lowest, 2, is chosen (if each run starts from the same weights and random "
                           "state)", [8.0, 2.0, 4.0], alpha=0.0),
            _sweep_case(3, "temperatures=[1, 4, 10], a test_loader that counts its passes (calls of iter): only the "
                           "chosen student is evaluated on it, once, so 1 pass is expected (not one per temperature)",
                        [1.0, 4.0, 10.0], count_test=True),
            _sweep_case(2, "temperatures=[] (must raise ValueError naming temperatures)", [], raises="temperatures")]


def sweep_hidden(seed: int) -> list[Case]:
    return [_sweep_case(seed + 1, "a random teacher, temperatures=[1, 4, 10]", [1.0, 4.0, 10.0]),
            _sweep_case(seed + 2, "a random teacher, temperatures=[5, 2], steps=20", [5.0, 2.0], steps=20),
            _sweep_case(seed + 3, "a random teacher, one temperature [3]", [3.0], disagree=False),
            _sweep_case(seed + 4, "alpha=0, temperatures=[6, 3, 9] (ties: the lowest)", [6.0, 3.0, 9.0], alpha=0.0),
            _sweep_case(seed + 6, "a random teacher, temperatures=[2, 8], a test_loader that counts its passes "
                                  "(expected: 1, the chosen student's evaluation)", [2.0, 8.0], steps=20,
                        count_test=True),
            _sweep_case(seed + 5, "temperatures=[] (must raise ValueError naming temperatures)", [],
                        raises="temperatures")]


ASSIGNMENT = Assignment(
    name="distillation",
    title="Knowledge distillation",
    exercises=(
        Exercise("soft_targets", "course_lib.distillation:soft_targets", soft_public, soft_hidden,
                 hint="divide the logits by the temperature: the probabilities p_T(z) over the last dimension, "
                      "finite for any logits, in the dtype of the logits",
                 dtypes=True,
                 hints=("Which dimension holds the classes? The last one, whatever the number of dimensions: "
                        "dim=-1.",
                        "exp(1000) is inf in any float type, and inf / inf is nan. A softmax is unchanged when the "
                        "same number is subtracted from every logit; torch.softmax does that for you.")),
        Exercise("distillation_loss", "course_lib.distillation:distillation_loss", loss_public, loss_hidden,
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
        Exercise("hard_label_loss", "course_lib.distillation:hard_label_loss", hard_public, hard_hidden,
                 hint="alpha * the cross-entropy of the student with the teacher's decisions (every example) plus "
                      "(1 - alpha) * the cross-entropy of the labeled examples divided by the batch size",
                 observe=loss_observe, dtypes=True,
                 hints=("alpha outside [0, 1] is a ValueError naming alpha.",
                        "The teacher's decision for each example is the class of its largest logit: argmax over "
                        "the last dimension, one integer per example (a temperature would not change it).",
                        "F.cross_entropy(student_logits, decisions) averages over every example, labeled or not; "
                        "the label term is the one of distillation_loss.")),
        Exercise("distillation_step", "course_lib.distillation:distillation_step", step_public, step_hidden,
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
        Exercise("distill_steps", "course_lib.distillation.loops:distill_steps", loop_public, loop_hidden,
                 hint="exactly `steps` calls of your distillation_step on the loader's batches, a new pass over the "
                      "loader each time it runs out; returns the list of the steps' losses",
                 observe=loop_observe, relies_on=("distillation_loss", "distillation_step"),
                 hints=("steps < 1 is a ValueError naming steps.",
                        "A `for inputs, labels in loader:` pass ends when the loader runs out; the loop over steps "
                        "must then start another pass, and stop in the middle of one when the count is reached.",
                        "`for` calls iter(loader) at the start of each pass, which reshuffles a shuffling loader. "
                        "itertools.cycle(loader) does not: it stores the first pass and replays it.",
                        "Append what distillation_step returns to a list; return it once it holds `steps` losses.")),
        Exercise("temperature_sweep", "course_lib.distillation.loops:temperature_sweep", sweep_public, sweep_hidden,
                 hint="distil a fresh copy of student at each temperature, choose the temperature on the "
                      "validation loader, and evaluate only the chosen student on the test loader; returns "
                      "(temperature, {temperature: validation accuracy}, test accuracy)",
                 observe=sweep_observe, compare=compare_sweep, public_points=1.0, hidden_points=3.0,
                 relies_on=("distillation_loss", "distillation_step", "distill_steps"),
                 hints=("An empty temperatures is a ValueError naming temperatures.",
                        "Each temperature: torch.manual_seed(seed), then copy.deepcopy(student) and "
                        "torch.optim.Adam(copy.parameters(), lr=lr), then your distill_steps, then "
                        "evaluate(copy, val_loader).",
                        "Keep the best copy as you go: a higher validation accuracy wins; at equal accuracy, the "
                        "lower temperature.",
                        "The test loader is read once, by evaluate(best_copy, test_loader), after the loop: a "
                        "choice made by looking at test accuracies would tune the number you report.")),
    ),
    questions=(
        Question("transfer", "Your student with the transfer set saw the same 105 labels as the labels-only student. "
                             "Where does its extra accuracy come from, and why does an UNLABELED image get the soft "
                             "term only? Use the numbers you measured."),
        Question("temperature", "Which temperature did your sweep choose, and by how many validation images did it "
                                "beat, or tie with, the others (one validation image is 0.2%)? Would you trust that "
                                "ranking on another seed? Why is the test accuracy computed for the chosen student "
                                "only?"),
        Question("imitation", "Compare the two students' imitation of the teacher on the validation images: the KL "
                              "divergence to its soft targets and the cross-entropy to its decisions "
                              "(hard_label_loss). What does the soft term transfer that the teacher's decisions "
                              "do not?"),
    ),
)

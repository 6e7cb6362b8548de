"""The loops of exercise 1: ``distill_steps`` and the ``temperature_sweep`` that chooses $T$ on validation data."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ...compare import compare_values, describe
from ...exercise import Case, Exercise
from ...seeds import generator
from ...served import CountingLoader, ServedLoader, serve
from .losses import UNLABELED

# --- distill_steps ---------------------------------------------------------------------------------------

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
        serve(teacher, state_as=LOOP_TEACHER_STATE)  # in a sandbox the grader runs it, and observes its state
        loader = DataLoader(TensorDataset(inputs, labels), batch_size=8, shuffle=shuffle,
                            generator=generator(seed) if shuffle else None)
        optimizer = torch.optim.Adam(student.parameters(), lr=0.05)
        return (student, teacher, loader, optimizer, steps), dict(kwargs or {})
    return Case(text, make, raises)


LOOP_TEACHER_STATE = "the teacher's parameters and buffers after the loop"


def loop_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned losses, and the student's and the teacher's parameters and buffers after the loop (in a
    sandbox the grader's own teacher's replace the teacher's)."""
    student, teacher = args[0], args[1]
    return {"the returned losses": list(result) if isinstance(result, tuple) else result,
            "the student's parameters after the loop": [v.detach() for v in student.state_dict().values()],
            LOOP_TEACHER_STATE: [v.detach() for v in teacher.state_dict().values()]}


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


# --- temperature_sweep -----------------------------------------------------------------------------------

PASSES = "the number of passes over test_loader"


def _sweep_case(seed: int, text: str, temperatures: list[float], *, alpha: float = 0.9, steps: int = 30,
                disagree: bool = True, count_test: bool = False, raises: str | None = None) -> Case:
    """A confident random 4-32-3 teacher (its last layer scaled by 20) labels 96 training points (two thirds
    UNLABELED), 60 validation points and 60 test points, whose labels are shifted by one class when ``disagree``
    (choosing on them picks another temperature); a 4-8-3 student; the training loader shuffles with PyTorch's
    global generator; Adam with lr=0.05 and ``seed`` for the sweep. With ``count_test``, the test loader is a
    :class:`~course_lib.grading.authoring.served.CountingLoader` (its passes are observed, in a sandbox by the
    grader)."""
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
                   CountingLoader(TensorDataset(x_test, y_test), batch_size=60, counted_as=PASSES) if count_test
                   else DataLoader(TensorDataset(x_test, y_test), batch_size=60))
        return (student, teacher, *loaders, list(temperatures)), {"steps": steps, "alpha": alpha, "lr": 0.05,
                                                                  "seed": seed}
    return Case(text, make, raises)


def sweep_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The chosen temperature, the validation accuracy at each temperature (keys ``"T=4"``), the chosen student's
    test accuracy, the student passed in, after the sweep, and, for a counting test loader, the number of passes
    over it (in a sandbox the grader's count replaces the one reported); ``{"problem": ...}`` if the result is
    not a tuple ``(temperature, {temperature: accuracy}, accuracy)``."""
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
    if isinstance(args[4], (CountingLoader, ServedLoader)):  # in a sandbox, the grader's count replaces it
        observed[args[4].counted_as] = args[4].passes
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


EXERCISES = (
    Exercise("distill_steps", "course_lib.distillation.loops", loop_public, loop_hidden,
             hint="exactly `steps` calls of your distillation_step on the loader's batches, a new pass over the "
                  "loader each time it runs out; returns the list of the steps' losses",
             observe=loop_observe, relies_on=("distillation_loss", "distillation_step"),
             hints=("steps < 1 is a ValueError naming steps.",
                    "A `for inputs, labels in loader:` pass ends when the loader runs out; the loop over steps "
                    "must then start another pass, and stop in the middle of one when the count is reached.",
                    "`for` calls iter(loader) at the start of each pass, which reshuffles a shuffling loader. "
                    "itertools.cycle(loader) does not: it stores the first pass and replays it.",
                    "Append what distillation_step returns to a list; return it once it holds `steps` losses.")),
    Exercise("temperature_sweep", "course_lib.distillation.loops", sweep_public, sweep_hidden,
             hint="distill a fresh copy of student at each temperature, choose the temperature on the "
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
)

r"""The few-label experiment's loops: distillation for a fixed number of steps, and the temperature it is run at.

:func:`distill_steps` trains a student in place for exactly ``steps`` calls of
:func:`~course_lib.distillation.distillation_step`, starting a new pass over the loader (a new epoch, reshuffled
if the loader shuffles) whenever it runs out. Students compared at one step budget thus receive the same number
of updates whatever the size of their training set: 105 labeled images are two batches of 64, the whole
3,500-image split with its unlabeled transfer set 55. Examples labeled
:data:`~course_lib.distillation.UNLABELED` learn from the teacher alone.

:func:`temperature_sweep` distils one copy of the same untrained student per temperature $T$, each from the same
random state (so the same batches, when the loader shuffles with PyTorch's global generator), keeps the
temperature whose student is most accurate on the validation loader (ties go to the lowest $T$), and evaluates
that student alone on the test loader: $T$ is chosen on validation data and the test split is used once, for
the report.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._validation import (
    changes_model,
    check_fraction,
    check_int,
    check_loader,
    check_module,
    check_positive,
    copy_model,
    reads_model,
)
from ..training import evaluate, model_device
from . import distillation_step


@changes_model
def distill_steps(student: nn.Module, teacher: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                  steps: int, temperature: float = 4.0, alpha: float = 0.9) -> list[float]:
    """Train ``student`` in place for ``steps`` optimizer steps of :func:`distillation_step` over ``loader``.

    The batches ``(inputs, labels)`` come in the loader's order; when it runs out, a new pass over it begins (a
    shuffling loader draws a new order), until ``steps`` steps are done, so the last pass may stop mid-epoch.
    Labels may be :data:`~course_lib.distillation.UNLABELED` (soft term only); ``alpha = 0`` is plain
    cross-entropy on the labels (the teacher then only costs time). Batches are moved to the student's device.

    Returns:
        The loss of each step, computed before that step (``steps`` Python floats, in nats).
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    check_loader(loader)
    check_int(steps, "steps", 1)
    check_positive(temperature, "temperature")
    check_fraction(alpha, "alpha", meaning="the weight of the soft term")
    device = model_device(student)
    losses: list[float] = []
    while True:
        empty = True
        for inputs, labels in loader:
            empty = False
            losses.append(distillation_step(student, teacher, inputs.to(device), labels.to(device), optimizer,
                                            temperature, alpha))
            if len(losses) == steps:
                return losses
        if empty:
            raise ValueError("loader must yield at least one batch, got an empty loader")


class TemperatureChoice(NamedTuple):
    """What :func:`temperature_sweep` found: the chosen ``temperature``, the validation accuracy (a fraction in
    ``[0, 1]``) of the student distilled at each temperature tried, and the test accuracy of the chosen one."""

    temperature: float
    val_accuracy: dict[float, float]
    test_accuracy: float


@reads_model
def temperature_sweep(student: nn.Module, teacher: nn.Module, train_loader: DataLoader, val_loader: DataLoader,
                      test_loader: DataLoader, temperatures: Sequence[float], *, steps: int, alpha: float = 0.9,
                      lr: float = 1e-3, seed: int = 0) -> TemperatureChoice:
    """Distil a copy of ``student`` at each of ``temperatures``; choose $T$ on ``val_loader``, report on
    ``test_loader``.

    For each temperature, in the order given: ``torch.manual_seed(seed)``, a deep copy of ``student`` (so every
    temperature starts from the same weights; ``student`` itself never changes), ``torch.optim.Adam`` over the
    copy's parameters with learning rate ``lr``, :func:`distill_steps` for ``steps`` steps over ``train_loader``
    at that temperature and ``alpha``, then :func:`~course_lib.training.evaluate` on ``val_loader``. The chosen
    temperature has the highest validation accuracy (ties go to the lowest temperature); only its student is
    evaluated on ``test_loader``, once.

    Every temperature sees the same batches when ``train_loader`` shuffles with PyTorch's global generator (a
    ``DataLoader(..., shuffle=True)`` without a generator of its own); a loader with its own generator gives
    each temperature the next epochs' order instead.

    Returns:
        :class:`TemperatureChoice` ``(temperature, val_accuracy, test_accuracy)``, accuracies as fractions.
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    for loader, name in ((train_loader, "train_loader"), (val_loader, "val_loader"), (test_loader, "test_loader")):
        check_loader(loader, name)
    if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence):
        raise TypeError(f"temperatures must be a list of numbers, got {type(temperatures).__name__}")
    if not temperatures:
        raise ValueError("temperatures must list at least one temperature, got none")
    for temperature in temperatures:
        check_positive(temperature, "each of temperatures")
    check_int(steps, "steps", 1)
    check_positive(lr, "lr")
    check_int(seed, "seed", 0)
    val_accuracy: dict[float, float] = {}
    best, best_student = None, None
    for temperature in temperatures:
        torch.manual_seed(seed)
        candidate = copy_model(student, "student")
        optimizer = torch.optim.Adam(candidate.parameters(), lr=lr)
        distill_steps(candidate, teacher, train_loader, optimizer, steps, temperature, alpha)
        val_accuracy[temperature] = evaluate(candidate, val_loader)
        if best is None or (val_accuracy[temperature], -temperature) > (val_accuracy[best], -best):
            best, best_student = temperature, candidate
    return TemperatureChoice(best, val_accuracy, evaluate(best_student, test_loader))

"""Training and evaluation loops shared by every chapter, and the model utilities every technique uses.

``train`` takes any loss of the form ``loss_fn(model, inputs, targets) -> scalar``, so distillation
(which needs the teacher's logits for the same inputs) and quantization-aware training plug in
without a loop of their own; ``after_step`` runs after every optimizer step (gradual pruning uses it
to raise the sparsity on schedule).

``train`` is the one loop that changes its model in place. The technique verbs that train
(:func:`course_lib.distillation.distill`, :func:`course_lib.pruning.gradual_prune`,
:func:`course_lib.quantization.quantization_aware_train`, :func:`fine_tune`) work on a copy and return a
:class:`Trained`: the new model and its :class:`History`. Since the copy does not exist before the call, they
take an optimizer as a *factory*, ``optimizer=lambda params: torch.optim.SGD(params, lr=0.1)``, called with the
copy's trainable parameters; an optimizer built on other parameters is refused.

Shared model utilities: :func:`evaluating` (eval mode for a block, every module's mode restored after it) and
:func:`recalibrate_batchnorm` (fresh BatchNorm statistics for a changed network); the measurements are in
:mod:`course_lib.metrics`.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ._validation import (
    changes_model,
    check_bool,
    check_choice,
    check_int,
    check_loader,
    check_module,
    check_number,
    check_positive,
    copy_model,
    reads_model,
    verb,
)
from .data import random_shift

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run repeats exactly on the same machine."""
    check_int(seed, "seed", 0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given (a name such as ``"cpu"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``), else CUDA
    when available, else Apple MPS when available, else CPU."""
    allowed = "a device name such as 'cpu', 'cuda', 'cuda:1' or 'mps', a torch.device or None"
    if isinstance(device, torch.device):
        return device
    if device is not None:
        if not isinstance(device, str):
            raise TypeError(f"device must be {allowed}, got {device!r} ({type(device).__name__})")
        try:
            return torch.device(device)
        except RuntimeError:
            raise ValueError(f"device must be {allowed}, got {device!r}") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` flag: ``None`` means on, unless ``COURSE_LIB_PROGRESS=0`` is set."""
    if progress is None:
        return os.environ.get("COURSE_LIB_PROGRESS", "1") != "0"
    return check_bool(progress, "progress")


@reads_model
def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without parameters)."""
    first = next(check_module(model).parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@changes_model
def cross_entropy_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The default loss: mean cross-entropy of ``model(inputs)`` ``(N, K)`` against labels ``(N,)``."""
    return F.cross_entropy(model(inputs), targets)


@dataclass
class History:
    """Per-epoch mean training loss and, when a validation loader is given, validation accuracy."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Trained:
    """What a verb that trains returns: the new ``model`` (in eval mode) and its training ``history``."""

    model: nn.Module
    history: History


@reads_model
@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the ``with`` block; afterwards (even after an error) every submodule is back
    in the train/eval mode it had, which ``model.train(was_training)`` would not restore for a model whose
    submodules differ (a frozen BatchNorm in a training network)."""
    modes = {m: m.training for m in check_module(model).modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode


def _optimizer(model: nn.Module, optimizer: torch.optim.Optimizer | OptimizerFactory | None, lr: float,
               weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer :func:`train` steps: AdamW by default, ``optimizer`` itself, or what the factory builds on the
    model's trainable parameters; ValueError if it updates tensors that are not parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer is None:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    allowed = "a torch.optim.Optimizer, a factory params -> Optimizer, or None"
    if isinstance(optimizer, torch.optim.Optimizer):
        built = optimizer
    elif callable(optimizer):
        built = optimizer(params)
        if not isinstance(built, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be {allowed}, got a factory that returned {type(built).__name__}")
    else:
        raise TypeError(f"optimizer must be {allowed}, got {optimizer!r} ({type(optimizer).__name__})")
    own = {id(p) for p in model.parameters()}
    foreign = sum(id(p) not in own for group in built.param_groups for p in group["params"])
    if foreign:
        raise ValueError(f"optimizer must update parameters of the model being trained, got an optimizer over "
                         f"{foreign} other tensor(s). A verb that trains works on a copy of its argument: pass a "
                         "factory instead, optimizer=lambda params: torch.optim.SGD(params, lr=0.1)")
    return built


@changes_model
def train(model: nn.Module, loader: DataLoader, epochs: int, *, loss_fn: LossFn = cross_entropy_loss,
          lr: float = 1e-3, weight_decay: float = 0.0,
          optimizer: torch.optim.Optimizer | OptimizerFactory | None = None, schedule: str | None = "cosine",
          augment: int = 0, val_loader: DataLoader | None = None,
          after_step: Callable[[nn.Module], None] | None = None, device: str | torch.device | None = None,
          progress: bool | None = None, seed: int | None = None) -> History:
    """Train ``model`` in place for ``epochs`` passes over ``loader`` and return its :class:`History`.

    Args:
        loader: the training batches ``(inputs, targets)``; ValueError if it yields none.
        loss_fn: ``loss_fn(model, inputs, targets)``, a scalar to minimise (default cross-entropy).
        lr, weight_decay: for the default optimizer, AdamW; ignored when ``optimizer`` is given.
        optimizer: ``None`` (AdamW), an optimizer over parameters of ``model``, or a factory called with the
            model's trainable parameters, ``lambda params: torch.optim.SGD(params, lr=0.1)`` (what the verbs that
            train a copy need). ValueError if it updates tensors that are not the model's.
        schedule: ``"cosine"`` (learning rate annealed to 0 over all steps) or ``None`` (constant).
        augment: random shifts of up to this many pixels applied to each training batch (0 = off).
        val_loader: if given, the accuracy on it is recorded after every epoch.
        after_step: called with the model after every optimizer step.
        seed: if given, :func:`set_seed` is called first.
    """
    check_module(model)
    check_loader(loader)
    check_int(epochs, "epochs", 0)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, inputs, targets) -> loss, got {loss_fn!r}")
    check_positive(lr, "lr")
    check_number(weight_decay, "weight_decay", 0.0)
    check_choice(schedule, "schedule", (None, "cosine"))
    check_int(augment, "augment", 0)
    if val_loader is not None:
        check_loader(val_loader, "val_loader")
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be a function of the model or None, got {after_step!r}")
    if seed is not None:
        set_seed(seed)
    device = pick_device(device)
    model.to(device)
    optimizer = _optimizer(model, optimizer, lr, weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * len(loader)))
                 if schedule == "cosine" else None)
    history = History()
    bar = tqdm(range(epochs), desc="train", disable=not progress_enabled(progress), leave=False)
    for _ in bar:
        model.train()
        total, count = 0.0, 0
        for inputs, targets in loader:
            if augment:
                inputs = random_shift(inputs, augment)
            inputs, targets = inputs.to(device), targets.to(device)
            loss = loss_fn(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step(model)
            total += loss.item() * len(targets)
            count += len(targets)
        if count == 0:
            raise ValueError("loader must yield at least one batch, got none")
        history.loss.append(total / count)
        if val_loader is not None:
            history.val_accuracy.append(evaluate(model, val_loader, device=device))
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
    model.eval()
    return history


@verb
def fine_tune(model: nn.Module, loader: DataLoader, *, epochs: int, **train_kwargs) -> Trained:
    """Train a copy of ``model`` for ``epochs`` with :func:`train` (``train_kwargs``: ``lr``, ``weight_decay``,
    ``optimizer`` (a factory, see :func:`train`), ``augment``, ``seed``, ``device``, ...); ``model`` is left untouched.

    Whatever the model carries through :mod:`torch.nn.utils.parametrize` stays in force while it trains:
    pruning masks (pruned weights stay 0), shared weights (only the code books move), binary weights.
    ``epochs=0`` returns an untrained copy. Returns a :class:`Trained` (model in eval mode).
    """
    copied = copy_model(model)
    return Trained(copied, train(copied, loader, epochs, **train_kwargs))


@reads_model
@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, *,
            device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N, K)`` and labels ``(N,)`` of the whole ``loader``, on the CPU, computed in eval mode (the
    model's train/eval modes are restored afterwards)."""
    check_module(model)
    check_loader(loader)
    device = model_device(model) if device is None else pick_device(device)
    logits, labels = [], []
    with evaluating(model):
        for inputs, targets in loader:
            logits.append(model(inputs.to(device)).float().cpu())
            labels.append(targets)
    if not logits:
        raise ValueError("loader must yield at least one batch, got none")
    return torch.cat(logits), torch.cat(labels)


@reads_model
def evaluate(model: nn.Module, loader: DataLoader, *, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``loader``, a fraction in ``[0, 1]`` (see :func:`predict`)."""
    logits, labels = predict(model, loader, device=device)
    return (logits.argmax(1) == labels).float().mean().item()


# --- BatchNorm recalibration ------------------------------------------------------------------------------

def _running_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` (1-D, 2-D, 3-D, sync) that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@verb
def recalibrate_batchnorm(model: nn.Module, loader: Iterable, *, batches: int = 10) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are re-estimated on ``batches`` batches of ``loader``.

    In eval mode a BatchNorm normalizes channel $c$ with the running mean $\\mu_c$ and variance $\\sigma^2_c$
    collected while the network trained; pruning, low-rank factorization or binarization change the
    distribution of its input, so those statistics are no longer the network's own. Recalibration resets them,
    switches *only* the BatchNorm layers to training mode with ``momentum=None`` (PyTorch's cumulative average;
    dropout stays off, unlike ``torch.optim.swa_utils.update_bn``, which runs the whole model in train mode) and
    runs $B$ batches forward without gradients. Each layer then holds

    $$\\mu_c = \\frac1B \\sum_{b=1}^{B} \\bar x^{(b)}_c, \\qquad
    \\sigma^2_c = \\frac1B \\sum_{b=1}^{B} \\frac{n_b}{n_b - 1}\\,
    \\overline{\\big(x - \\bar x^{(b)}_c\\big)^2}^{(b)} ,$$

    the equal-weight average of each batch's mean and unbiased variance ($n_b$ values per channel in batch $b$:
    batch size times spatial positions). A network without BatchNorm has no statistics to go stale.

    Args:
        model: any module with at least one BatchNorm layer that tracks running statistics; not modified.
            Pruning masks and other parametrizations stay in force (the copy computes with them).
        loader: yields ``(inputs, targets)`` pairs (targets are ignored) or bare input tensors; use
            training images, never the split you report on.
        batches: how many batches to average, at least 1 (fewer if the loader runs out first).

    Returns:
        The copy, in eval mode, every BatchNorm's ``num_batches_tracked`` the number of batches and its
        ``momentum`` as it was. Weights, biases and the BatchNorm affine parameters are unchanged.
        ValueError if the model has no BatchNorm with running statistics or the loader yields no batch.
    """
    check_module(model)
    check_loader(loader)
    check_int(batches, "batches", 1)
    if not _running_batchnorms(model):
        raise ValueError(f"model must contain a BatchNorm layer that tracks running statistics, got a "
                         f"{type(model).__name__} with none (its evaluation depends only on its weights: "
                         "there is nothing to recalibrate)")
    copied = copy_model(model).eval()
    norms = _running_batchnorms(copied)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
        m.train()
    device = model_device(copied)
    seen = 0
    with torch.no_grad():
        for batch in loader:
            if seen == batches:
                break
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            copied(inputs.to(device))
            seen += 1
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got none")
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return copied.eval()

"""Training and evaluation loops shared by every chapter.

``train`` takes any loss of the form ``loss_fn(model, inputs, targets) -> scalar``, so distillation
(which needs the teacher's logits for the same inputs) and quantization-aware training plug in
without a loop of their own; ``after_step`` runs after every optimizer step (pruning uses it to
keep masks enforced when a model is not pruned through parametrizations).
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .data import random_shift

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run repeats exactly on the same machine."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else Apple MPS when available, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` flag: ``None`` means on, unless ``COURSE_LIB_PROGRESS=0`` is set."""
    if progress is None:
        return os.environ.get("COURSE_LIB_PROGRESS", "1") != "0"
    return progress


def cross_entropy_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The default loss: mean cross-entropy of ``model(inputs)`` ``(N, K)`` against labels ``(N,)``."""
    return F.cross_entropy(model(inputs), targets)


@dataclass
class History:
    """Per-epoch mean training loss and, when a validation loader is given, validation accuracy."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


def train(model: nn.Module, loader: DataLoader, epochs: int, *, loss_fn: LossFn = cross_entropy_loss,
          lr: float = 1e-3, weight_decay: float = 0.0, optimizer: torch.optim.Optimizer | None = None,
          schedule: str | None = "cosine", augment: int = 0, val_loader: DataLoader | None = None,
          after_step: Callable[[nn.Module], None] | None = None, device: str | torch.device | None = None,
          progress: bool | None = None, seed: int | None = None) -> History:
    """Train ``model`` in place for ``epochs`` passes over ``loader`` and return its :class:`History`.

    Args:
        loss_fn: ``loss_fn(model, inputs, targets)``, a scalar to minimise (default cross-entropy).
        lr, weight_decay: for the default optimizer, AdamW; ignored when ``optimizer`` is given.
        schedule: ``"cosine"`` (learning rate annealed to 0 over all steps) or ``None`` (constant).
        augment: random shifts of up to this many pixels applied to each training batch (0 = off).
        after_step: called with the model after every optimizer step.
        seed: if given, :func:`set_seed` is called first.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"schedule must be 'cosine' or None, got {schedule!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if seed is not None:
        set_seed(seed)
    device = pick_device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                      weight_decay=weight_decay)
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
        history.loss.append(total / max(count, 1))
        if val_loader is not None:
            history.val_accuracy.append(evaluate(model, val_loader, device=device))
        bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
    model.eval()
    return history


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N, K)`` and labels ``(N,)`` of the whole ``loader``, on the CPU, in eval mode."""
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    model.eval()
    logits, labels = [], []
    for inputs, targets in loader:
        logits.append(model(inputs.to(device)).float().cpu())
        labels.append(targets)
    return torch.cat(logits), torch.cat(labels)


def evaluate(model: nn.Module, loader: DataLoader, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``loader``, a fraction in ``[0, 1]``."""
    logits, labels = predict(model, loader, device)
    return (logits.argmax(1) == labels).float().mean().item()

"""Gradual pruning (Zhu & Gupta, 2017) and the per-layer sensitivity scan.

Zhu and Gupta raise the sparsity from $s_i$ to $s_f$ over $n$ pruning steps $\\Delta t$ training steps apart,

$$s_t = s_f + (s_i - s_f)\\left(1 - \\frac{t - t_0}{n \\Delta t}\\right)^3,
\\qquad t \\in \\{t_0, t_0 + \\Delta t, \\dots, t_0 + n \\Delta t\\},$$

pruning fast while many redundant weights remain and slowly at the end; between pruning steps the
network trains with the current masks in force, and it keeps training after the last one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..training import History, evaluate, train
from .masks import check_sparsity, magnitude_mask
from .unstructured import effective_weight, global_magnitude_prune, is_pruned, prunable_modules


def gradual_sparsity(step: int, final_sparsity: float, total_steps: int, initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta's cubic schedule: the sparsity after pruning step ``step`` of ``total_steps`` (``t_0 = 0``, ``Δt = 1``).

    ``initial_sparsity`` at step 0, ``final_sparsity`` at ``step >= total_steps``.
    """
    final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative integer, got {step!r}")
    progress = min(step, total_steps) / total_steps
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def gradual_prune(model: nn.Module, loader: DataLoader, final_sparsity: float, epochs: int, *,
                  prune_steps: int = 10, prune_fraction: float = 0.5, initial_sparsity: float = 0.0,
                  layerwise: bool = False, modules: Iterable[str] | None = None, **train_kwargs) -> History:
    """Train ``model`` for ``epochs`` while magnitude-pruning it along :func:`gradual_sparsity`; returns the History.

    With ``T = epochs * len(loader)`` optimizer steps, the model is pruned to ``initial_sparsity``
    before training, then every ``Δt = floor(prune_fraction * T / prune_steps)`` steps to the next value
    of the schedule, reaching ``final_sparsity`` after ``prune_fraction`` of the training; the rest
    fine-tunes with the final masks. Pruning uses :func:`global_magnitude_prune` (``layerwise``,
    ``modules``); ``train_kwargs`` go to :func:`course_lib.training.train` (``after_step`` is taken).
    """
    check_sparsity(final_sparsity, "final_sparsity")
    if not isinstance(prune_steps, int) or isinstance(prune_steps, bool) or prune_steps < 1:
        raise ValueError(f"prune_steps must be a positive integer, got {prune_steps!r}")
    if isinstance(prune_fraction, bool) or not isinstance(prune_fraction, (int, float)) \
            or not 0.0 < prune_fraction <= 1.0:
        raise ValueError(f"prune_fraction must be a number in (0, 1], got {prune_fraction!r}")
    if "after_step" in train_kwargs:
        raise ValueError("gradual_prune uses train's after_step itself; do not pass after_step")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    total = epochs * len(loader)
    if total < prune_steps:
        raise ValueError(f"prune_steps={prune_steps} exceeds the {total} optimizer steps of {epochs} epoch(s) "
                         f"over {len(loader)} batches; use fewer prune_steps or more epochs")
    interval = max(1, int(prune_fraction * total) // prune_steps)
    modules = None if modules is None else list(modules)
    global_magnitude_prune(model, gradual_sparsity(0, final_sparsity, prune_steps, initial_sparsity),
                           layerwise, modules)
    state = {"t": 0}

    def after_step(m: nn.Module) -> None:
        state["t"] += 1
        k, rest = divmod(state["t"], interval)
        if rest == 0 and 1 <= k <= prune_steps:
            global_magnitude_prune(m, gradual_sparsity(k, final_sparsity, prune_steps, initial_sparsity),
                                   layerwise, modules)

    return train(model, loader, epochs, after_step=after_step, **train_kwargs)


def layer_sensitivity(model: nn.Module, loader: DataLoader, sparsities: Iterable[float] = (0.5, 0.8, 0.9, 0.95, 0.99),
                      modules: Iterable[str] | None = None,
                      metric: Callable[[nn.Module, DataLoader], float] = evaluate) -> dict[str, list[float]]:
    """Sensitivity scan: ``metric`` (default accuracy) with ONE layer magnitude-pruned at a time, no fine-tuning.

    Returns layer name -> one value per entry of ``sparsities``. Each layer is pruned with
    :func:`magnitude_mask` on its own and restored afterwards, so ``model`` is left unchanged.
    Layers whose accuracy drops early need a lower sparsity (layer-wise pruning) or none at all.
    """
    sparsities = [check_sparsity(s, "sparsities entry") for s in sparsities]
    if not sparsities:
        raise ValueError("sparsities must hold at least one value")
    result: dict[str, list[float]] = {}
    for name, module in prunable_modules(model, modules).items():
        param = module.weight_orig if is_pruned(module) else module.weight
        saved = param.detach().clone()
        values = []
        for s in sparsities:
            with torch.no_grad():
                param.mul_(magnitude_mask(effective_weight(module), s))
            values.append(metric(model, loader))
            with torch.no_grad():
                param.copy_(saved)
        result[name] = values
    return result

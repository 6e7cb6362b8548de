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

from .._validation import (
    check_choice,
    check_int,
    check_loader,
    check_module,
    check_number,
    check_sparsity,
    copy_model,
    reads_model,
    select_layers,
    verb,
)
from ..training import Trained, evaluate, train
from .masks import magnitude_mask
from .unstructured import SCOPES, install_masks, masks_from_scores, trainable_weight


def gradual_sparsity(step: int, final_sparsity: float, total_steps: int, initial_sparsity: float = 0.0) -> float:
    """Zhu & Gupta's cubic schedule: the sparsity after pruning step ``step`` of ``total_steps`` (``t_0 = 0``,
    ``Δt = 1``).

    ``initial_sparsity`` at step 0, ``final_sparsity`` at ``step >= total_steps``; the schedule only rises
    (a pruned weight never comes back), so ``initial_sparsity`` must be at most ``final_sparsity``.
    """
    final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = _check_initial(initial_sparsity, final_sparsity, "final_sparsity")
    check_int(total_steps, "total_steps", 1)
    check_int(step, "step", 0)
    progress = min(step, total_steps) / total_steps
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


def _check_initial(initial_sparsity: float, final_sparsity: float, final_name: str) -> float:
    initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
    if initial_sparsity > final_sparsity:
        raise ValueError(f"initial_sparsity must be at most {final_name} ({final_sparsity:g}; the schedule only "
                         f"rises, a pruned weight never comes back), got {initial_sparsity:g}")
    return initial_sparsity


@verb
def gradual_prune(model: nn.Module, loader: DataLoader, *, sparsity: float, epochs: int, prune_steps: int = 10,
                  prune_during: float = 0.5, initial_sparsity: float = 0.0, scope: str = "global",
                  layers: Iterable[str] | None = None, **train_kwargs) -> Trained:
    """A copy of ``model`` trained for ``epochs`` while magnitude-pruned along :func:`gradual_sparsity` to ``sparsity``.

    With ``T = epochs * len(loader)`` optimizer steps, the copy is pruned to ``initial_sparsity`` (at most
    ``sparsity``) before training, then every ``Δt = floor(prune_during * T / prune_steps)`` steps to the next
    value of the schedule: ``prune_during`` is the share of the training steps, in ``(0, 1]``, over which the
    sparsity rises to ``sparsity``; the rest fine-tunes with the final masks. Each pruning step is magnitude
    pruning of the current weights (``scope`` and ``layers`` as in :func:`~course_lib.pruning.magnitude_prune`);
    ``train_kwargs`` go to :func:`course_lib.training.train` (``after_step`` is taken; ``optimizer`` is a
    factory, see there). Returns a :class:`~course_lib.training.Trained`.
    """
    check_module(model)
    check_loader(loader)
    final = check_sparsity(sparsity)
    initial = _check_initial(initial_sparsity, final, "sparsity")
    check_int(epochs, "epochs", 1)
    check_int(prune_steps, "prune_steps", 1)
    check_number(prune_during, "prune_during", 0.0, 1.0, low_open=True,
                 meaning="the share of the training steps over which the sparsity rises")
    check_choice(scope, "scope", SCOPES)
    names = list(select_layers(model, layers))
    if "after_step" in train_kwargs:
        raise ValueError("gradual_prune uses train's after_step itself; do not pass after_step")
    total = epochs * len(loader)
    if total < prune_steps:
        raise ValueError(f"prune_steps must be at most the {total} optimizer steps of {epochs} epoch(s) over "
                         f"{len(loader)} batches, got {prune_steps}; use fewer prune_steps or more epochs")
    interval = max(1, int(prune_during * total) // prune_steps)
    pruned = copy_model(model)
    found = select_layers(pruned, names)

    def prune_to(step: int) -> None:
        scores = {name: m.weight.detach() for name, m in found.items()}
        target = gradual_sparsity(step, final, prune_steps, initial)
        install_masks(found, masks_from_scores(scores, target, scope))

    prune_to(0)
    t = 0

    def after_step(_: nn.Module) -> None:
        nonlocal t
        t += 1
        k, rest = divmod(t, interval)
        if rest == 0 and 1 <= k <= prune_steps:
            prune_to(k)

    return Trained(pruned, train(pruned, loader, epochs, after_step=after_step, **train_kwargs))


@reads_model
def layer_sensitivity(model: nn.Module, loader: DataLoader, *,
                      sparsities: Iterable[float] = (0.5, 0.8, 0.9, 0.95, 0.99), layers: Iterable[str] | None = None,
                      metric: Callable[[nn.Module, DataLoader], float] = evaluate) -> dict[str, list[float]]:
    """Sensitivity scan: ``metric`` (default accuracy) with ONE layer magnitude-pruned at a time, no fine-tuning.

    Returns layer name -> one value per entry of ``sparsities`` (an iterable of fractions). Each layer is pruned
    with :func:`~course_lib.pruning.magnitude_mask` on a copy of the model, so ``model`` is left unchanged.
    Layers whose accuracy drops early need a lower sparsity (layer-wise pruning) or none at all.
    """
    check_module(model)
    check_loader(loader)
    if isinstance(sparsities, (str, bytes)) or not isinstance(sparsities, Iterable):
        raise TypeError(f"sparsities must be an iterable of sparsities such as (0.5, 0.9), got {sparsities!r} "
                        f"({type(sparsities).__name__})")
    sparsities = [check_sparsity(s, "sparsities entry") for s in sparsities]
    if not sparsities:
        raise ValueError("sparsities must hold at least one value, got none")
    if not callable(metric):
        raise TypeError(f"metric must be a function (model, loader) -> float, got {metric!r}")
    names = list(select_layers(model, layers))
    work = copy_model(model)
    result: dict[str, list[float]] = {}
    for name, module in select_layers(work, names).items():
        param = trainable_weight(module)  # masking it masks the weight the layer computes with
        saved, weight = param.detach().clone(), module.weight.detach()
        values = []
        for s in sparsities:
            with torch.no_grad():
                param.mul_(magnitude_mask(weight, s))
            values.append(metric(work, loader))
            with torch.no_grad():
                param.copy_(saved)
        result[name] = values
    return result

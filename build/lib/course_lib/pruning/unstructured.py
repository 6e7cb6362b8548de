"""Unstructured pruning of a model: masks on every Linear/Conv2d weight, kept in force while training.

Masks are installed with :mod:`torch.nn.utils.prune`'s custom-mask mechanism: the parameter becomes
``weight_orig``, the mask a buffer ``weight_mask``, and a forward pre-hook recomputes
``weight = weight_orig * weight_mask`` before every forward pass. The gradient of ``weight_orig`` is
then ``mask * dL/dweight``, zero at pruned entries, so an ordinary optimizer (:func:`course_lib.training.train`)
fine-tunes the kept weights while the pruned ones stay exactly zero: the masked update
$w \\leftarrow (w - \\eta \\nabla L) \\odot m$. :func:`make_permanent` folds the masks into plain weights.

Pruning a module that is already pruned multiplies its mask by the new one: a pruned weight never
comes back. Like every :mod:`torch.nn.utils.prune` model, a pruned model cannot be ``copy.deepcopy``-ed
right after a training step (its ``weight`` then belongs to an autograd graph); evaluate it (or run one
forward under ``torch.no_grad()``) first.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader

from ..training import LossFn, cross_entropy_loss, pick_device
from .masks import check_sparsity, global_magnitude_masks, magnitude_mask, random_mask, taylor_importance

PRUNABLE = (nn.Linear, nn.Conv2d)


def prunable_modules(model: nn.Module, modules: Iterable[str] | None = None) -> dict[str, nn.Module]:
    """The Linear and Conv2d layers of ``model`` by qualified name (all of them, or those named in ``modules``)."""
    found = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}
    if not found:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to prune")
    if modules is None:
        return found
    modules = list(modules)
    unknown = [name for name in modules if name not in found]
    if unknown or not modules:
        raise ValueError(f"modules must name prunable layers of the model ({', '.join(found)}), "
                         f"got {modules!r}")
    return {name: found[name] for name in modules}


def is_pruned(module: nn.Module) -> bool:
    """Whether ``module.weight`` carries a :mod:`torch.nn.utils.prune` mask."""
    return hasattr(module, "weight_orig") and hasattr(module, "weight_mask")


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the module computes with: ``weight_orig * weight_mask`` when pruned, else ``weight`` (detached)."""
    if is_pruned(module):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Install ``masks`` (module name -> 0/1 mask of that module's weight shape) and return ``model``.

    A module without a mask gets one through ``torch.nn.utils.prune.custom_from_mask``; a module
    already pruned has its mask multiplied by the new one (pruned weights stay pruned).
    """
    layers = prunable_modules(model, masks)
    for name, mask in masks.items():
        module = layers[name]
        if mask.shape != module.weight.shape:
            raise ValueError(f"mask for {name!r} must have the weight's shape {tuple(module.weight.shape)}, "
                             f"got {tuple(mask.shape)}")
        with torch.no_grad():
            if is_pruned(module):
                module.weight_mask.mul_(mask.to(module.weight_mask))
            else:
                prune.custom_from_mask(module, "weight", mask.to(module.weight.device, module.weight.dtype))
            module.weight = module.weight_orig * module.weight_mask  # no graph: deepcopy works
    return model


def _masks_from_scores(scores: dict[str, torch.Tensor], sparsity: float, layerwise: bool) -> dict[str, torch.Tensor]:
    if layerwise:
        return {name: magnitude_mask(s, sparsity) for name, s in scores.items()}
    return dict(zip(scores, global_magnitude_masks(list(scores.values()), sparsity)))


def global_magnitude_prune(model: nn.Module, sparsity: float, layerwise: bool = False,
                           modules: Iterable[str] | None = None) -> nn.Module:
    """Magnitude pruning of every Linear/Conv2d weight of ``model``, in place; returns ``model``.

    Args:
        sparsity: fraction in ``[0, 1]`` of the (named) weights to zero.
        layerwise: ``False`` (default): one threshold over all the weights, so that exactly
            ``round(sparsity * N)`` of their ``N`` entries are zeroed, most in the large layers;
            ``True``: each layer pruned to ``sparsity`` on its own (:func:`magnitude_mask`).
        modules: names of the layers to prune (default: all Linear and Conv2d layers).

    The masks stay in force while the model trains (see the module docstring); a layer pruned
    before keeps its zeros, which count towards ``sparsity`` since they are the smallest magnitudes.
    """
    sparsity = check_sparsity(sparsity)
    layers = prunable_modules(model, modules)
    scores = {name: effective_weight(m) for name, m in layers.items()}
    return apply_masks(model, _masks_from_scores(scores, sparsity, layerwise))


def random_prune(model: nn.Module, sparsity: float, generator: torch.Generator | None = None,
                 modules: Iterable[str] | None = None) -> nn.Module:
    """Random pruning (the article's baseline): in each layer, ``round(sparsity * numel)`` weights zeroed at random.

    The entries are drawn with :func:`random_mask` (pass a seeded ``generator`` to repeat them); the
    masks stay in force while the model trains. In place; returns ``model``.
    """
    sparsity = check_sparsity(sparsity)
    layers = prunable_modules(model, modules)
    return apply_masks(model, {name: random_mask(m.weight, sparsity, generator) for name, m in layers.items()})


def taylor_scores(model: nn.Module, loader: DataLoader, batches: int = 4, loss_fn: LossFn = cross_entropy_loss,
                  modules: Iterable[str] | None = None,
                  device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """First-order Taylor importance of every prunable weight, averaged over ``batches`` batches of ``loader``.

    For each batch $b$, $I^{(b)} = |w \\odot \\partial L_b / \\partial w|$ (:func:`taylor_importance`), with the
    model in eval mode (BatchNorm running statistics, no dropout); the score is the mean of the
    $I^{(b)}$. Already pruned weights score 0. Returns module name -> score of the weight's shape.
    """
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise ValueError(f"batches must be a positive integer, got {batches!r}")
    layers = prunable_modules(model, modules)
    device = pick_device(device)
    model.to(device)
    params = {name: (m.weight_orig if is_pruned(m) else m.weight) for name, m in layers.items()}
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()
    seen = 0
    for inputs, targets in loader:
        if seen == batches:
            break
        loss = loss_fn(model, inputs.to(device), targets.to(device))
        grads = torch.autograd.grad(loss, list(params.values()))
        for name, g in zip(params, grads):
            totals[name] += taylor_importance(params[name], g)
        seen += 1
    model.train(was_training)
    if seen == 0:
        raise ValueError("loader yielded no batch")
    return {name: t / seen for name, t in totals.items()}


def taylor_prune(model: nn.Module, sparsity: float, loader: DataLoader, batches: int = 4,
                 loss_fn: LossFn = cross_entropy_loss, layerwise: bool = False,
                 modules: Iterable[str] | None = None, device: str | torch.device | None = None) -> nn.Module:
    """Prune the weights of lowest first-order Taylor importance (:func:`taylor_scores`), in place; returns ``model``.

    ``sparsity``, ``layerwise`` and ``modules`` as in :func:`global_magnitude_prune`; ``batches``
    batches of ``loader`` estimate the gradient. The masks stay in force while the model trains.
    """
    sparsity = check_sparsity(sparsity)
    scores = taylor_scores(model, loader, batches, loss_fn, modules, device)
    return apply_masks(model, _masks_from_scores(scores, sparsity, layerwise))


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every mask into its weight (``torch.nn.utils.prune.remove``): plain parameters with zeros, no hooks.

    In place; returns ``model``. Training afterwards may make the zeros non-zero again.
    """
    for module in model.modules():
        if is_pruned(module):
            prune.remove(module, "weight")
    return model


def layer_sparsities(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros in each Linear/Conv2d weight (the effective, masked weight)."""
    return {name: int((w := effective_weight(m)).eq(0).sum()) / w.numel()
            for name, m in prunable_modules(model).items()}


def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros over all Linear/Conv2d weights of ``model`` (biases and BatchNorm excluded)."""
    weights = [effective_weight(m) for m in prunable_modules(model).values()]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)

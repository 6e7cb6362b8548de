"""Unstructured pruning of a model: masks on Linear/Conv2d weights, kept in force while training.

A mask is a :mod:`torch.nn.utils.parametrize` parametrization of the layer's weight, :class:`Mask`: the
parameter becomes ``parametrizations.weight.original`` (the full weight), the mask a 0/1 buffer, and every
read of ``layer.weight`` computes ``original * mask``. The gradient of ``original`` is then
``mask * dL/dweight``, zero at pruned entries, so an ordinary optimizer (:func:`course_lib.training.train`)
fine-tunes the kept weights while the pruned ones stay exactly zero: the masked update
$w \\leftarrow (w - \\eta \\nabla L) \\odot m$. :func:`make_permanent` folds the masks into plain weights.
The masks are the entries :mod:`torch.nn.utils.prune` picks; unlike its forward pre-hooks, a parametrization
recomputes the weight on every read, so a pruned model can be ``copy.deepcopy``-ed at any time, and
masks, binary weights and shared weights are all reparametrized the same way.

Every verb returns a new model and leaves its argument untouched. Pruning a model that is already pruned
multiplies its masks by the new ones: a pruned weight never comes back.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader

from .._validation import (
    check_choice,
    check_int,
    check_layer_mapping,
    check_loader,
    check_module,
    check_sparsity,
    check_tensor,
    copy_model,
    plain_weights,
    reads_model,
    select_layers,
    verb,
    weight_layers,
    weight_parametrization,
)
from ..training import LossFn, cross_entropy_loss, pick_device
from .masks import global_magnitude_masks, magnitude_mask, random_mask, taylor_importance

SCOPES = ("global", "layer")
Sparsity = float | Mapping[str, float]


class Mask(nn.Module):
    """Parametrization ``weight -> weight * mask`` with a fixed 0/1 ``mask`` buffer of the weight's shape."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def masks_from_scores(scores: Mapping[str, torch.Tensor], sparsity: Sparsity, scope: str) -> dict[str, torch.Tensor]:
    """0/1 masks removing the lowest ``scores`` (layer name -> non-negative scores of its weight's shape).

    ``scope="global"``: one threshold over all the scores, so exactly ``round(sparsity * N)`` of their
    ``N`` entries are removed (:func:`~course_lib.pruning.global_magnitude_masks`); ``scope="layer"``: each
    layer loses ``round(sparsity * n)`` of its ``n`` entries, ``sparsity`` being one value or one per layer.
    """
    if scope == "global":
        return dict(zip(scores, global_magnitude_masks(list(scores.values()), sparsity)))
    per_layer = sparsity if isinstance(sparsity, Mapping) else dict.fromkeys(scores, sparsity)
    return {name: magnitude_mask(s, per_layer[name]) for name, s in scores.items()}


def install_masks(layers: Mapping[str, nn.Module], masks: Mapping[str, torch.Tensor]) -> None:
    """Install ``masks`` on ``layers`` (both by layer name), in place: the building block every verb runs
    on its copy. A layer without a mask gets a :class:`Mask` parametrization; a pruned one has its mask
    multiplied by the new one."""
    for name, mask in masks.items():
        module = layers[name]
        mask = mask.detach().to(module.weight.device, module.weight.dtype)
        existing = weight_parametrization(module, Mask)
        if existing is not None:
            existing.mask.mul_(mask)
        else:
            parametrize.register_parametrization(module, "weight", Mask(mask))


def _sparsities(model: nn.Module, sparsity: Sparsity, scope: str, layers: Iterable[str] | None) -> dict[str, float]:
    """Validated ``{layer name: sparsity}`` for a pruning verb (one value for the selected layers, or a mapping)."""
    check_choice(scope, "scope", SCOPES)
    if isinstance(sparsity, Mapping):
        if scope != "layer":
            raise ValueError("sparsity is a mapping of per-layer sparsities, which needs scope='layer'; "
                             f"got scope={scope!r}")
        if layers is not None:
            raise ValueError("give the layers either as the keys of the sparsity mapping or as layers=, not both")
        mapping = check_layer_mapping(sparsity, "sparsity", model)
        return {name: check_sparsity(s, f"sparsity[{name!r}]") for name, s in mapping.items()}
    value = check_sparsity(sparsity)
    return dict.fromkeys(select_layers(model, layers), value)


def _prune_copy(model: nn.Module, scores: Callable[[dict[str, nn.Module]], dict[str, torch.Tensor]],
                sparsities: dict[str, float], scope: str) -> nn.Module:
    pruned = copy_model(model)
    layers = {name: m for name, m in weight_layers(pruned).items() if name in sparsities}
    value = sparsities if scope == "layer" else next(iter(sparsities.values()))
    install_masks(layers, masks_from_scores(scores(layers), value, scope))
    return pruned


@verb
def apply_masks(model: nn.Module, *, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with ``masks`` (layer name -> 0/1 mask of that layer's weight shape) kept in force.

    A layer already pruned has its mask multiplied by the new one (pruned weights stay pruned).
    """
    check_module(model)
    masks = check_layer_mapping(masks, "masks", model)
    found = weight_layers(model)
    for name, mask in masks.items():
        check_tensor(mask, f"masks[{name!r}]")
        if mask.shape != found[name].weight.shape:
            raise ValueError(f"masks[{name!r}] must have the weight's shape {tuple(found[name].weight.shape)}, "
                             f"got {tuple(mask.shape)}")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"masks[{name!r}] must hold only 0 and 1")
    pruned = copy_model(model)
    install_masks(weight_layers(pruned), masks)
    return pruned


@verb
def magnitude_prune(model: nn.Module, *, sparsity: Sparsity, scope: str = "global",
                    layers: Iterable[str] | None = None) -> nn.Module:
    """A copy of ``model`` with the smallest-magnitude Linear/Conv2d weights masked (Han et al., 2015).

    Args:
        sparsity: fraction in ``[0, 1]`` of the weights to remove; with ``scope="layer"`` also a mapping
            ``{layer name: sparsity}`` (the layers are then its keys).
        scope: ``"global"`` (default): one threshold over all the selected weights, so exactly
            ``round(sparsity * N)`` of their ``N`` entries go, most in the large layers; ``"layer"``: each
            layer pruned to its sparsity on its own (:func:`~course_lib.pruning.magnitude_mask`).
        layers: names of the layers to prune (default: every Linear and Conv2d layer).

    The masks stay in force while the copy trains; a layer pruned before keeps its zeros, which count
    towards ``sparsity`` since they are the smallest magnitudes.
    """
    check_module(model)
    sparsities = _sparsities(model, sparsity, scope, layers)
    return _prune_copy(model, lambda found: {n: m.weight.detach() for n, m in found.items()}, sparsities, scope)


@verb
def random_prune(model: nn.Module, *, sparsity: Sparsity, layers: Iterable[str] | None = None,
                 generator: torch.Generator | None = None) -> nn.Module:
    """A copy of ``model`` with ``round(sparsity * n)`` of each layer's ``n`` weights masked at random (the
    article's baseline), drawn with :func:`~course_lib.pruning.random_mask` (a seeded ``generator`` repeats them).
    ``sparsity`` is one fraction for the ``layers`` (default all) or a mapping ``{layer name: sparsity}``."""
    check_module(model)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    sparsities = _sparsities(model, sparsity, "layer", layers)
    pruned = copy_model(model)
    found = weight_layers(pruned)
    install_masks(found, {name: random_mask(found[name].weight, s, generator) for name, s in sparsities.items()})
    return pruned


@reads_model
def trainable_weight(module: nn.Module) -> torch.Tensor:
    """The trainable tensor behind ``module.weight`` (the parametrization's original when there is one)."""
    return module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight


@reads_model
def taylor_scores(model: nn.Module, loader: DataLoader, *, batches: int = 4, loss_fn: LossFn = cross_entropy_loss,
                  layers: Iterable[str] | None = None,
                  device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """First-order Taylor importance of every selected weight, averaged over ``batches`` batches of ``loader``.

    For each batch $b$, $I^{(b)} = |w \\odot \\partial L_b / \\partial w|$
    (:func:`~course_lib.pruning.taylor_importance`),
    on a copy of the model in eval mode (BatchNorm running statistics, no dropout); the score is the mean of
    the $I^{(b)}$. Already pruned weights score 0. Returns layer name -> score of the weight's shape (CPU).
    """
    check_module(model)
    check_loader(loader)
    check_int(batches, "batches", 1)
    names = list(select_layers(model, layers))
    device = pick_device(device)
    work = copy_model(model).to(device).eval()
    found = weight_layers(work)
    params = {name: trainable_weight(found[name]) for name in names}
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    seen = 0
    for inputs, targets in loader:
        if seen == batches:
            break
        loss = loss_fn(work, inputs.to(device), targets.to(device))
        grads = torch.autograd.grad(loss, list(params.values()))
        for name, g in zip(params, grads):
            totals[name] += taylor_importance(params[name], g)
        seen += 1
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got none")
    return {name: (t / seen).cpu() for name, t in totals.items()}


@verb
def taylor_prune(model: nn.Module, loader: DataLoader, *, sparsity: Sparsity, scope: str = "global",
                 layers: Iterable[str] | None = None, batches: int = 4, loss_fn: LossFn = cross_entropy_loss,
                 device: str | torch.device | None = None) -> nn.Module:
    """A copy of ``model`` with the weights of lowest first-order Taylor importance (:func:`taylor_scores`,
    Molchanov et al., 2017) masked; ``sparsity``, ``scope`` and ``layers`` as in :func:`magnitude_prune`,
    ``batches`` batches of ``loader`` estimate the gradient."""
    check_module(model)
    check_loader(loader)
    sparsities = _sparsities(model, sparsity, scope, layers)
    scores = taylor_scores(model, loader, batches=batches, loss_fn=loss_fn, layers=list(sparsities), device=device)
    return _prune_copy(model, lambda found: scores, sparsities, scope)


@verb
def make_permanent(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parametrized Linear/Conv2d weights (pruning masks, binary or shared weights)
    are folded into plain parameters holding the values the layers computed with.

    Like ``torch.nn.utils.prune.remove``; the copy has no weight parametrization left. Training it may make
    pruned zeros non-zero again, and shared weights diverge from their code book.
    """
    return plain_weights(copy_model(model))  # the copy's parametrized classes are its own: model stays intact


@reads_model
def layer_sparsities(model: nn.Module) -> dict[str, float]:
    """Fraction of exact zeros in each Linear/Conv2d weight (the weight the layer computes with)."""
    return {name: int((m.weight == 0).sum()) / m.weight.numel() for name, m in select_layers(model, None).items()}


@reads_model
def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros over all Linear/Conv2d weights of ``model`` (biases and BatchNorm excluded)."""
    weights = [m.weight.detach() for m in select_layers(model, None).values()]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)

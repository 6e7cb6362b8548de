"""BatchNorm recalibration: refresh the running statistics a pruned (or otherwise changed) network evaluates with.

In evaluation mode a BatchNorm layer normalizes channel $c$ with the running mean $\\mu_c$ and variance
$\\sigma^2_c$ it collected while the *dense* network trained. Pruning changes the distribution of its input
(removing weights shrinks the pre-activations' variance, and shifts their mean), so the pruned network is
normalized with statistics that are no longer its own. Recalibration re-estimates them, without gradients
and without changing any weight: reset the statistics, switch the BatchNorm layers to training mode with
``momentum=None`` (PyTorch's cumulative moving average), and run $B$ batches forward. Each layer then holds

$$\\mu_c = \\frac1B \\sum_{b=1}^{B} \\bar x^{(b)}_c, \\qquad
\\sigma^2_c = \\frac1B \\sum_{b=1}^{B} \\frac{n_b}{n_b - 1}\\,\\overline{\\big(x - \\bar x^{(b)}_c\\big)^2}^{(b)} ,$$

the equal-weight average over the batches of each batch's mean and unbiased variance ($n_b$ values per
channel in batch $b$: batch size times spatial positions). Only the BatchNorm layers switch to training
mode: dropout stays off, so the statistics are those of the network as it is evaluated (in full training
mode, as ``torch.optim.swa_utils.update_bn`` runs it, a dropout before a BatchNorm would change them).
A network without BatchNorm (LeNet-300-100) has no statistics to go stale: its evaluation does not depend
on anything but its weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._validation import check_int, check_module
from ..training import model_device


def running_batchnorms(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` (1-D, 2-D, 3-D, sync) that keep running statistics, by name."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats}


def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, *, batches: int = 10) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are re-estimated on ``batches`` batches of ``loader``.

    Args:
        model: any module with at least one BatchNorm layer that tracks running statistics; not modified.
            Pruning masks and other parametrizations stay in force (the copy computes with them).
        loader: yields ``(inputs, targets)`` pairs (targets are ignored) or bare input tensors; use
            training images, never the split you report on.
        batches: how many batches to average, at least 1 (fewer if the loader runs out first).

    Returns:
        The copy, in evaluation mode, with every BatchNorm's ``running_mean`` and ``running_var`` equal to
        the average over the batches of its input's per-channel batch mean and unbiased batch variance
        (see the module docstring), ``num_batches_tracked`` the number of batches, and its ``momentum`` as it
        was. Weights, biases and the BatchNorm affine parameters are unchanged.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``batches`` not an int.
        ValueError: ``batches`` < 1, the model has no BatchNorm with running statistics, or the loader
            yields no batch.
    """
    check_module(model)
    check_int(batches, "batches", 1)
    if not running_batchnorms(model):
        raise ValueError(f"model must contain a BatchNorm layer that tracks running statistics, got a "
                         f"{type(model).__name__} with none (its evaluation depends only on its weights: "
                         "there is nothing to recalibrate)")
    copy_ = copy.deepcopy(model).eval()
    norms = running_batchnorms(copy_)
    momenta = {name: m.momentum for name, m in norms.items()}
    for m in norms.values():
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
        m.train()
    device = model_device(copy_)
    seen = 0
    with torch.no_grad():
        for batch in loader:
            if seen == batches:
                break
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            copy_(inputs.to(device))
            seen += 1
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got an empty loader")
    for name, m in norms.items():
        m.momentum = momenta[name]
    return copy_.eval()

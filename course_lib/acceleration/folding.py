"""BatchNorm folding: an inference-time BatchNorm is an affine map, so it merges into the conv (or Linear) before it.

In eval mode a ``BatchNorm2d`` after a convolution ``z = W * x + b`` computes, per output channel ``c``,

$$ y_c = \\gamma_c \\frac{z_c - \\mu_c}{\\sqrt{\\sigma^2_c + \\epsilon}} + \\beta_c , $$

with the running mean $\\mu$ and variance $\\sigma^2$. Writing $s_c = \\gamma_c / \\sqrt{\\sigma^2_c + \\epsilon}$,
this is one convolution with

$$ W'_c = s_c W_c, \\qquad b'_c = s_c (b_c - \\mu_c) + \\beta_c , $$

exact up to float rounding, one layer (and one pass over the activations) fewer. A ``BatchNorm1d`` after a
``Linear`` layer folds the same way (a Linear layer is a 1x1 convolution). It is only valid with the
running statistics, i.e. for inference; in training mode BatchNorm normalizes with each batch's own statistics.
:func:`fold_batchnorm` folds every such pair of a model (the formula is in :func:`_folded_weights`; it gives
the weights ``torch.nn.utils.fusion.fuse_conv_bn_eval`` gives).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validation import copy_model, plain_weights, verb


def _folded_weights(weight: torch.Tensor, bias: torch.Tensor | None, running_mean: torch.Tensor,
                    running_var: torch.Tensor, bn_weight: torch.Tensor | None, bn_bias: torch.Tensor | None,
                    eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')`` with ``W' = s W`` and ``b' = s (b - mu) + beta``, ``s = gamma / sqrt(sigma^2 + eps)``.

    ``weight`` ``(C_out, C_in / groups, *kernel)``; ``bias`` ``(C_out,)`` or ``None`` (zero); the BatchNorm
    statistics ``mu``, ``sigma^2`` and affine ``gamma``, ``beta`` (``None``: 1 and 0) are ``(C_out,)`` each.
    """
    gamma = bn_weight if bn_weight is not None else torch.ones_like(running_var)
    beta = bn_bias if bn_bias is not None else torch.zeros_like(running_mean)
    b = bias if bias is not None else torch.zeros_like(running_mean)
    scale = gamma / torch.sqrt(running_var + eps)
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), (b - running_mean) * scale + beta


_FOLDABLE = ((nn.Conv2d, nn.BatchNorm2d), (nn.Linear, nn.BatchNorm1d))


def _layer_type(module: nn.Module) -> type:
    """The class of ``module``, or the class it had before :mod:`torch.nn.utils.parametrize` gave it its own."""
    return type(module).__bases__[0] if parametrize.is_parametrized(module) else type(module)


def _fold_pair(conv: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d | nn.BatchNorm1d) -> nn.Conv2d | nn.Linear:
    """A new ``Conv2d`` or ``Linear`` (with bias) computing ``bn(conv(x))`` of the eval-mode modules; a
    parametrized weight (a pruning mask...) is folded as the layer computes it, into a plain weight."""
    fused = plain_weights(copy_model(conv, "conv"))
    with torch.no_grad():
        weight, bias = _folded_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                       bn.weight, bn.bias, bn.eps)
    fused.weight, fused.bias = nn.Parameter(weight), nn.Parameter(bias)
    return fused


@verb
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode where every ``Conv2d`` directly followed by a ``BatchNorm2d`` (or ``Linear``
    followed by a ``BatchNorm1d``) with running statistics, consecutive children of one ``nn.Sequential``, absorbs
    it, and the BatchNorm becomes ``Identity``.

    ``model`` itself is not changed. The copy computes what ``model.eval()`` computes, up to float rounding;
    train it no further (its BatchNorms are gone). Convs not followed by a BatchNorm are left as they are; a
    folded layer's parametrized weight (a pruning mask, binary weights) becomes the plain weight it computed.
    Integer inference runs the folded weights, so quantization starts from them too.
    """
    fused = copy_model(model).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            pair = any(_layer_type(conv) is layer and type(bn) is norm for layer, norm in _FOLDABLE)
            if pair and bn.running_mean is not None:
                module._modules[first] = _fold_pair(conv, bn)
                module._modules[second] = nn.Identity()
    return fused

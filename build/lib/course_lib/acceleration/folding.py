"""Conv-BatchNorm folding: an inference-time BatchNorm is an affine map, so it merges into the conv before it.

In eval mode a ``BatchNorm2d`` after a convolution ``z = W * x + b`` computes, per output channel ``c``,

$$ y_c = \\gamma_c \\frac{z_c - \\mu_c}{\\sqrt{\\sigma^2_c + \\epsilon}} + \\beta_c , $$

with the running mean $\\mu$ and variance $\\sigma^2$. Writing $s_c = \\gamma_c / \\sqrt{\\sigma^2_c + \\epsilon}$,
this is one convolution with

$$ W'_c = s_c W_c, \\qquad b'_c = s_c (b_c - \\mu_c) + \\beta_c , $$

exact up to float rounding, one layer (and one pass over the activations) fewer. It is only valid with the
running statistics, i.e. for inference; in training mode BatchNorm normalises with each batch's own statistics.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def fold_conv_bn(weight: torch.Tensor, bias: torch.Tensor | None, running_mean: torch.Tensor,
                 running_var: torch.Tensor, bn_weight: torch.Tensor | None, bn_bias: torch.Tensor | None,
                 eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold BatchNorm statistics into a convolution: returns ``(W', b')`` with ``W' = s W``, ``b' = s (b - mu) + beta``.

    Args:
        weight: conv weight ``(C_out, C_in / groups, *kernel)``; ``bias``: ``(C_out,)`` or ``None`` (zero).
        running_mean, running_var: BatchNorm statistics ``mu``, ``sigma^2``, each ``(C_out,)``.
        bn_weight, bn_bias: BatchNorm affine ``gamma``, ``beta`` ``(C_out,)``, or ``None`` (1 and 0).
        eps: BatchNorm's epsilon; ``s = gamma / sqrt(sigma^2 + eps)``.
    Returns:
        ``W'`` of ``weight``'s shape and ``b'`` of shape ``(C_out,)``, new tensors (inputs are not modified).
    """
    if weight.dim() < 3:
        raise ValueError(f"weight must be a conv weight (C_out, C_in, *kernel), got shape {tuple(weight.shape)}")
    c_out = weight.shape[0]
    named = {"bias": bias, "running_mean": running_mean, "running_var": running_var,
             "bn_weight": bn_weight, "bn_bias": bn_bias}
    for name, t in named.items():
        if t is not None and t.shape != (c_out,):
            raise ValueError(f"{name} must have shape ({c_out},) to match weight's {c_out} output channels, "
                             f"got {tuple(t.shape)}")
    if running_mean is None or running_var is None:
        raise ValueError("running_mean and running_var are required (BatchNorm with track_running_stats=True)")
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    gamma = bn_weight if bn_weight is not None else torch.ones_like(running_var)
    beta = bn_bias if bn_bias is not None else torch.zeros_like(running_mean)
    b = bias if bias is not None else torch.zeros_like(running_mean)
    scale = gamma / torch.sqrt(running_var + eps)
    new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return new_weight, (b - running_mean) * scale + beta


def fold_conv_bn_modules(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` (with bias) computing ``bn(conv(x))`` of the eval-mode modules."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise ValueError(f"expected (Conv2d, BatchNorm2d), got ({type(conv).__name__}, {type(bn).__name__})")
    if bn.running_mean is None:
        raise ValueError("bn has no running statistics (track_running_stats=False): nothing to fold")
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        weight, bias = fold_conv_bn(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                    bn.weight, bn.bias, bn.eps)
        fused.weight = nn.Parameter(weight)
        fused.bias = nn.Parameter(bias)
    return fused


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode where every ``Conv2d`` directly followed by a ``BatchNorm2d``
    (consecutive children of one ``nn.Sequential``) is replaced by the folded conv and the BatchNorm by ``Identity``.

    ``model`` itself is not changed. The copy computes what ``model.eval()`` computes, up to float rounding;
    train it no further (its BatchNorms are gone). Convs not followed by a BatchNorm are left as they are.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
                module._modules[first] = fold_conv_bn_modules(conv, bn)
                module._modules[second] = nn.Identity()
    return fused

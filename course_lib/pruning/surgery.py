"""Channel surgery on a Conv-BN-Conv chain: the same computation with fewer channels, in smaller layers.

Keeping output channels $K = (k_1, \\dots, k_m)$ of a convolution $W \\in \\mathbb{R}^{C \\times C_{in} \\times k_h
\\times k_w}$ that feeds a BatchNorm and a second convolution $V \\in \\mathbb{R}^{C' \\times C \\times k_h' \\times
k_w'}$ means, for each kept channel (in the order of $K$):

- the filter $W_{k_j}$ and its bias $b_{k_j}$ (the first convolution's *output* axis, dim 0);
- the BatchNorm's four per-channel tensors $\\gamma_{k_j}, \\beta_{k_j}, \\mu_{k_j}, \\sigma^2_{k_j}$ (scale, shift,
  running mean and running variance);
- the slices $V_{:, k_j}$ of the second convolution (its *input* axis, dim 1), whose outputs and bias stay.

Everything else is copied (kernel size, stride, padding, dilation, padding mode, BatchNorm's ``eps``,
``momentum``, ``affine``, ``track_running_stats``, its batch count and train/eval mode). When the removed
channels' activations are exactly zero after BatchNorm and ReLU, the smaller chain computes exactly what the
original computed. :func:`course_lib.pruning.prune_channels` applies the same surgery to a whole CNN.
"""
from __future__ import annotations

import torch
from torch import nn


def _check_keep(keep: object, channels: int) -> torch.Tensor:
    if not isinstance(keep, torch.Tensor) or keep.is_floating_point() or keep.is_complex() or keep.dtype == torch.bool:
        raise TypeError(f"keep must be an integer tensor of channel indices, got "
                        f"{f'a tensor of dtype {keep.dtype}' if isinstance(keep, torch.Tensor) else type(keep).__name__}")
    if keep.dim() != 1 or keep.numel() == 0:
        raise ValueError(f"keep must be a non-empty 1-D tensor of channel indices, got shape {tuple(keep.shape)}")
    if bool(((keep < 0) | (keep >= channels)).any()):
        raise ValueError(f"keep must hold channel indices in [0, {channels}), got {keep.tolist()}")
    if keep.unique().numel() != keep.numel():
        raise ValueError(f"keep must hold each channel index at most once, got {keep.tolist()}")
    return keep.to(torch.int64)


def _conv_like(conv: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                     bias=conv.bias is not None, padding_mode=conv.padding_mode, device=conv.weight.device,
                     dtype=conv.weight.dtype)


def remove_channels(conv: nn.Conv2d, bn: nn.BatchNorm2d, next_conv: nn.Conv2d,
                    keep: torch.Tensor) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    """New, smaller ``(conv, bn, next_conv)`` that keep only the output channels ``keep`` of ``conv``.

    Args:
        conv: ``Conv2d(C_in, C, ...)`` with ``groups=1``; bn: ``BatchNorm2d(C)``; next_conv:
            ``Conv2d(C, C_next, ...)`` with ``groups=1``. None of them is changed.
        keep: ``(m,)`` integer tensor of distinct channel indices in ``[0, C)``; the new layers have ``m``
            channels, in this order.

    Returns:
        ``Conv2d(C_in, m)``, ``BatchNorm2d(m)`` and ``Conv2d(m, C_next)`` holding copies of the kept slices
        (see the module docstring). TypeError for layers of the wrong kind, ValueError (naming ``keep``) for
        indices that are out of range, repeated or missing, and for layers whose channel counts disagree.
    """
    for name, module, kind in (("conv", conv, nn.Conv2d), ("bn", bn, nn.BatchNorm2d), ("next_conv", next_conv, nn.Conv2d)):
        if not isinstance(module, kind):
            raise TypeError(f"{name} must be an nn.{kind.__name__}, got {type(module).__name__}")
    if conv.groups != 1 or next_conv.groups != 1:
        raise ValueError(f"conv and next_conv must have groups=1, got {conv.groups} and {next_conv.groups}")
    channels = conv.out_channels
    if bn.num_features != channels or next_conv.in_channels != channels:
        raise ValueError(f"bn must have conv's {channels} channels and next_conv must read them, got "
                         f"BatchNorm2d({bn.num_features}) and next_conv with {next_conv.in_channels} input channels")
    keep = _check_keep(keep, channels)
    small_conv = _conv_like(conv, conv.in_channels, len(keep))
    small_next = _conv_like(next_conv, len(keep), next_conv.out_channels)
    small_bn = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                              device=conv.weight.device)
    with torch.no_grad():
        small_conv.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            small_conv.bias.copy_(conv.bias[keep])
        small_next.weight.copy_(next_conv.weight[:, keep])
        if next_conv.bias is not None:
            small_next.bias.copy_(next_conv.bias)
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name) is not None:
                getattr(small_bn, name).copy_(getattr(bn, name)[keep])
        if bn.num_batches_tracked is not None:
            small_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
    return small_conv.train(conv.training), small_bn.train(bn.training), small_next.train(next_conv.training)

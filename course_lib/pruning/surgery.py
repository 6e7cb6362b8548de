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
original computed. :func:`course_lib.pruning.prune_channels` applies the same surgery (:func:`slice_conv`,
:func:`slice_batchnorm`) to a whole CNN.
"""
from __future__ import annotations

import torch
from torch import nn


def _check_keep(keep: object, channels: int) -> torch.Tensor:
    if not isinstance(keep, torch.Tensor) or keep.is_floating_point() or keep.is_complex() or keep.dtype == torch.bool:
        raise TypeError("keep must be an integer tensor of channel indices, got "
                        + (f"a tensor of dtype {keep.dtype}" if isinstance(keep, torch.Tensor)
                           else type(keep).__name__))
    if keep.dim() != 1 or keep.numel() == 0:
        raise ValueError(f"keep must be a non-empty 1-D tensor of channel indices, got shape {tuple(keep.shape)}")
    if bool(((keep < 0) | (keep >= channels)).any()):
        raise ValueError(f"keep must hold channel indices in [0, {channels}), got {keep.tolist()}")
    if keep.unique().numel() != keep.numel():
        raise ValueError(f"keep must hold each channel index at most once, got {keep.tolist()}")
    return keep.to(torch.int64)


def slice_conv(conv: nn.Conv2d, out_keep: torch.Tensor, in_keep: torch.Tensor) -> nn.Conv2d:
    """A new ``Conv2d`` holding ``conv``'s filters ``out_keep`` (dim 0), each cut to input channels ``in_keep`` (dim 1).

    Everything else is copied: kernel size, stride, padding, dilation, padding mode, device, dtype, bias
    (its ``out_keep`` entries) and train/eval mode. ``groups`` must be 1 (the caller checks).
    """
    new = nn.Conv2d(len(in_keep), len(out_keep), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode, device=conv.weight.device,
                    dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(conv.weight[out_keep][:, in_keep])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[out_keep])
    return new.train(conv.training)


def slice_batchnorm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    """A new ``BatchNorm2d`` holding entries ``keep`` of ``bn``'s scale, shift, running mean and running variance.

    ``eps``, ``momentum``, ``affine``, ``track_running_stats``, the batch count and train/eval mode are copied.
    """
    like = bn.weight if bn.affine else bn.running_mean
    new = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                         device=None if like is None else like.device, dtype=None if like is None else like.dtype)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name) is not None:
                getattr(new, name).copy_(getattr(bn, name)[keep])
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


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
    for name, module, kind in (("conv", conv, nn.Conv2d), ("bn", bn, nn.BatchNorm2d),
                               ("next_conv", next_conv, nn.Conv2d)):
        if not isinstance(module, kind):
            raise TypeError(f"{name} must be an nn.{kind.__name__}, got {type(module).__name__}")
    if conv.groups != 1 or next_conv.groups != 1:
        raise ValueError(f"conv and next_conv must have groups=1, got {conv.groups} and {next_conv.groups}")
    channels = conv.out_channels
    if bn.num_features != channels or next_conv.in_channels != channels:
        raise ValueError(f"bn must have conv's {channels} channels and next_conv must read them, got "
                         f"BatchNorm2d({bn.num_features}) and next_conv with {next_conv.in_channels} input channels")
    keep = _check_keep(keep, channels)
    return (slice_conv(conv, keep, torch.arange(conv.in_channels)), slice_batchnorm(bn, keep),
            slice_conv(next_conv, torch.arange(next_conv.out_channels), keep))

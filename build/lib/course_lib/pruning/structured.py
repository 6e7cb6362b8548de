"""Structured pruning: remove whole output channels of convolutions, for a smaller dense model.

Removing output channel $j$ of convolution $\\ell$ removes filter $W^{(\\ell)}_j$ (and its bias), entry $j$
of the BatchNorm that follows, input channel $j$ of convolution $\\ell + 1$ and, after the last
convolution, the $H' W'$ columns of the first Linear layer that read channel $j$ of the flattened
features (PyTorch flattens ``(C, H', W')`` channel-major, so channel $j$ is columns
$j H' W', \\dots, (j + 1) H' W' - 1$). The result is an ordinary, smaller network: faster with dense kernels.
Filters are ranked by their $\\ell_1$ norm (Li et al., 2017) or by any per-channel score.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from .unstructured import is_pruned, make_permanent

_ELEMENTWISE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity)
_SUPPORTED = ("models with .features = nn.Sequential of Conv2d (groups=1), BatchNorm2d, ReLU, MaxPool2d/"
              "AvgPool2d, Dropout and .classifier = nn.Sequential(Flatten, Linear, ...), such as the "
              "course's ConvNet ('teacher', 'student') and LeNet5")


def channel_l1_norms(conv_weight: torch.Tensor) -> torch.Tensor:
    """$\\ell_1$ norm of each filter, $\\lVert W_j \\rVert_1 = \\sum_{i,u,v} |W_{j,i,u,v}|$: ``(C_out, C_in, kh, kw)`` -> ``(C_out,)``."""
    if not isinstance(conv_weight, torch.Tensor) or conv_weight.dim() != 4:
        shape = tuple(conv_weight.shape) if isinstance(conv_weight, torch.Tensor) else type(conv_weight).__name__
        raise ValueError(f"conv_weight must be a 4-D tensor (C_out, C_in, kh, kw), got {shape}")
    return conv_weight.detach().abs().sum(dim=(1, 2, 3))


def channels_to_keep(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Sorted indices of the channels kept when the ``round(ratio * C)`` lowest of ``scores`` ``(C,)`` are removed."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be a number in [0, 1) (the fraction of channels to remove), got {ratio!r}")
    if scores.dim() != 1:
        raise ValueError(f"scores must have shape (C,), got {tuple(scores.shape)}")
    keep = scores.numel() - round(ratio * scores.numel())
    if keep < 1:
        raise ValueError(f"ratio={ratio} would remove all {scores.numel()} channels of a layer; use a smaller ratio")
    return torch.topk(scores, keep).indices.sort().values


def _check_architecture(model: nn.Module) -> tuple[nn.Sequential, nn.Linear]:
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    ok = isinstance(features, nn.Sequential) and isinstance(classifier, nn.Sequential) and len(classifier) >= 2 \
        and isinstance(classifier[0], nn.Flatten) and isinstance(classifier[1], nn.Linear)
    if ok:
        ok = all(isinstance(m, (nn.Conv2d, nn.BatchNorm2d) + _ELEMENTWISE) for m in features) and \
            all(m.groups == 1 for m in features if isinstance(m, nn.Conv2d)) and \
            any(isinstance(m, nn.Conv2d) for m in features)
    if not ok:
        raise ValueError(f"prune_channels does not support {type(model).__name__}; it supports {_SUPPORTED}")
    return features, classifier[1]


def _slice_conv(conv: nn.Conv2d, out_keep: torch.Tensor, in_keep: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(len(in_keep), len(out_keep), conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(conv.weight[out_keep][:, in_keep])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[out_keep])
    return new


def _slice_batchnorm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                         device=bn.weight.device if bn.affine else None)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(bn, name) is not None:
                getattr(new, name).copy_(getattr(bn, name)[keep])
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


def prune_channels(model: nn.Module, ratio: float, scores: dict[str, torch.Tensor] | None = None,
                   layers: Iterable[str] | None = None) -> nn.Module:
    """A physically smaller copy of ``model`` with ``round(ratio * C_out)`` output channels removed from each conv.

    Args:
        model: a ConvNet or LeNet5 of the course (see the error message for the exact requirements);
            not modified. Unstructured masks, if any, are folded in first.
        ratio: fraction in ``[0, 1)`` of each pruned convolution's output channels to remove.
        scores: per-channel importance ``(C_out,)`` by conv name (``"features.0"``, ...); the lowest
            are removed. Default: :func:`channel_l1_norms` of each filter.
        layers: names of the convolutions to prune (default: all).

    Returns:
        A new model of the same class: each pruned conv keeps its ``C_out - round(ratio * C_out)``
        highest-scored filters; the following BatchNorm, the next conv's input channels and the first
        Linear layer's input columns are cut to match. Its output equals the original's whenever
        the removed channels' activations were exactly zero.
    """
    _check_architecture(model)
    for module in model.modules():  # a pruned weight from the last training step cannot be deep-copied
        if is_pruned(module):
            with torch.no_grad():
                module.weight = module.weight_orig * module.weight_mask
    model = make_permanent(copy.deepcopy(model))
    features, linear = _check_architecture(model)
    convs = {f"features.{i}": i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)}
    layers = list(convs) if layers is None else list(layers)
    if not layers or any(name not in convs for name in layers):
        raise ValueError(f"layers must name convolutions of the model ({', '.join(convs)}), got {layers!r}")
    scores = scores or {}
    unknown = [name for name in scores if name not in convs]
    if unknown:
        raise ValueError(f"scores has keys {unknown} that are not convolutions of the model ({', '.join(convs)})")
    in_keep, channels = None, None
    for i, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            name = f"features.{i}"
            if in_keep is None:
                in_keep = torch.arange(module.in_channels)
            out_keep = torch.arange(module.out_channels)
            if name in layers:
                score = scores.get(name, channel_l1_norms(module.weight))
                if score.shape != (module.out_channels,):
                    raise ValueError(f"scores[{name!r}] must have shape ({module.out_channels},), "
                                     f"got {tuple(score.shape)}")
                out_keep = channels_to_keep(score.detach().cpu(), ratio)
            features[i] = _slice_conv(module, out_keep, in_keep)
            in_keep, channels = out_keep, module.out_channels
        elif isinstance(module, nn.BatchNorm2d):
            features[i] = _slice_batchnorm(module, in_keep)
    if linear.in_features % channels:
        raise ValueError(f"the first Linear layer has {linear.in_features} inputs, not a multiple of the last "
                         f"conv's {channels} channels; prune_channels supports {_SUPPORTED}")
    positions = linear.in_features // channels
    columns = (in_keep[:, None] * positions + torch.arange(positions)).reshape(-1)
    new = nn.Linear(len(columns), linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, columns])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    model.classifier[1] = new
    return model

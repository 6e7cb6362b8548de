"""Binary weights: $w \\approx \\alpha \\operatorname{sign}(w)$ with $\\alpha = \\operatorname{mean}|w|$ (Rastegari et al., 2016).

For a filter $w \\in \\mathbb{R}^n$, $\\lVert w - \\alpha b \\rVert^2$ over $b \\in \\{-1, +1\\}^n$ and
$\\alpha > 0$ is minimised by $b = \\operatorname{sign}(w)$ and $\\alpha = \\lVert w \\rVert_1 / n$
(Binary-Weight-Networks). Training goes through the sign with the straight-through estimator in its
"hard tanh" form, $\\partial \\operatorname{sign}(w) / \\partial w \\approx \\mathbb{1}[|w| \\le 1]$
(Courbariaux et al., 2016), on full-precision shadow weights.

:func:`binarize_weights` installs the binarization as a :mod:`torch.nn.utils.parametrize`
parametrization of the weights, so a model is binarized in place and trained with the ordinary
:func:`course_lib.training.train`. With ``scaled=False`` it is the article's ``torch.sign(w)`` (``alpha = 1``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def _check_weight(weight: object) -> torch.Tensor:
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point() or weight.dim() == 0:
        raise ValueError("weight must be a floating-point tensor with at least one dimension, got "
                         + (f"{weight.dtype} of shape {tuple(weight.shape)}" if isinstance(weight, torch.Tensor)
                            else type(weight).__name__))
    return weight


def binary_alpha(weight: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """The optimal scale ``mean(|w|)``: per output channel (dim 0), shaped ``(C_out, 1, ...)`` to broadcast, or one 0-d value."""
    _check_weight(weight)
    if per_channel:
        return weight.abs().mean(dim=tuple(range(1, weight.dim())), keepdim=True)
    return weight.abs().mean()


class _SignSTE(torch.autograd.Function):
    """``+1`` for ``w >= 0``, ``-1`` otherwise; backward passes the gradient where ``|w| <= 1``."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return grad_output * (w.abs() <= 1).to(grad_output.dtype)


def binarize(weight: torch.Tensor, per_channel: bool = True, scaled: bool = True) -> torch.Tensor:
    """``alpha * sign(weight)`` (``sign(0) = +1``), ``alpha = mean|w|`` per output channel or per tensor, or
    ``alpha = 1`` if not ``scaled``. Same shape as ``weight``; differentiable with the STE (and through ``alpha``)."""
    _check_weight(weight)
    signs = _SignSTE.apply(weight)
    return binary_alpha(weight, per_channel) * signs if scaled else signs


class Binarize(nn.Module):
    """Parametrization ``weight -> binarize(weight, per_channel, scaled)`` for :func:`torch.nn.utils.parametrize.register_parametrization`."""

    def __init__(self, per_channel: bool = True, scaled: bool = True) -> None:
        super().__init__()
        self.per_channel, self.scaled = per_channel, scaled

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return binarize(weight, self.per_channel, self.scaled)


def binarize_weights(model: nn.Module, per_channel: bool = True, scaled: bool = True,
                     keep_first_last: bool = True) -> nn.Module:
    """Binarize the weights of ``model``'s Conv2d and Linear layers in place (a parametrization) and return it.

    ``keep_first_last`` leaves the first and the last of those layers in full precision, as is customary
    (Rastegari et al., 2016); biases and BatchNorm parameters are never binarized. ``model.weight``
    reads give the binarized values; ``parametrize.remove_parametrizations`` makes them permanent.
    """
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if keep_first_last:
        layers = layers[1:-1]
    if not layers:
        raise ValueError("model has no Conv2d/Linear layer to binarize"
                         + (" besides its first and last (keep_first_last=True)" if keep_first_last else ""))
    for layer in layers:
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"{type(layer).__name__} layer is already parametrized; binarize an unmodified model")
        parametrize.register_parametrization(layer, "weight", Binarize(per_channel, scaled))
    return model

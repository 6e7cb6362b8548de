"""Binary weights: $w \\approx \\alpha \\operatorname{sign}(w)$ with $\\alpha = \\operatorname{mean}|w|$
(Rastegari et al., 2016).

For a filter $w \\in \\mathbb{R}^n$, $\\lVert w - \\alpha b \\rVert^2$ over $b \\in \\{-1, +1\\}^n$ and
$\\alpha > 0$ is minimised by $b = \\operatorname{sign}(w)$ and $\\alpha = \\lVert w \\rVert_1 / n$
(Binary-Weight-Networks). Training goes through the sign with the straight-through estimator in its
"hard tanh" form, $\\partial \\operatorname{sign}(w) / \\partial w \\approx \\mathbb{1}[|w| \\le 1]$
(Courbariaux et al., 2016), on full-precision shadow weights.

:func:`binarize_weights` returns a copy of a model whose chosen weights carry the binarization as a
:mod:`torch.nn.utils.parametrize` parametrization, trained with the ordinary :func:`course_lib.training.train`.
With ``scaled=False`` it is the article's ``torch.sign(w)`` (``alpha = 1``). The first and the last layer are
customarily left in full precision (Rastegari et al., 2016): pass the others as ``layers``.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validation import check_bool, check_float_tensor, check_module, copy_model, select_layers, verb


def _check_weight(weight: object) -> torch.Tensor:
    return check_float_tensor(weight, "weight", min_dim=1)


def binary_alpha(weight: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """The optimal scale ``mean(|w|)``: per output channel (dim 0), shaped ``(C_out, 1, ...)`` to broadcast, or one
    0-d value."""
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
    """Parametrization ``weight -> binarize(weight, per_channel, scaled)`` for
    :func:`torch.nn.utils.parametrize.register_parametrization`."""

    def __init__(self, per_channel: bool = True, scaled: bool = True) -> None:
        super().__init__()
        self.per_channel, self.scaled = per_channel, scaled

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return binarize(weight, self.per_channel, self.scaled)


@verb
def binarize_weights(model: nn.Module, *, layers: Iterable[str] | None = None, per_channel: bool = True,
                     scaled: bool = True) -> nn.Module:
    """A copy of ``model`` whose Conv2d/Linear weights in ``layers`` (default: all) are binarized by a parametrization.

    Biases and BatchNorm parameters are never binarized. The copy's ``layer.weight`` reads give the binarized
    values computed from full-precision shadow weights (``layer.parametrizations.weight.original``), which
    training updates through the straight-through estimator.
    """
    check_module(model)
    check_bool(per_channel, "per_channel")
    check_bool(scaled, "scaled")
    names = list(select_layers(model, layers))
    binary = copy_model(model)
    for name, layer in select_layers(binary, names).items():
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"layer {name!r} is already parametrized; binarize a model without masks or code books")
        parametrize.register_parametrization(layer, "weight", Binarize(per_channel, scaled))
    return binary

r"""Activation outliers, and the per-channel scales that move them into the weights (SmoothQuant, AWQ).

A Linear layer computes $Y = X W^\top$. For any positive per-input-channel scales $s$,

$$Y = (X \operatorname{diag}(s)^{-1})\,(W \operatorname{diag}(s))^\top,$$

so dividing channel $j$ of the input by $s_j$ and multiplying column $j$ of $W$ by $s_j$ changes nothing in
exact arithmetic, and the division can be folded into whatever produces $X$ (:func:`fold_scales`): a
LayerNorm's weight and bias, or the rows of a preceding Linear. What changes is what quantization sees.

- **SmoothQuant** (Xiao et al., 2023, *SmoothQuant: accurate and efficient post-training quantization for
  large language models*; mit-han-lab/smoothquant ``smooth.py``) migrates activation outliers into the
  weights before quantizing both: $s_j = \max|X_j|^\alpha / \max|W_{:,j}|^{1-\alpha}$ (:func:`smooth_scales`).
- **AWQ** (Lin et al., 2024, *AWQ: activation-aware weight quantization for LLM compression and
  acceleration*; mit-han-lab/llm-awq ``awq/quantize/auto_scale.py``) protects the weights of salient input
  channels (large mean $|X_j|$) from weight-only quantization: $s = \bar s_x^{\alpha}$, $\alpha$ searched on a
  grid to minimize the block's output error (:func:`awq_search_scales`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from .._validation import (
    check_float_tensor,
    check_fraction,
    check_int,
    check_module,
    check_names,
    check_number,
    copy_model,
    verb,
)
from .quantize import _check_weight, fake_group_quantize

SCALE_MIN = 1e-5  # SmoothQuant's clamp of its weight maxima and scales


class OutlierStats(NamedTuple):
    """Per-channel statistics of activations ``(tokens, C)``: see :func:`outlier_stats`."""

    absmax: torch.Tensor  # (C,) max_t |x_tj|
    kurtosis: torch.Tensor  # (C,) Pearson kurtosis (3 for a Gaussian); NaN for a constant channel
    outliers: torch.Tensor  # int64 indices of the outlier channels, ascending


def outlier_stats(activations: torch.Tensor, threshold: float = 6.0) -> OutlierStats:
    """Per-channel absolute maximum and kurtosis of ``activations`` ``(..., C)`` (leading dimensions = tokens).

    The kurtosis is Pearson's, not the excess: $\\kappa_j = m_4 / m_2^2$ with $m_k = \\frac{1}{n}\\sum_t
    (x_{tj} - \\bar x_j)^k$ over the $n$ tokens (population moments, float64): 3 for a Gaussian, 1.8 for a
    uniform, large when a few tokens dominate the channel (attention sinks, massive activations); NaN for a
    constant channel. Outlier channels: $\\max_t|x_{tj}| >$ ``threshold`` $\\times$ the median over channels
    of $\\max_t|x_{tj}|$ (the mean of the two middle values for an even number of channels): a relative form
    of LLM.int8()'s magnitude-6 rule (Dettmers et al., 2022).
    """
    x = check_float_tensor(activations, "activations", min_dim=2).detach()
    threshold = check_number(threshold, "threshold", 0.0, None, low_open=True)
    x = x.reshape(-1, x.shape[-1]).double()
    if len(x) < 2 or not torch.isfinite(x).all():
        raise ValueError(f"activations must be finite, with at least 2 tokens, got shape {tuple(x.shape)}")
    absmax = x.abs().amax(0)
    centered = x - x.mean(0)
    m2, m4 = centered.pow(2).mean(0), centered.pow(4).mean(0)
    constant = x.amax(0) == x.amin(0)  # exactly constant: m2 can be a rounding residue of the mean, not 0
    kurtosis = torch.where(constant, torch.nan, m4 / m2.pow(2))
    outliers = torch.nonzero(absmax > threshold * torch.quantile(absmax, 0.5), as_tuple=True)[0]
    dtype = activations.dtype
    return OutlierStats(absmax.to(dtype), kurtosis.to(dtype), outliers)


def _check_absmax(value: object, name: str) -> torch.Tensor:
    t = check_float_tensor(value, name, min_dim=1)
    if t.dim() != 1 or not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be a 1-d tensor of finite values >= 0, got {t.tolist()[:8]}"
                         f"{'...' if t.numel() > 8 else ''}")
    return t.detach()


def smooth_scales(act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant's scales $s_j = \\max|X_j|^\\alpha / \\max|W_{:,j}|^{1-\\alpha}$, ``(C,)``.

    ``act_absmax``: $\\max_t |X_{tj}|$ per input channel (:func:`outlier_stats`); ``weight_absmax``:
    $\\max_i |W_{ij}|$ per input column, over all the Linears that read $X$. As in the reference, the
    weight maxima and the scales are clamped to at least ``SCALE_MIN`` = 1e-5. ``alpha`` in ``[0, 1]``:
    0 leaves the activations alone and flattens the weights, 1 flattens the activations.
    """
    act, weight = _check_absmax(act_absmax, "act_absmax"), _check_absmax(weight_absmax, "weight_absmax")
    if act.shape != weight.shape:
        raise ValueError(f"weight_absmax must have the shape of act_absmax {tuple(act.shape)}, "
                         f"got {tuple(weight.shape)}")
    alpha = check_fraction(alpha, "alpha", meaning="the migration strength")
    return (act.pow(alpha) / weight.clamp(min=SCALE_MIN).pow(1 - alpha)).clamp(min=SCALE_MIN)


@verb
@torch.no_grad()
def fold_scales(model: nn.Module, *, scales: Mapping[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with each ``scales[name]`` ``(C,)`` folded in: the op ``name`` divides its output
    channels by $s$ and the Linears it feeds multiply their input columns by $s$; exact in real arithmetic.

    Where a scale folds is ``model.scale_followers()`` (:meth:`~course_lib.llm.GPT.scale_followers`):
    ``{previous op: [Linears]}``, whose keys are what the keys of ``scales`` may name. A LayerNorm previous op
    divides its weight and bias by $s$; a Linear one divides its last $C$ output rows and biases by $s$ (the $V$
    part of a fused ``qkv``, as AWQ's ``scale_fc_fc``). ``model`` is left untouched.
    """
    check_module(model)
    if not callable(getattr(model, "scale_followers", None)):
        raise TypeError(f"model must have a scale_followers() method (a course_lib.llm.GPT), got a "
                        f"{type(model).__name__}")
    followers = model.scale_followers()
    if not isinstance(scales, Mapping):
        raise TypeError(f"scales must be a mapping {{op name: (C,) tensor}}, got {scales!r:.80} "
                        f"({type(scales).__name__})")
    check_names(scales.keys(), "the keys of scales", followers, "ops a scale folds into")
    modules = dict(model.named_modules())
    for name, s in scales.items():
        s, width = _check_absmax(s, f"scales[{name!r}]"), modules[followers[name][0]].in_features
        if len(s) != width or (s <= 0).any():
            raise ValueError(f"scales[{name!r}] must hold {width} positive values, got {len(s)} values"
                             + (f" with minimum {s.min().item():g}" if len(s) else ""))
        parametrized = [n for n in (name, *followers[name]) if parametrize.is_parametrized(modules[n], "weight")]
        if parametrized:  # scaling the weight a parametrization computes would change nothing that is kept
            raise ValueError(f"model must have no parametrized weight where scales fold (fold the parametrizations "
                             f"first, e.g. with course_lib.pruning.make_permanent), got parametrized "
                             f"{', '.join(parametrized)}")
    model = copy_model(model)
    modules = dict(model.named_modules())
    for name, s in scales.items():
        previous = modules[name]
        s = s.detach().to(previous.weight)
        if isinstance(previous, nn.LayerNorm):
            previous.weight.div_(s)
        else:
            previous.weight[-len(s):].div_(s[:, None])
        if previous.bias is not None:
            previous.bias[-len(s):].div_(s)
        for follower in followers[name]:
            modules[follower].weight.mul_(s)
    return model


class ScaleSearch(NamedTuple):
    """What :func:`awq_search_scales` returns: the best ``scales`` ``(C,)``, its ``alpha``, and the grid
    ``alphas`` ``(n_grid,)`` with the output ``errors`` ``(n_grid,)`` each gave."""

    scales: torch.Tensor
    alpha: float
    alphas: torch.Tensor
    errors: torch.Tensor


@torch.no_grad()
def awq_search_scales(weight: torch.Tensor, inputs: torch.Tensor, bits: int, group_size: int | None, *,
                      forward: Callable[[torch.Tensor], torch.Tensor] | None = None, n_grid: int = 20) -> ScaleSearch:
    """AWQ's search: the per-input-channel scales that minimize the block's output error under quantization.

    For $\\alpha = k/n$, $k = 0 \\dots n-1$ (``n = n_grid``; as in llm-awq's ``_search_module_scale``, 1 is
    not on the grid), with $\\bar s_x$ = mean $|X_j|$ over the tokens of ``inputs``:

    $$s = \\max(\\bar s_x^{\\alpha}, 10^{-4}), \\quad s \\leftarrow s / \\sqrt{\\max s \\cdot \\min s}, \\qquad
    \\mathrm{err}(\\alpha) = \\mathrm{mean}\\big(f(Q(W \\operatorname{diag}(s)) \\operatorname{diag}(s)^{-1})
    - f(W)\\big)^2,$$

    $Q$ = :func:`fake_group_quantize` (``bits``, ``group_size``). The first $\\alpha$ with the smallest error
    wins. Folding the returned scales (:func:`fold_scales`) then quantizing the folded weight gives the
    winning candidate's output (up to floating-point rounding: $(x/s)\\,Q$ instead of $x\\,(Q/s)$).

    Args:
        weight: ``(out, in)``, the weights that read ``inputs`` (e.g. a fused ``qkv``).
        inputs: ``(..., in)`` calibration inputs $X$ of those weights.
        forward: $f$, the block's output as a function of the (quantized) weight, e.g. attention's output with
            ``qkv.weight`` replaced (:func:`torch.func.functional_call`); default ``inputs @ weight.T``.
        n_grid: grid points, ``>= 1``.
    """
    w = _check_weight(weight, "weight").detach()
    x = check_float_tensor(inputs, "inputs", min_dim=2).detach()
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"inputs must have {w.shape[1]} features (weight's in_features) in their last "
                         f"dimension, got shape {tuple(x.shape)}")
    n_grid = check_int(n_grid, "n_grid", 1)
    if forward is None:
        def forward(w_: torch.Tensor) -> torch.Tensor:
            return F.linear(x, w_)
    elif not callable(forward):
        raise TypeError(f"forward must be None or a callable weight -> output, got {type(forward).__name__}")
    reference = forward(w)
    s_x = x.abs().reshape(-1, x.shape[-1]).mean(0)
    alphas = torch.arange(n_grid, dtype=torch.float64) / n_grid
    errors, candidates = [], []
    for alpha in alphas.tolist():
        s = s_x.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        out = forward(fake_group_quantize(w * s, bits, group_size) / s)
        errors.append((out - reference).double().pow(2).mean().item())
        candidates.append(s)
    errors = torch.tensor(errors, dtype=torch.float64)
    best = int(torch.argmin(errors))  # the first of equal minima
    return ScaleSearch(candidates[best], alphas[best].item(), alphas, errors)

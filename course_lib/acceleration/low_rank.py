"""Low-rank factorization of Linear layers by truncated SVD (Denton et al., 2014; Jaderberg et al., 2014).

A Linear layer ``y = W x + b`` with ``W`` of shape ``(m, n)`` costs ``m n`` multiply-adds per sample. With the
SVD ``W = U \\Sigma V^T`` and the ``r`` largest singular values kept,

$$ W \\approx W_r = (U_r \\Sigma_r^{1/2}) (\\Sigma_r^{1/2} V_r^T), $$

the best rank-``r`` approximation in Frobenius and spectral norm (Eckart-Young), computed as two Linear layers
``n -> r`` (no bias) and ``r -> m`` (bias ``b``): ``r (m + n)`` multiply-adds and parameters, fewer than ``m n``
when ``r < m n / (m + n)``. The relative error is ``||W - W_r||_F^2 / ||W||_F^2 = sum_{i>r} s_i^2 / sum_i s_i^2``,
so keeping a fraction ``energy`` of ``sum s_i^2`` bounds it by ``1 - energy``.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .._validation import check_int, check_module, check_number, check_tensor, copy_model, select_layers, verb

SHARE_ROUNDING = 1e-12  # a cumulative share of sum s_i^2 this close to energy counts as reaching it


def low_rank_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``Sequential(Linear(n, rank, bias=False), Linear(rank, m))``, whose product is the rank-``rank`` SVD of
    ``linear``.

    ``rank`` must be in ``[1, min(m, n)]``; at ``rank = min(m, n)`` the pair reproduces ``linear`` up to
    float rounding. Weights are split symmetrically (``Sigma^{1/2}`` on each side), on ``linear``'s device and dtype.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    m, n = linear.out_features, linear.in_features
    check_int(rank, f"rank (for a Linear({n}, {m}))", 1, min(m, n))
    weight = linear.weight.detach()
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Linear(n, rank, bias=False, device=weight.device, dtype=weight.dtype)
    second = nn.Linear(rank, m, bias=linear.bias is not None, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        first.weight.copy_(root[:, None] * vh[:rank])
        second.weight.copy_(u[:, :rank] * root[None, :])
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """Smallest ``r`` with ``sum_{i<=r} s_i^2 >= energy * sum_i s_i^2`` (``singular_values`` sorted descending)."""
    _check_energy(energy)
    check_tensor(singular_values, "singular_values")
    if singular_values.dim() != 1 or singular_values.numel() == 0:
        raise ValueError(f"singular_values must be a non-empty 1-D tensor, got shape {tuple(singular_values.shape)}")
    power = singular_values.double() ** 2
    cumulative = power.cumsum(0) / power.sum()
    # the first position where the cumulative share reaches energy, up to float64 rounding of the sums
    target = torch.tensor([energy - SHARE_ROUNDING], dtype=torch.float64)
    return min(int(torch.searchsorted(cumulative, target)) + 1, singular_values.numel())


def _check_energy(energy: float) -> float:
    return check_number(energy, "energy", 0.0, 1.0, low_open=True, meaning="the share of sum s_i^2 to keep")


@verb
def factorize_linears(model: nn.Module, *, rank: int | None = None, energy: float | None = None,
                      layers: Iterable[str] | None = None) -> nn.Module:
    """A copy of ``model`` whose Linear layers are replaced by :func:`low_rank_linear` pairs where that saves work.

    Give exactly one of ``rank`` (the same rank for every layer, capped at ``min(m, n)``) or ``energy`` (per
    layer, the smallest rank keeping that fraction of ``sum s_i^2``, see :func:`rank_for_energy`). Of the
    ``layers`` (names of Linear layers; default all), a layer is factorized only if ``r (m + n) < m n`` (fewer
    parameters and multiply-adds); the others are kept unchanged. ``model`` itself is not modified.
    """
    check_module(model)
    if (rank is None) == (energy is None):
        raise ValueError(f"give exactly one of rank or energy, got rank={rank!r}, energy={energy!r}")
    if rank is not None:
        check_int(rank, "rank", 1)
    else:
        _check_energy(energy)
    names = list(select_layers(model, layers, kinds=(nn.Linear,)))
    new = copy_model(model)
    for name in names:
        child = new.get_submodule(name)
        m, n = child.out_features, child.in_features
        if rank is not None:
            r = min(rank, m, n)
        else:
            r = rank_for_energy(torch.linalg.svdvals(child.weight.detach().double()), energy)
        if r * (m + n) < m * n:
            new.set_submodule(name, low_rank_linear(child, r))
    return new

"""Pure mask and score functions: which entries of a weight tensor to keep.

A mask $m$ has the shape of the weight $w$, holds 0.0 (pruned) and 1.0 (kept), and the pruned
weight is $w \\odot m$. At sparsity $s$ exactly $\\operatorname{round}(s\\,n)$ of the $n$ entries are
zeroed (Python's ``round``, as :mod:`torch.nn.utils.prune` does), those with the lowest score:

- magnitude (Han et al., 2015): the score is $|w_i|$;
- first-order Taylor (Molchanov et al., 2017): $|w_i \\, \\partial L / \\partial w_i|$;
- random (the article's baseline): a uniform random score.

Ties are broken by :func:`torch.topk`, the call :mod:`torch.nn.utils.prune` makes, so the masks are
the same entries as ``l1_unstructured`` / ``random_unstructured`` / ``global_unstructured`` pick.
"""
from __future__ import annotations

import math
from numbers import Real

import torch


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """``sparsity`` as a float, or ``ValueError`` unless it is a real number in ``[0, 1]`` (not NaN, not bool)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real) or math.isnan(sparsity) \
            or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (the fraction of weights to zero), got {sparsity!r}")
    return float(sparsity)


def _check_tensor(tensor: torch.Tensor, name: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")


def _lowest_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Float mask of ``scores``' shape with 0 at the ``round(sparsity * numel)`` lowest scores."""
    mask = torch.ones_like(scores)
    k = round(sparsity * scores.numel())
    if k:
        mask.view(-1)[torch.topk(scores.reshape(-1), k=k, largest=False).indices] = 0
    return mask


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Magnitude-pruning mask: 0 at the ``round(sparsity * weight.numel())`` smallest ``|weight|``, 1 elsewhere.

    Args:
        weight: a floating tensor of any shape (a Linear ``(out, in)`` or Conv ``(out, in, kh, kw)`` weight).
        sparsity: fraction of entries to zero, in ``[0, 1]``.

    Returns:
        A mask of ``weight``'s shape, dtype and device holding 0.0 and 1.0; the same entries as
        ``torch.nn.utils.prune.l1_unstructured(module, "weight", amount=sparsity)`` zeroes.
    """
    _check_tensor(weight, "weight")
    return _lowest_mask(weight.detach().abs(), check_sparsity(sparsity))


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Masks for several tensors from ONE magnitude threshold over all of them (global pruning).

    The ``round(sparsity * N)`` smallest ``|w|`` among the ``N`` entries of all ``weights`` are zeroed,
    so each tensor ends up with its own sparsity (large redundant layers lose most). Same entries as
    ``torch.nn.utils.prune.global_unstructured(..., pruning_method=L1Unstructured, amount=sparsity)``.
    Non-negative scores (for example :func:`taylor_importance`) can be passed instead of weights.

    Returns:
        One mask per tensor, each of that tensor's shape (see :func:`magnitude_mask`).
    """
    if not isinstance(weights, (list, tuple)) or not weights:
        raise ValueError(f"weights must be a non-empty list of tensors, got {type(weights).__name__} "
                         f"{'(empty)' if isinstance(weights, (list, tuple)) else ''}".rstrip())
    for i, w in enumerate(weights):
        _check_tensor(w, f"weights[{i}]")
    sparsity = check_sparsity(sparsity)
    flat = torch.cat([w.detach().abs().reshape(-1).to(weights[0].device, torch.float32) for w in weights])
    masks = _lowest_mask(flat, sparsity).split([w.numel() for w in weights])
    return [m.view_as(w).to(w.dtype) for m, w in zip(masks, weights)]


def random_mask(weight: torch.Tensor, sparsity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random-pruning mask: exactly ``round(sparsity * numel)`` entries of ``weight``'s shape zeroed, chosen uniformly.

    With the same random state it picks the same entries as ``torch.nn.utils.prune.random_unstructured``
    (a ``torch.rand`` score per entry, the highest removed). Pass a seeded ``generator`` for a
    repeatable mask.
    """
    _check_tensor(weight, "weight")
    sparsity = check_sparsity(sparsity)
    scores = torch.rand(weight.shape, generator=generator, dtype=weight.dtype, device=weight.device)
    return _lowest_mask(-scores, sparsity)


def taylor_importance(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """First-order Taylor importance $|w \\odot \\partial L/\\partial w|$ (Molchanov et al., 2017), elementwise.

    Removing weight $i$ changes the loss by about $-w_i g_i$; its magnitude is the score. ``weight``
    and ``grad`` have the same shape; so does the result (non-negative, in loss units).
    """
    _check_tensor(weight, "weight")
    _check_tensor(grad, "grad")
    if grad.shape != weight.shape:
        raise ValueError(f"grad must have the shape of weight {tuple(weight.shape)}, got {tuple(grad.shape)}")
    return (weight.detach() * grad.detach()).abs()

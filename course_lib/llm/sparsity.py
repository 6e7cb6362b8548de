r"""Pruning scores for Linear layers of a language model, and N:M masks.

- **Magnitude**: $S_{ij} = |W_{ij}|$ (Han et al., 2015).
- **Wanda** (Sun et al., 2024, *A simple and effective pruning approach for large language models*):
  $S_{ij} = |W_{ij}| \cdot \lVert X_j \rVert_2$, the weight's magnitude times the $\ell_2$ norm of its input
  channel over the calibration tokens, so a small weight on a large-activation channel is kept. Wanda
  compares scores within each output row ("per output"), never across rows.
- **N:M sparsity** (NVIDIA's 2:4 on Ampere; Mishra et al., 2021): of every $m$ consecutive weights of a row,
  keep the $n$ with the largest scores. :func:`nm_mask` with ``m = in_features`` and ``n = in_features / 2``
  is Wanda's unstructured 50% per-output mask.
"""
from __future__ import annotations

import torch

from .._validation import check_float_tensor, check_int
from .quantize import _check_weight


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    """$|W_{ij}|$, ``(out, in)``."""
    return _check_weight(weight, "weight").detach().abs()


def wanda_scores(weight: torch.Tensor, act_norm: torch.Tensor) -> torch.Tensor:
    """Wanda's scores $|W_{ij}| \\cdot \\lVert X_j \\rVert_2$, ``(out, in)``.

    ``act_norm`` ``(in,)``: the $\\ell_2$ norm of each input channel over the calibration tokens,
    ``inputs.reshape(-1, in).norm(dim=0)``.
    """
    w = _check_weight(weight, "weight").detach()
    norm = check_float_tensor(act_norm, "act_norm").detach()
    if norm.shape != (w.shape[1],) or not torch.isfinite(norm).all() or (norm < 0).any():
        raise ValueError(f"act_norm must be a ({w.shape[1]},) tensor of finite norms >= 0 (one per input column "
                         f"of weight), got shape {tuple(norm.shape)}")
    return w.abs() * norm.to(w.dtype)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean mask ``(out, in)`` keeping the ``n`` highest ``scores`` of every ``m`` consecutive entries of a row.

    ``m`` must divide ``in``, ``0 <= n <= m``; every group keeps exactly ``n`` entries. Ties are broken by
    position: among equal scores the one with the lower column index is kept (a stable descending sort).
    """
    s = _check_weight(scores, "scores").detach()
    m = check_int(m, "m", 1)
    n = check_int(n, f"n (for m = {m})", 0, m)
    if s.shape[1] % m:
        raise ValueError(f"m must divide the number of columns of scores ({s.shape[1]}), got {m}")
    groups = s.reshape(s.shape[0], -1, m)
    order = torch.sort(groups, dim=-1, descending=True, stable=True).indices
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(-1, order[..., :n], True)
    return mask.reshape(s.shape)

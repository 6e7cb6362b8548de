r"""Weight-only quantization of Linear layers: plain rounding in groups, and GPTQ.

**Group quantization** (as in AWQ's and GPTQ's code). A weight $W$ ``(out, in)`` is cut into groups of $g$
consecutive input columns of one row ($g$ = ``in`` when ``group_size`` is None: one group per row). Each
group gets its own asymmetric ``bits``-bit grid from its range, widened to contain 0 so that 0 stays exact:

$$\ell = \min(0, \min_j w_j), \quad u = \max(0, \max_j w_j), \quad s = \max\Big(\frac{u - \ell}{2^b - 1},
\varepsilon\Big), \quad z = \mathrm{round}(-\ell / s),$$

$$q_j = \mathrm{clamp}(\mathrm{round}(w_j / s) + z,\ 0,\ 2^b - 1), \qquad \hat w_j = s\,(q_j - z),$$

``round`` half to even (:func:`torch.round`), $\varepsilon$ = float32's machine epsilon (an all-zero group),
computed in the weight's dtype. Storage, as MIT's lab counts it: $b$ bits per weight plus a 16-bit scale and
a $b$-bit zero point per group (:func:`bits_per_weight`).

**GPTQ** (Frantar et al., 2023, *GPTQ: Accurate post-training quantization for generative pre-trained
transformers*; reference code IST-DASLab/gptq ``gptq.py``, ``fasterquant``) quantizes the columns one at a
time and moves each column's rounding error onto the columns not yet quantized, the Optimal Brain Surgeon
update for the layer's proxy loss $\mathrm{tr}\big((W - Q) H (W - Q)^\top\big)$, $H = \tfrac{2}{n} X^\top X$
(:func:`input_hessian`; only $H$'s direction matters). With $U$ the upper Cholesky factor of $H^{-1}$
($H^{-1} = U^\top U$), quantizing column $i$ does

$$e = (w_{:,i} - q_{:,i}) / U_{ii}, \qquad w_{:,j} \leftarrow w_{:,j} - e\,U_{ij} \quad (j > i),$$

which equals the OBS step $\delta w = -\frac{w_i - q_i}{[H^{-1}]_{ii}} [H^{-1}]_{:,i}$ followed by removing
column $i$ from $H^{-1}$. The updates are applied lazily in blocks of ``block_size`` columns (same result).
"""
from __future__ import annotations

import torch

from .._validation import check_float_tensor, check_int, check_number

SCALE_FLOOR = torch.finfo(torch.float32).eps  # the smallest scale a group gets (an all-zero group)


def _check_weight(w: object, name: str) -> torch.Tensor:
    w = check_float_tensor(w, name)
    if w.dim() != 2 or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-d (out_features, in_features) tensor, "
                         f"got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    return w


def _check_group_size(group_size: object, in_features: int) -> int:
    """``group_size`` as an int (``in_features`` for None) after checking it divides ``in_features``."""
    if group_size is None:
        return in_features
    allowed = f"None or a positive integer dividing in_features ({in_features})"
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"group_size must be {allowed}, got {group_size!r} ({type(group_size).__name__})")
    if group_size < 1 or in_features % group_size:
        raise ValueError(f"group_size must be {allowed}, got {group_size}")
    return group_size


def _grid(groups: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point ``(..., 1)`` of each group (last dimension) of ``groups``."""
    low = groups.amin(-1, keepdim=True).clamp(max=0)
    high = groups.amax(-1, keepdim=True).clamp(min=0)
    scale = ((high - low) / (2 ** bits - 1)).clamp(min=SCALE_FLOOR)
    return scale, torch.round(-low / scale)


def _round_to_grid(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return (torch.clamp(torch.round(w / scale) + zero, 0, 2 ** bits - 1) - zero) * scale


def fake_group_quantize(w: torch.Tensor, bits: int, group_size: int | None) -> torch.Tensor:
    """Round ``w`` ``(out, in)`` to ``bits``-bit asymmetric grids, one per group of ``group_size`` consecutive
    input columns of a row (one per row when ``group_size`` is None), and return the dequantized weight
    $\\hat w$ (module docstring) in ``w``'s shape and dtype, without gradient.

    ``bits`` in ``[1, 16]``; ``group_size`` must divide ``in``.
    """
    w = _check_weight(w, "w").detach()
    bits = check_int(bits, "bits", 1, 16)
    group_size = _check_group_size(group_size, w.shape[1])
    groups = w.reshape(w.shape[0], -1, group_size)
    return _round_to_grid(groups, *_grid(groups, bits), bits).reshape(w.shape)


def bits_per_weight(bits: int, group_size: int | None, in_features: int, *, scale_bits: int = 16) -> float:
    """Storage per weight of :func:`fake_group_quantize`'s format: ``bits + (scale_bits + bits) / g``, with
    ``g = group_size`` (``in_features`` when None): each group stores a ``scale_bits``-bit scale (fp16 by
    default) and a ``bits``-bit zero point."""
    bits, in_features = check_int(bits, "bits", 1, 16), check_int(in_features, "in_features", 1)
    return bits + (check_int(scale_bits, "scale_bits", 0) + bits) / _check_group_size(group_size, in_features)


def input_hessian(inputs: torch.Tensor) -> torch.Tensor:
    """$H = \\tfrac{2}{n} X^\\top X$ ``(in, in)`` of a Linear layer's inputs $X$ ``(..., in)`` ($n$ rows once
    the leading dimensions are flattened): the Hessian of the squared output error with respect to a row."""
    x = check_float_tensor(inputs, "inputs", min_dim=2).detach()
    x = x.reshape(-1, x.shape[-1])
    return 2.0 / len(x) * x.T @ x


def gptq_quantize(weight: torch.Tensor, hessian: torch.Tensor, bits: int, group_size: int | None,
                  damp: float = 0.01, block_size: int = 128) -> torch.Tensor:
    """GPTQ: the dequantized weight ``(out, in)`` after quantizing ``weight``'s columns left to right with error
    feedback (module docstring), on the grids of :func:`fake_group_quantize`.

    Args:
        weight: ``(out, in)`` float32 or float64 weight; the computation runs in its dtype.
        hessian: ``(in, in)`` symmetric positive semi-definite $H$ (:func:`input_hessian`). As in the reference,
            a column with $H_{jj} = 0$ (an input that is always 0) is set to 0 and its $H_{jj}$ to 1, and
            ``damp`` times the mean diagonal is added to the diagonal before inverting.
        bits, group_size: as in :func:`fake_group_quantize`. Per row (None), each row's grid comes from the
            original weight; with groups, a group's grid comes from its weights as updated when its first
            column is reached. (The reference reads those weights without the pending updates of the current
            block when a group starts inside it; here they are always current, so ``block_size`` only
            changes the order of floating-point operations.)
        damp: relative damping, ``>= 0``; block_size: columns per lazy batch of updates, ``>= 1``.

    With a diagonal $H$ there is nothing to move (the off-diagonal $U_{ij}$ are 0) and the result equals
    :func:`fake_group_quantize` exactly. Act-order (quantizing columns by decreasing $H_{jj}$) is not done.
    """
    W = _check_weight(weight, "weight").detach().clone()
    if W.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"weight must be a float32 or float64 tensor (the Cholesky factorisations need one), got "
                        f"a tensor of dtype {W.dtype}")
    n_in = W.shape[1]
    H = check_float_tensor(hessian, "hessian")
    if H.shape != (n_in, n_in):
        raise ValueError(f"hessian must have shape (in_features, in_features) = ({n_in}, {n_in}), "
                         f"got {tuple(H.shape)}")
    if not torch.isfinite(H).all():
        raise ValueError("hessian must be finite, got NaN or infinite entries")
    bits = check_int(bits, "bits", 1, 16)
    group_size_ = _check_group_size(group_size, n_in)
    damp = check_number(damp, "damp", 0.0)
    block_size = check_int(block_size, "block_size", 1)
    H = H.detach().to(W.dtype).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H.diagonal().add_(damp * torch.diag(H).mean())
    try:
        Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except torch.linalg.LinAlgError:
        raise ValueError("hessian (after damping) must be positive definite; pass a larger damp") from None
    Q = torch.zeros_like(W)
    scale, zero = _grid(W, bits)  # per row; replaced at the start of each group when grouping
    for i1 in range(0, n_in, block_size):
        i2 = min(i1 + block_size, n_in)
        W1, Err1 = W[:, i1:i2].clone(), torch.zeros_like(W[:, i1:i2])
        for i in range(i2 - i1):
            col = i1 + i
            if group_size is not None and col % group_size_ == 0:
                later = W[:, i2:col + group_size_] - Err1 @ Hinv[i1:i2, i2:col + group_size_]  # pending updates
                scale, zero = _grid(torch.cat([W1[:, i:i + group_size_], later], dim=1), bits)
            q = _round_to_grid(W1[:, i:i + 1], scale, zero, bits)[:, 0]
            Q[:, col] = q
            Err1[:, i] = (W1[:, i] - q) / Hinv[col, col]
            W1[:, i:] -= Err1[:, i:i + 1] @ Hinv[col:col + 1, col:i2]
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return Q

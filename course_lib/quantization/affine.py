"""Affine (uniform) quantization: the integer map, its inverse, and fake quantization with the STE.

A ``b``-bit code lies in $[q_{\\min}, q_{\\max}]$: $[-2^{b-1}, 2^{b-1} - 1]$ signed, $[0, 2^b - 1]$
unsigned. With a scale $s > 0$ and an integer zero point $z$ (Jacob et al., 2018),

$$q = \\operatorname{clamp}\\big(\\operatorname{round}(x / s) + z,\\ q_{\\min},\\ q_{\\max}\\big),
\\qquad \\hat x = s\\,(q - z),$$

``round`` rounding half to even. Like PyTorch's kernels, :func:`quantize` multiplies by the
float32 inverse scale ``1 / s`` instead of dividing by ``s``: the two can differ by one code at
exact ties, and multiplying is what makes the codes agree with ``torch.quantize_per_tensor`` and
``torch.quantize_per_channel`` bit for bit.

:func:`fake_quantize` is $x \\mapsto \\hat x$ in floating point, with the straight-through
estimator (Bengio et al., 2013) as its gradient: $1$ where $\\operatorname{round}(x/s) + z$ falls
inside $[q_{\\min}, q_{\\max}]$, $0$ where it is clamped, as ``torch.fake_quantize_per_tensor_affine``.
"""
from __future__ import annotations

from numbers import Integral, Real

import torch

from .._validation import check_bool, check_float_tensor, check_int

Number = float | int
ScaleLike = Number | torch.Tensor


def qrange(bits: int, signed: bool = True) -> tuple[int, int]:
    """``(q_min, q_max)`` of ``bits``-bit codes: ``[-2**(bits-1), 2**(bits-1) - 1]`` signed, ``[0, 2**bits - 1]``
    unsigned."""
    bits = check_int(bits, "bits", 1, 32)
    check_bool(signed, "signed")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def _as_float_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real number or a real tensor, got a tensor of dtype {value.dtype}")
        return value.detach().to(torch.float32)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number or a real tensor, got {value!r} ({type(value).__name__})")
    return torch.tensor(float(value), dtype=torch.float32)


def compute_qparams(x_min: ScaleLike, x_max: ScaleLike, bits: int = 8, signed: bool = True,
                    symmetric: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point that map the real range ``[x_min, x_max]`` onto the ``bits``-bit codes.

    The range is first widened to contain 0 (``x_min <- min(x_min, 0)``, ``x_max <- max(x_max, 0)``).
    Asymmetric: ``s = (x_max - x_min) / (q_max - q_min)`` and ``z = q_min - round(x_min / s)``, so that
    0 is exactly representable (its code is ``z``). Symmetric (signed codes only): ``z = 0`` and
    ``s = max(|x_min|, |x_max|) / ((q_max - q_min) / 2)``. As in PyTorch's observers, ``s`` is at
    least float32's machine epsilon, so an all-zero range still gives a valid scale.

    Args:
        x_min, x_max: numbers, or tensors of one shape (e.g. ``(C,)`` for per-channel ranges).
        bits: code width in ``[1, 32]``; signed: signed or unsigned codes.

    Returns:
        ``(scale, zero_point)``: a float32 tensor and an int64 tensor of the shape of ``x_min`` (0-d
        for numbers).
    """
    q_min, q_max = qrange(bits, signed)
    check_bool(symmetric, "symmetric")
    if symmetric and not signed:
        raise ValueError("symmetric=True needs signed=True: a symmetric grid puts the zero point 0 in the middle "
                         "of the code range, which only signed codes have; use symmetric=False for unsigned codes")
    lo, hi = _as_float_tensor(x_min, "x_min"), _as_float_tensor(x_max, "x_max")
    if lo.shape != hi.shape:
        raise ValueError(f"x_min and x_max must have the same shape, got {tuple(lo.shape)} and {tuple(hi.shape)}")
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("x_min and x_max must be finite, got NaN or infinite values")
    if (lo > hi).any():
        raise ValueError(f"x_min must be <= x_max, got x_min={lo.tolist()} and x_max={hi.tolist()}")
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        scale = torch.clamp(torch.maximum(-lo, hi) / ((q_max - q_min) / 2), min=eps)
        return scale, torch.zeros(scale.shape, dtype=torch.int64)
    scale = torch.clamp((hi - lo) / float(q_max - q_min), min=eps)
    zero_point = torch.clamp(q_min - torch.round(lo / scale).to(torch.int64), q_min, q_max)
    return scale, zero_point


def _broadcast_qparams(x: torch.Tensor, scale: ScaleLike, zero_point: ScaleLike, axis: int | None,
                       q_min: int, q_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``scale``/``zero_point`` and shape them to broadcast against ``x`` (float32 scale, int64 zero point)."""
    s = _as_float_tensor(scale, "scale").to(x.device)
    if isinstance(zero_point, torch.Tensor):
        if zero_point.is_floating_point() and not torch.equal(zero_point, zero_point.round()):
            raise ValueError(f"zero_point must hold integers, got {zero_point.tolist()}")
        z = zero_point.detach().to(x.device, torch.int64)
    elif isinstance(zero_point, bool) or not isinstance(zero_point, Integral):
        raise TypeError(f"zero_point must be an integer or an integer tensor, got {zero_point!r} "
                        f"({type(zero_point).__name__})")
    else:
        z = torch.tensor(int(zero_point), dtype=torch.int64, device=x.device)
    if not (torch.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"scale must be positive and finite, got {s.tolist()}")
    if ((z < q_min) | (z > q_max)).any():
        raise ValueError(f"zero_point must lie in the code range [{q_min}, {q_max}], got {z.tolist()}")
    if axis is None:
        if s.numel() != 1 or z.numel() != 1:
            raise ValueError(f"per-tensor quantization (axis=None) needs one scale and one zero_point, got "
                             f"{s.numel()} and {z.numel()}; pass axis= for per-channel parameters")
        return s.reshape(()), z.reshape(())
    check_int(axis, f"axis (None or, for a {x.dim()}-d tensor, an integer)", -x.dim(), x.dim() - 1)
    channels = x.shape[axis]
    if s.shape != (channels,) or z.shape != (channels,):
        raise ValueError(f"per-channel quantization along axis {axis} needs scale and zero_point of shape "
                         f"({channels},), got {tuple(s.shape)} and {tuple(z.shape)}")
    shape = [1] * x.dim()
    shape[axis] = channels
    return s.reshape(shape), z.reshape(shape)


def _rounded_codes(x: torch.Tensor, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``round(x * (1/s)) + z`` before clamping, in floating point (float32, or float64 for float64 ``x``)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    inverse_scale = torch.reciprocal(s)  # float32 1/s, exactly as PyTorch's kernels compute it
    return torch.round(x.to(dtype) * inverse_scale.to(dtype)).add_(z.to(dtype))


def quantize(x: torch.Tensor, scale: ScaleLike, zero_point: ScaleLike, bits: int = 8, signed: bool = True,
             axis: int | None = None) -> torch.Tensor:
    """Integer codes ``clamp(round(x / scale) + zero_point, q_min, q_max)`` of ``x``, as ``int64``.

    Args:
        x: floating-point tensor of any shape.
        scale, zero_point: one value each (per tensor, ``axis=None``), or 1-D tensors of length
            ``x.shape[axis]`` (per channel along ``axis``).
        bits, signed: the code range, see :func:`qrange`.

    Returns:
        ``int64`` tensor of ``x``'s shape. Rounds half to even, multiplying by the float32 inverse
        scale as ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel`` do, so for 8 bits the
        codes equal their ``int_repr()``.
    """
    q_min, q_max = qrange(bits, signed)
    check_float_tensor(x, "x")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite, got NaN or infinite entries")
    s, z = _broadcast_qparams(x, scale, zero_point, axis, q_min, q_max)
    codes = _rounded_codes(x.detach(), s, z)
    return torch.clamp(codes.to(torch.float64), q_min, q_max).to(torch.int64)


def dequantize(q: torch.Tensor, scale: ScaleLike, zero_point: ScaleLike, axis: int | None = None) -> torch.Tensor:
    """Real values ``scale * (q - zero_point)`` (float32) of integer codes ``q`` (per tensor, or per channel along
    ``axis``)."""
    if not isinstance(q, torch.Tensor) or q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError("q must be an integer tensor of codes, got "
                        + (f"a tensor of dtype {q.dtype}" if isinstance(q, torch.Tensor) else type(q).__name__))
    s, z = _broadcast_qparams(q, scale, zero_point, axis, -(2 ** 63), 2 ** 63 - 1)
    return (q.to(torch.int64) - z).to(torch.float32) * s


class _FakeQuantizeSTE(torch.autograd.Function):
    """Forward: ``s * (clamp(round(x/s) + z) - z)``; backward: the gradient where ``round(x/s) + z`` is in range,
    else 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, s: torch.Tensor, z: torch.Tensor, q_min: int, q_max: int) -> torch.Tensor:
        codes = _rounded_codes(x, s, z)
        clamped = torch.clamp(codes, q_min, q_max)
        ctx.save_for_backward(clamped == codes)  # inside the range: the STE's mask
        return clamped.sub_(z.to(codes.dtype)).mul_(s.to(codes.dtype)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad_output * inside, None, None, None, None


def fake_quantize(x: torch.Tensor, scale: ScaleLike, zero_point: ScaleLike, bits: int = 8, signed: bool = True,
                  axis: int | None = None) -> torch.Tensor:
    """Quantize then dequantize, ``scale * (quantize(x) - zero_point)``, in ``x``'s dtype and shape.

    Differentiable with the straight-through estimator: ``d out / d x`` is 1 where
    ``round(x / scale) + zero_point`` lies in ``[q_min, q_max]`` and 0 where it is clamped, exactly as
    ``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine``. No
    gradient flows to ``scale`` or ``zero_point``. Arguments as in :func:`quantize`.
    """
    q_min, q_max = qrange(bits, signed)
    check_float_tensor(x, "x")
    s, z = _broadcast_qparams(x, scale, zero_point, axis, q_min, q_max)
    return _FakeQuantizeSTE.apply(x, s, z, q_min, q_max)

"""Integer-only inference of a linear layer: int8 inputs and weights, int32 accumulation, requantized int8 output.

With affine int8 activations $x = s_x (q_x - z_x)$, symmetric int8 weights $W_{o,:} = s_{w,o}\\, q_{W,o,:}$
(one scale per output feature, zero point 0) and output codes $y = s_y (q_y - z_y)$, the float layer
$y = x W^\\top + b$ becomes (Jacob et al., 2018, section 2)

$$a_{n,o} = \\sum_i (q_{x,n,i} - z_x)\\, q_{W,o,i} + q_{b,o}, \\qquad
q_{b,o} = \\operatorname{round}\\!\\Big(\\frac{b_o}{s_x s_{w,o}}\\Big),$$

$$q_{y,n,o} = \\operatorname{clamp}\\big(\\operatorname{round}(M_o\\, a_{n,o}) + z_y,\\ -128,\\ 127\\big), \\qquad
M_o = \\frac{s_x s_{w,o}}{s_y}.$$

The products and the sum $a$ are exact integers in int32 (each product is at most $255 \\cdot 128 < 2^{15}$ in
magnitude, so up to $2^{16}$ inputs fit); only the requantization multiplies by the real
number $M_o$, which integer hardware stores as a fixed-point multiplier and a shift. Here it is applied in
float64 with rounding half to even, as ``torch.round``. The dequantized output $s_y (q_y - z_y)$ is then
the float layer's output on the dequantized inputs, rounded to the output grid (and clipped to its range).
The int8 kernels of x86 CPUs without VNNI add the products in pairs in 16 bits, which saturate:
:mod:`course_lib.quantization.kernels` says which kernel runs and computes what those give.
"""
from __future__ import annotations

import torch

from .._validation import check_int, check_positive


def _check_int8(value: object, name: str, dim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.int8:
        given = f"a tensor of dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise TypeError(f"{name} must be an int8 tensor of codes, got {given}")
    if value.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions, got shape {tuple(value.shape)}")
    return value


def _per_output(value: object, name: str, features: int) -> torch.Tensor:
    """``value`` (a number or a ``(features,)`` tensor) as a float64 ``(features,)`` tensor of positive scales."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool or value.shape not in ((), (features,)):
            raise ValueError(f"{name} must be a positive number or a tensor of shape ({features},), got "
                             f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}")
        scales = value.detach().to(torch.float64).expand(features)
        if not (torch.isfinite(scales).all() and (scales > 0).all()):
            raise ValueError(f"{name} must hold positive finite scales, got {value.tolist()}")
        return scales
    return torch.full((features,), check_positive(value, name), dtype=torch.float64)


def _check_codes(x_q: object, w_q: object) -> tuple[int, int]:
    """``(out_features, in_features)`` of int8 codes ``x_q`` ``(N, in_features)`` and ``w_q``
    ``(out_features, in_features)``; TypeError naming the one that is not an int8 tensor, ValueError naming ``x_q``
    if its number of features is not ``w_q``'s ``in_features``."""
    _check_int8(x_q, "x_q", 2)
    _check_int8(w_q, "w_q", 2)
    out_features, in_features = w_q.shape
    if x_q.shape[1] != in_features:
        raise ValueError(f"x_q must have w_q's {in_features} input features in its last dimension, got shape "
                         f"{tuple(x_q.shape)}")
    return out_features, in_features


def requantize(accumulator: torch.Tensor, x_scale: float, w_scale: float | torch.Tensor, bias: torch.Tensor | None,
               y_scale: float, y_zero_point: int) -> torch.Tensor:
    """The int8 output codes of an ``(N, out_features)`` int32 or int64 ``accumulator`` $a$:
    $q_y = \\operatorname{clamp}(\\operatorname{round}(M_o (a_{n,o} + q_{b,o})) + z_y,\\ -128,\\ 127)$, with $q_b$ and
    $M_o$ as in the module docstring ($a$ here is the sum of products, without $q_b$).

    The bias codes are added in the accumulator's dtype (int32 as in integer hardware), the multiplier is applied in
    float64 and rounded half to even. TypeError if ``accumulator`` is not an int32 or int64 tensor, ValueError if
    it is not 2-D; the other arguments are checked as by :func:`quantized_linear`.
    """
    if not isinstance(accumulator, torch.Tensor) or accumulator.dtype not in (torch.int32, torch.int64):
        given = f"a tensor of dtype {accumulator.dtype}" if isinstance(accumulator, torch.Tensor) \
            else type(accumulator).__name__
        raise TypeError(f"accumulator must be an int32 or int64 tensor, got {given}")
    if accumulator.dim() != 2:
        raise ValueError(f"accumulator must have 2 dimensions (N, out_features), got shape {tuple(accumulator.shape)}")
    out_features = accumulator.shape[1]
    y_zero_point = check_int(y_zero_point, "y_zero_point", -128, 127)
    input_scale = check_positive(x_scale, "x_scale")
    weight_scale = _per_output(w_scale, "w_scale", out_features)
    output_scale = check_positive(y_scale, "y_scale")
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or bias.shape != (out_features,):
            raise ValueError(f"bias must be None or a tensor of shape ({out_features},), got "
                             f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__}")
        bias_codes = torch.round(bias.detach().to(torch.float64) / (input_scale * weight_scale))
        accumulator = accumulator + bias_codes.to(accumulator.dtype)
    multiplier = input_scale * weight_scale / output_scale
    codes = torch.round(accumulator.to(torch.float64) * multiplier) + y_zero_point
    return codes.clamp(-128, 127).to(torch.int8)


def quantized_linear(x_q: torch.Tensor, x_scale: float, x_zero_point: int, w_q: torch.Tensor,
                     w_scale: float | torch.Tensor, bias: torch.Tensor | None, y_scale: float,
                     y_zero_point: int) -> torch.Tensor:
    """The int8 codes of ``x @ W.T + b`` computed from int8 codes with int32 accumulation (see the module docstring).

    Args:
        x_q: ``(N, in_features)`` int8 input codes, with ``x_scale > 0`` and ``x_zero_point`` in ``[-128, 127]``.
        w_q: ``(out_features, in_features)`` int8 weight codes (zero point 0), with ``w_scale``: one positive
            number, or ``(out_features,)`` positive scales (per output feature).
        bias: ``(out_features,)`` float bias, or ``None``; it is quantized to int32 with scale ``x_scale * w_scale``.
        y_scale, y_zero_point: the output's quantization parameters.

    Returns:
        ``(N, out_features)`` int8 output codes. TypeError (naming it) if ``x_q`` or ``w_q`` is not an int8
        tensor; ValueError naming ``x_q`` if its number of features is not ``w_q``'s ``in_features``.
    """
    _check_codes(x_q, w_q)
    x_zero_point = check_int(x_zero_point, "x_zero_point", -128, 127)
    accumulator = (x_q.to(torch.int32) - x_zero_point) @ w_q.to(torch.int32).t()
    return requantize(accumulator, x_scale, w_scale, bias, y_scale, y_zero_point)

"""Integer-only inference in exercise 3: ``quantized_linear``."""
from __future__ import annotations

from typing import Any

import torch

from ...compare import compare_values, describe
from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- quantized_linear ------------------------------------------------------------------------------------

def _int8(values: Any) -> torch.Tensor:
    return torch.as_tensor(values).to(torch.int8)


def _linear_case(text: str, x_q: torch.Tensor, x_scale: float, x_zero_point: int, w_q: torch.Tensor, w_scale: Any,
                 bias: torch.Tensor | None, y_scale: float, y_zero_point: int, raises: str | None = None) -> Case:
    return fixed_case(text, (x_q, x_scale, x_zero_point, w_q, w_scale, bias, y_scale, y_zero_point), raises=raises)


def _random_linear(g: torch.Generator, n: int, inputs: int, outputs: int, spread: float = 1.0) -> tuple:
    """Codes of a float linear layer quantized the usual way: x affine per tensor, W symmetric per output row,
    y's range from the float output (times ``spread``: below 1 the output codes clamp)."""
    x = torch.rand(n, inputs, generator=g) * 3 - 0.5
    w = torch.randn(outputs, inputs, generator=g) * 0.2
    b = torch.randn(outputs, generator=g) * 0.1
    x_scale = float(x.max() - x.min()) / 255
    x_zero_point = int(-128 - round(float(x.min()) / x_scale))
    w_scale = w.abs().amax(1) / 127.5
    x_q = torch.clamp(torch.round(x / x_scale) + x_zero_point, -128, 127).to(torch.int8)
    w_q = torch.clamp(torch.round(w / w_scale[:, None]), -128, 127).to(torch.int8)
    y = x @ w.t() + b
    y_scale = spread * float(y.max() - y.min()) / 255
    y_zero_point = int(max(-128, min(127, -128 - round(float(y.min()) * spread / y_scale))))
    return x_q, x_scale, x_zero_point, w_q, w_scale, b, y_scale, y_zero_point


def linear_public() -> list[Case]:
    x = _int8([[10, -20, 5], [127, -128, 0]])
    w = _int8([[20, -10, 3], [-128, 127, 64]])
    ws = torch.tensor([0.01, 0.02])
    b = torch.tensor([0.1, -0.2])
    big = _int8(torch.arange(256).reshape(1, 256) % 255 - 127)
    return [_linear_case("x_q=[[10, -20, 5], [127, -128, 0]], x_scale=0.05, x_zero_point=5, w_q=[[20, -10, 3], "
                         "[-128, 127, 64]], w_scale=tensor([0.01, 0.02]), bias=[0.1, -0.2], y_scale=0.03, "
                         "y_zero_point=-3 (the second output clamps to -128)", x, 0.05, 5, w, ws, b, 0.03, -3),
            _linear_case("x_q=[[1, 2, 3], [-4, 5, -6]], x_scale=0.1, x_zero_point=0, the same w_q, one "
                         "w_scale=0.02, bias=None, y_scale=0.05, y_zero_point=10",
                         _int8([[1, 2, 3], [-4, 5, -6]]), 0.1, 0, w, 0.02, None, 0.05, 10),
            _linear_case("256 inputs of large codes (int8 products and sums overflow: accumulate in int32), "
                         "x_zero_point=-20, w_q = 100 everywhere, y_scale=0.08 (the first output clamps to 127)",
                         big, 0.01, -20, _int8(torch.full((2, 256), 100)), torch.tensor([0.01, 0.002]), None, 8.0e-2,
                         0),
            _linear_case("a LeNet-like layer quantized from floats, 4 x 32 inputs, 8 outputs (the dequantized output "
                         "is the float layer's within one output step)", *_random_linear(generator(0), 4, 32, 8)),
            _linear_case("x_q as float32 (must raise TypeError naming x_q)", x.float(), 0.05, 5, w, ws, b, 0.03, -3,
                         raises="x_q"),
            _linear_case("w_q as int32 (must raise TypeError naming w_q)", x, 0.05, 5, w.int(), ws, b, 0.03, -3,
                         raises="w_q"),
            _linear_case("x_q with 2 features for a w_q with 3 (must raise ValueError naming x_q)", x[:, :2], 0.05, 5,
                         w, ws, b, 0.03, -3, raises="x_q")]


def linear_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    without_bias = _random_linear(g, 5, 16, 4)
    w = _int8([[1, 2, 3], [4, 5, 6]])
    return [_linear_case("random 16 x 64 inputs, 10 outputs", *_random_linear(g, 16, 64, 10)),
            _linear_case("random 8 x 300 inputs, 100 outputs", *_random_linear(g, 8, 300, 100)),
            _linear_case("random 8 x 784 inputs, 30 outputs, output range too small (clamping)",
                         *_random_linear(g, 8, 784, 30, spread=0.3)),
            _linear_case("random 5 x 16 inputs, 4 outputs, no bias", *without_bias[:5], None, *without_bias[6:]),
            _linear_case("x_q as int64 (must raise TypeError naming x_q)", torch.ones(2, 3, dtype=torch.int64), 0.1, 0,
                         w, 0.1, None, 0.1, 0, raises="x_q"),
            _linear_case("w_q as float (must raise TypeError naming w_q)", _int8([[1, 2, 3]]), 0.1, 0, w.float(), 0.1,
                         None, 0.1, 0, raises="w_q"),
            _linear_case("x_q with 4 features for a w_q with 3 (must raise ValueError naming x_q)",
                         _int8([[1, 2, 3, 4]]), 0.1, 0, w, 0.1, None, 0.1, 0, raises="x_q")]


def compare_codes(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """int8 codes equal to the reference's, except that at most 1% may differ by one (ties rounded at another
    precision: float32 instead of float64)."""
    if not isinstance(got, torch.Tensor):
        return f"returned {describe(got)}, expected an int8 tensor {describe(expected)}"
    if got.dtype != torch.int8:
        return f"returned a tensor of dtype {got.dtype}, expected int8 codes: {describe(expected)}"
    if got.shape != expected.shape:
        return (f"returned a tensor of shape {tuple(got.shape)}, expected shape {tuple(expected.shape)}: "
                f"{describe(expected)}")
    diff = (got.int() - expected.int()).abs()
    if not diff.numel() or (int(diff.max()) <= 1 and int((diff > 0).sum()) <= expected.numel() // 100):
        return None
    return compare_values(got, expected, rtol=0.0, atol=0.0)


EXERCISES = (
    Exercise("quantized_linear", "course_lib.quantization.integer", linear_public, linear_hidden,
             hint="the int8 output codes of the linear layer, computed from int8 codes with an int32 "
                  "accumulator and one requantization",
             compare=compare_codes, public_points=1.0, hidden_points=3.0,
             hints=("Check the inputs: x_q and w_q must be int8 (TypeError naming the argument), and x_q's last "
                    "dimension must be w_q's in_features (ValueError naming x_q).",
                    "Widen to int32 before any arithmetic: (x_q.to(torch.int32) - x_zero_point) @ "
                    "w_q.to(torch.int32).t(); int8 products and sums overflow.",
                    "The bias joins the accumulator at its scale: round(bias / (x_scale * w_scale)) as int32.",
                    "Requantize: multiply the accumulator (as float) by M = x_scale * w_scale / y_scale (one M "
                    "per output feature: it broadcasts along the last dimension), torch.round, add "
                    "y_zero_point, clamp to [-128, 127], .to(torch.int8).")),
)

"""Exercise 3, quantization: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` and its gradient,
``binarize`` (alpha * sign with the straight-through gradient) and ``quantized_linear`` (integer-only inference).

References: :mod:`course_lib.quantization` (:func:`~course_lib.quantization.integer.quantized_linear` was written
for this exercise). Every rule the notebook states has a public case: rounding half to even, clamping at both
ends of the code range, int64 codes and float32 values (dtypes are compared), per-channel parameters along
either axis, the straight-through gradient (zero where clamped), sign(0) = +1, int32 accumulation and
requantization; the errors it names have public and hidden cases. ``compute_qparams`` and ``dequantize`` have
no error cases: ``tests/test_grading_attacks.py`` grades versions of them without argument checks.
"""
from __future__ import annotations

from typing import Any

import torch

from ..spec import Assignment, Case, Exercise, Question, compare_values, describe, fixed_case, generator


# --- compute_qparams ---------------------------------------------------------------------------

def qparams_public() -> list[Case]:
    return [fixed_case("x_min=-1.0, x_max=3.0 (8 bits, signed, asymmetric: scale 4/255, zero_point -64)", (-1.0, 3.0)),
            fixed_case("x_min=-1.0, x_max=3.0, symmetric=True (scale 3/127.5, zero_point 0)", (-1.0, 3.0),
                  {"symmetric": True}),
            fixed_case("x_min=0.0, x_max=6.0, bits=4, signed=False", (0.0, 6.0), {"bits": 4, "signed": False}),
            fixed_case("x_min=0.5, x_max=2.0 (a range above 0 is widened to [0, 2])", (0.5, 2.0)),
            fixed_case("per-channel ranges x_min=tensor([-1, -0.5, 0]), x_max=tensor([1, 2, 0]) (the last channel is "
                  "all zero: its scale is float32's eps)", (torch.tensor([-1.0, -0.5, 0.0]),
                                                             torch.tensor([1.0, 2.0, 0.0])))]


def qparams_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    cases = []
    for bits, signed, symmetric in [(8, True, False), (8, False, False), (4, True, True), (2, True, False),
                                    (8, True, True), (3, False, False)]:
        lo = -float(torch.rand(1, generator=g)) * 5
        hi = float(torch.rand(1, generator=g)) * 5
        cases.append(fixed_case(f"x_min={lo:.3f}, x_max={hi:.3f}, bits={bits}, signed={signed}, symmetric={symmetric}",
                           (lo, hi), {"bits": bits, "signed": signed, "symmetric": symmetric}))
    lo, hi = -torch.rand(8, generator=g) * 3, torch.rand(8, generator=g) * 3
    cases += [fixed_case("a range below 0: x_min=-2.0, x_max=-0.5 (the range must still contain 0)", (-2.0, -0.5)),
              fixed_case("8 random per-channel ranges, 4 bits, symmetric", (lo, hi), {"bits": 4, "symmetric": True}),
              fixed_case("8 random per-channel ranges, 8 bits, unsigned", (lo, hi), {"signed": False}),
              fixed_case("x_min=x_max=0.0 (scale eps)", (0.0, 0.0))]
    return cases


# --- quantize / dequantize / fake_quantize -----------------------------------------------------

X_SIGNED = torch.tensor([-1.0, 0.0, 0.26, -0.24, 1.0, 5.0, 20.0])
X_UNSIGNED = torch.tensor([-2.0, 0.0, 0.25, 0.75, 1.25, 6.2, 7.0])
W = torch.tensor([[0.31, -0.12, 0.05], [1.4, -2.2, 0.6]])


def quantize_public() -> list[Case]:
    return [fixed_case("x=[-1, 0, 0.26, -0.24, 1, 5, 20], scale=0.1, zero_point=0, 8 bits signed (2.6 rounds to 3, -2.4 to "
                  "-2, and 200 clamps to 127)", (X_SIGNED, 0.1, 0)),
            fixed_case("x=[-2, 0, 0.25, 0.75, 1.25, 6.2, 7], scale=0.5, zero_point=3, bits=4, signed=False (-2 clamps to 0 "
                  "and 7 to 15; 0.5 rounds to 0 and 2.5 to 2, half to even)", (X_UNSIGNED, 0.5, 3),
                  {"bits": 4, "signed": False}),
            fixed_case("per channel along axis=0: weight [[0.31, -0.12, 0.05], [1.4, -2.2, 0.6]], scale=tensor([0.01, 0.1]), "
                  "zero_point=tensor([0, -2])", (W, torch.tensor([0.01, 0.1]), torch.tensor([0, -2])), {"axis": 0}),
            fixed_case("per channel along axis=1: the transposed weight, the same scales and zero points",
                  (W.t().contiguous(), torch.tensor([0.01, 0.1]), torch.tensor([0, -2])), {"axis": 1}),
            fixed_case("scale=0.0 (must raise ValueError naming scale)", (X_SIGNED, 0.0, 0), raises="scale")]


def quantize_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    x = torch.randn(64, generator=g) * 2
    w = torch.randn(4, 6, generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(-3, 4, (4,), generator=g)
    return [fixed_case("random x, scale=0.02, zero_point=-5", (x, 0.02, -5)),
            fixed_case("random x, scale=0.3, zero_point=2, bits=4, signed=False", (x, 0.3, 2), {"bits": 4, "signed": False}),
            fixed_case("random x, scale=0.5, zero_point=0, bits=2", (x, 0.5, 0), {"bits": 2}),
            fixed_case("x far outside the range (clamping)", (x * 100, 0.01, 0)),
            fixed_case("per-channel: a (4, 6) weight, 4 scales and zero points, axis=0", (w, scales, zps), {"axis": 0}),
            fixed_case("per-channel along axis=1", (w.t().contiguous(), scales, zps), {"axis": 1}),
            fixed_case("a negative scale (must raise ValueError naming scale)", (x, -0.1, 0), raises="scale"),
            fixed_case("per-channel scales with a 0 (must raise ValueError naming scale)",
                  (w, torch.tensor([0.1, 0.0, 0.1, 0.1]), zps), {"axis": 0}, raises="scale")]


def dequantize_public() -> list[Case]:
    return [fixed_case("q=[-10, 0, 3, 10], scale=0.1, zero_point=0", (torch.tensor([-10, 0, 3, 10]), 0.1, 0)),
            fixed_case("q=[0, 3, 15], scale=0.5, zero_point=3", (torch.tensor([0, 3, 15]), 0.5, 3)),
            fixed_case("per channel along axis=0: q=[[31, -12, 5], [16, -20, 8]], scale=tensor([0.01, 0.1]), "
                  "zero_point=tensor([0, -2])", (torch.tensor([[31, -12, 5], [16, -20, 8]]), torch.tensor([0.01, 0.1]),
                                                 torch.tensor([0, -2])), {"axis": 0}),
            fixed_case("per channel along axis=1: the transposed codes", (torch.tensor([[31, 16], [-12, -20], [5, 8]]),
                                                                      torch.tensor([0.01, 0.1]), torch.tensor([0, -2])),
                  {"axis": 1})]


def dequantize_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    q = torch.randint(-128, 128, (50,), generator=g)
    qc = torch.randint(0, 16, (4, 6), generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(0, 16, (4,), generator=g)
    return [fixed_case("random int8 codes, scale=0.03, zero_point=-7", (q, 0.03, -7)),
            fixed_case("per-channel: (4, 6) codes, 4 scales and zero points, axis=0", (qc, scales, zps), {"axis": 0}),
            fixed_case("per-channel along axis=1", (qc.t().contiguous(), scales, zps), {"axis": 1})]


def gradient_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The output and the gradient of ``sum(output * weights)`` with respect to the first argument (fixed weights)."""
    x = args[0]
    grad = None
    if isinstance(result, torch.Tensor) and result.requires_grad and result.shape == x.shape:
        weights = torch.linspace(-1.0, 2.0, x.numel()).reshape(x.shape)
        grad = torch.autograd.grad((result * weights).sum(), x, allow_unused=True)[0]
    return {"the output": result.detach() if isinstance(result, torch.Tensor) else result,
            f"the gradient with respect to {'x' if 'per_channel' not in kwargs else 'weight'}": grad}


def _grad_case(text: str, x: torch.Tensor, *rest: Any, kwargs: dict | None = None, raises: str | None = None) -> Case:
    def make() -> tuple[tuple, dict]:
        return ((x.clone().requires_grad_(x.is_floating_point()),)
                + tuple(r.clone() if isinstance(r, torch.Tensor) else r for r in rest)), dict(kwargs or {})
    return Case(text, make, raises)


def fake_public() -> list[Case]:
    return [_grad_case("x=[-1, 0, 0.26, -0.24, 1, 5, 20], scale=0.1, zero_point=0, 8 bits signed (20 is clamped: "
                       "gradient 0 there, 1 elsewhere)", X_SIGNED, 0.1, 0),
            _grad_case("x=[-2, 0, 0.25, 0.75, 1.25, 6.2, 7], scale=0.5, zero_point=3, bits=4, signed=False (-2 and 7 "
                       "are clamped; 6.2 is not: round(12.4) + 3 = 15 is in the range)", X_UNSIGNED, 0.5, 3,
                       kwargs={"bits": 4, "signed": False}),
            _grad_case("per channel along axis=0: the weight and parameters of quantize's per-channel test", W,
                       torch.tensor([0.01, 0.1]), torch.tensor([0, -2]), kwargs={"axis": 0}),
            _grad_case("scale=-0.1 (must raise ValueError naming scale)", X_SIGNED, -0.1, 0, raises="scale")]


def fake_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    x = torch.randn(64, generator=g) * 2
    w = torch.randn(4, 6, generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(-3, 4, (4,), generator=g)
    return [_grad_case("random x, scale=0.02, zero_point=-5 (many values clamped)", x, 0.02, -5),
            _grad_case("random x, scale=0.3, zero_point=2, bits=4, signed=False", x, 0.3, 2,
                       kwargs={"bits": 4, "signed": False}),
            _grad_case("random x, scale=1.0, zero_point=0, bits=2", x, 1.0, 0, kwargs={"bits": 2}),
            _grad_case("per-channel: a (4, 6) weight, axis=0", w, scales, zps, kwargs={"axis": 0}),
            _grad_case("per-channel along axis=1", w.t().contiguous(), scales, zps, kwargs={"axis": 1}),
            _grad_case("scale=0.0 (must raise ValueError naming scale)", x, 0.0, 0, raises="scale")]


# --- binarize ------------------------------------------------------------------------------------

B = torch.tensor([[0.5, -1.5, 0.0], [2.0, -0.25, 0.75]])


def binarize_public() -> list[Case]:
    return [_grad_case("weight=[[0.5, -1.5, 0], [2, -0.25, 0.75]], per_channel=True (alpha = 2/3 and 1 per row; "
                       "sign(0) = +1; no sign gradient where |w| > 1)", B, kwargs={"per_channel": True}),
            _grad_case("the same weight, per_channel=False (one alpha = 5/6)", B, kwargs={"per_channel": False}),
            _grad_case("a conv weight of shape (2, 2, 1, 2), per_channel=True (alpha over all but dim 0)",
                       torch.tensor([[[[0.2, -0.4]], [[0.6, 0.0]]], [[[-1.2, 0.3]], [[0.9, -0.1]]]]),
                       kwargs={"per_channel": True}),
            _grad_case("a float64 weight [[0.3, -0.6, 1.2]], per_channel=True (the output is float64)",
                       torch.tensor([[0.3, -0.6, 1.2]], dtype=torch.float64), kwargs={"per_channel": True}),
            _grad_case("an integer weight (must raise TypeError naming weight)", torch.tensor([[1, -2], [3, 0]]),
                       kwargs={"per_channel": True}, raises="weight")]


def binarize_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    return [_grad_case("a random (16, 32) weight, per_channel=True", torch.randn(16, 32, generator=g),
                       kwargs={"per_channel": True}),
            _grad_case("a random (16, 32) weight of scale 3 (many |w| > 1), per_channel=False",
                       torch.randn(16, 32, generator=g) * 3, kwargs={"per_channel": False}),
            _grad_case("a random (8, 4, 3, 3) conv weight, per_channel=True", torch.randn(8, 4, 3, 3, generator=g),
                       kwargs={"per_channel": True}),
            _grad_case("a 1-D weight with zeros, per_channel=False",
                       torch.randn(20, generator=g) * (torch.rand(20, generator=g) > 0.3), kwargs={"per_channel": False}),
            _grad_case("a float64 weight, per_channel=True", torch.randn(5, 7, generator=g, dtype=torch.float64),
                       kwargs={"per_channel": True}),
            _grad_case("an integer weight (must raise TypeError naming weight)", torch.randint(-3, 3, (4, 4), generator=g),
                       kwargs={"per_channel": False}, raises="weight")]


# --- quantized_linear --------------------------------------------------------------------------------

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
    return [_linear_case("x_q=[[10, -20, 5], [127, -128, 0]], x_scale=0.05, x_zero_point=5, w_q=[[20, -10, 3], [-128, 127, "
                         "64]], w_scale=tensor([0.01, 0.02]), bias=[0.1, -0.2], y_scale=0.03, y_zero_point=-3 (the "
                         "second output clamps to -128)", x, 0.05, 5, w, ws, b, 0.03, -3),
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
            _linear_case("x_q with 2 features for a w_q with 3 (must raise ValueError naming x_q)", x[:, :2], 0.05, 5, w,
                         ws, b, 0.03, -3, raises="x_q")]


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
        return f"returned a tensor of shape {tuple(got.shape)}, expected shape {tuple(expected.shape)}: {describe(expected)}"
    diff = (got.int() - expected.int()).abs()
    if not diff.numel() or (int(diff.max()) <= 1 and int((diff > 0).sum()) <= expected.numel() // 100):
        return None
    return compare_values(got, expected, rtol=0.0, atol=0.0)


ASSIGNMENT = Assignment(
    name="quantization",
    title="Quantization",
    allowed=("course_lib.quantization:qrange",),
    exercises=(
        Exercise("compute_qparams", "course_lib.quantization:compute_qparams", qparams_public, qparams_hidden,
                 hint="(scale, zero_point) mapping [x_min, x_max], widened to contain 0, onto the bits-bit codes",
                 dtypes=True,
                 hints=("Widen first, for numbers and tensors alike: lo = torch.clamp(torch.as_tensor(x_min, "
                        "dtype=torch.float32), max=0.0) and hi likewise with min=0.0.",
                        "Asymmetric: scale = (hi - lo) / (q_max - q_min), zero_point = q_min - round(lo / scale) "
                        "as int64 (torch.round, then .to(torch.int64)).",
                        "Symmetric: zero_point 0 (an int64 tensor of the scale's shape) and scale = max(-lo, hi) / "
                        "((q_max - q_min) / 2).",
                        "Floor every scale at torch.finfo(torch.float32).eps (torch.clamp(scale, min=eps)) before "
                        "using it.")),
        Exercise("quantize", "course_lib.quantization:quantize", quantize_public, quantize_hidden,
                 hint="the int64 codes of x: x / scale rounded to the nearest integer (half to even), plus "
                      "zero_point, clamped to the code range",
                 dtypes=True,
                 hints=("q_min, q_max = qrange(bits, signed); along(scale, x, axis) and along(zero_point, x, axis) "
                        "shape per-channel parameters so that they broadcast against x.",
                        "A scale that is not positive is a ValueError naming scale: check (s <= 0).any() first.",
                        "torch.round rounds half to even; x.long(), int() and torch.floor do not round to the "
                        "nearest integer.",
                        "Clamp to [q_min, q_max] after adding the zero point, then .to(torch.int64).")),
        Exercise("dequantize", "course_lib.quantization:dequantize", dequantize_public, dequantize_hidden,
                 hint="the float32 values scale * (q - zero_point)", dtypes=True, public_points=0.5, hidden_points=1.0,
                 hints=("along(...) for per-channel parameters, as in quantize.",
                        "Subtract the zero point in integers, then convert to float32 and multiply by the scale.")),
        Exercise("fake_quantize", "course_lib.quantization:fake_quantize", fake_public, fake_hidden,
                 hint="dequantize(quantize(x)) in x's dtype, whose gradient is 1 where x was not clamped and 0 where "
                      "it was",
                 observe=gradient_observe, dtypes=True,
                 hints=("The forward value is your dequantize(quantize(...)); but autograd cannot see through "
                        "rounding and int64 codes, so that value alone has no gradient.",
                        "Which entries were not clamped? Those whose torch.round(x.detach() / s) + z lies in "
                        "[q_min, q_max] (compute this boolean mask yourself, with along(...)).",
                        "Add to the value a term that is 0 but has the gradient you want: (x - x.detach()) * inside "
                        "is zero everywhere, and its gradient with respect to x is inside.")),
        Exercise("binarize", "course_lib.quantization:binarize", binarize_public, binarize_hidden,
                 hint="alpha * sign(weight) with alpha = mean |w| per output channel (or over the tensor), sign(0) = "
                      "+1, with the straight-through gradient for the sign",
                 observe=gradient_observe, dtypes=True,
                 hints=("A weight that is not a floating-point tensor is a TypeError naming weight.",
                        "alpha: weight.abs().mean(dim=(1, ..., weight.dim() - 1), keepdim=True) per channel, "
                        "weight.abs().mean() otherwise; keep it differentiable (no .detach()).",
                        "torch.sign(0) is 0; torch.where(weight >= 0, 1.0, -1.0) gives +1 there (as weight's dtype).",
                        "The sign's straight-through gradient is 1 where |w| <= 1: signs + (weight - weight.detach()) "
                        "* (weight.detach().abs() <= 1) has the signs as value and that gradient.",
                        "Return alpha * that; autograd adds alpha's own gradient.")),
        Exercise("quantized_linear", "course_lib.quantization.integer:quantized_linear", linear_public, linear_hidden,
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
    ),
    questions=(
        Question("zero", "Why must the real value 0 be exactly representable (a zero point that is an integer code)? "
                         "Name a place in a network where an error there would not average out."),
        Question("qat", "At 2 bits, compare your post-training result with one epoch of quantization-aware training. "
                        "Rounding has a zero derivative almost everywhere: why can QAT still train, and what does the "
                        "straight-through estimator ignore?"),
        Question("integer", "In your integer-only layer, which operation is not integer arithmetic, and how would "
                            "integer hardware do it? Why is the bias quantized with scale s_x * s_w and not with s_y?"),
    ),
)

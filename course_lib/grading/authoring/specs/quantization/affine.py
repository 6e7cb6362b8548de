"""The quantizers of exercise 3: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` and
``binarize``, with their straight-through gradients."""
from __future__ import annotations

from typing import Any

import torch

from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- compute_qparams -------------------------------------------------------------------------------------

def qparams_public() -> list[Case]:
    return [fixed_case("x_min=-1.0, x_max=3.0 (8 bits, signed, asymmetric: scale 4/255, zero_point -64)", (-1.0, 3.0)),
            fixed_case("x_min=-1.0, x_max=3.0, symmetric=True (scale 3/127.5, zero_point 0)", (-1.0, 3.0),
                       {"symmetric": True}),
            fixed_case("x_min=0.0, x_max=6.0, bits=4, signed=False", (0.0, 6.0), {"bits": 4, "signed": False}),
            fixed_case("x_min=0.5, x_max=2.0 (a range above 0 is widened to [0, 2])", (0.5, 2.0)),
            fixed_case("per-channel ranges x_min=tensor([-1, -0.5, 0]), x_max=tensor([1, 2, 0]) (the last channel is "
                       "all zero: its scale is float32's eps)",
                       (torch.tensor([-1.0, -0.5, 0.0]), torch.tensor([1.0, 2.0, 0.0])))]


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


# --- quantize / dequantize / fake_quantize ---------------------------------------------------------------

X_SIGNED = torch.tensor([-1.0, 0.0, 0.26, -0.24, 1.0, 5.0, 20.0])
X_UNSIGNED = torch.tensor([-2.0, 0.0, 0.25, 0.75, 1.25, 6.2, 7.0])
W = torch.tensor([[0.31, -0.12, 0.05], [1.4, -2.2, 0.6]])


def quantize_public() -> list[Case]:
    return [fixed_case("x=[-1, 0, 0.26, -0.24, 1, 5, 20], scale=0.1, zero_point=0, 8 bits signed (2.6 rounds to 3, "
                       "-2.4 to -2, and 200 clamps to 127)", (X_SIGNED, 0.1, 0)),
            fixed_case("x=[-2, 0, 0.25, 0.75, 1.25, 6.2, 7], scale=0.5, zero_point=3, bits=4, signed=False (-2 clamps "
                       "to 0 and 7 to 15; 0.5 rounds to 0 and 2.5 to 2, half to even)", (X_UNSIGNED, 0.5, 3),
                       {"bits": 4, "signed": False}),
            fixed_case("per channel along axis=0: weight [[0.31, -0.12, 0.05], [1.4, -2.2, 0.6]], "
                       "scale=tensor([0.01, 0.1]), zero_point=tensor([0, -2])",
                       (W, torch.tensor([0.01, 0.1]), torch.tensor([0, -2])), {"axis": 0}),
            fixed_case("per channel along axis=1: the transposed weight, the same scales and zero points",
                       (W.t().contiguous(), torch.tensor([0.01, 0.1]), torch.tensor([0, -2])), {"axis": 1}),
            fixed_case("scale=0.0 (must raise ValueError naming scale)", (X_SIGNED, 0.0, 0), raises="scale")]


def _random_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The hidden cases' inputs of quantize and fake_quantize: ``x`` (64 values), a (4, 6) weight, 4 scales and
    4 zero points."""
    g = generator(seed)
    x = torch.randn(64, generator=g) * 2
    w = torch.randn(4, 6, generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(-3, 4, (4,), generator=g)
    return x, w, scales, zps


def quantize_hidden(seed: int) -> list[Case]:
    x, w, scales, zps = _random_inputs(seed)
    return [fixed_case("random x, scale=0.02, zero_point=-5", (x, 0.02, -5)),
            fixed_case("random x, scale=0.3, zero_point=2, bits=4, signed=False", (x, 0.3, 2),
                       {"bits": 4, "signed": False}),
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
                       "zero_point=tensor([0, -2])",
                       (torch.tensor([[31, -12, 5], [16, -20, 8]]), torch.tensor([0.01, 0.1]), torch.tensor([0, -2])),
                       {"axis": 0}),
            fixed_case("per channel along axis=1: the transposed codes",
                       (torch.tensor([[31, 16], [-12, -20], [5, 8]]), torch.tensor([0.01, 0.1]), torch.tensor([0, -2])),
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
    x, w, scales, zps = _random_inputs(seed)
    return [_grad_case("random x, scale=0.02, zero_point=-5 (many values clamped)", x, 0.02, -5),
            _grad_case("random x, scale=0.3, zero_point=2, bits=4, signed=False", x, 0.3, 2,
                       kwargs={"bits": 4, "signed": False}),
            _grad_case("random x, scale=1.0, zero_point=0, bits=2", x, 1.0, 0, kwargs={"bits": 2}),
            _grad_case("per-channel: a (4, 6) weight, axis=0", w, scales, zps, kwargs={"axis": 0}),
            _grad_case("per-channel along axis=1", w.t().contiguous(), scales, zps, kwargs={"axis": 1}),
            _grad_case("scale=0.0 (must raise ValueError naming scale)", x, 0.0, 0, raises="scale")]


# --- binarize --------------------------------------------------------------------------------------------

B = torch.tensor([[0.5, -1.5, 0.0], [2.0, -0.25, 0.75]])


def binarize_public() -> list[Case]:
    return [_grad_case("weight=[[0.5, -1.5, 0], [2, -0.25, 0.75]], per_channel=True (alpha = 2/3 and 1 per row; "
                       "sign(0) = +1; no sign gradient where |w| > 1)", B, kwargs={"per_channel": True}),
            _grad_case("the same weight, per_channel=False (one alpha = 5/6)", B, kwargs={"per_channel": False}),
            _grad_case("a conv weight [[[[0.2, -0.4]], [[0.6, 0]]], [[[-1.2, 0.3]], [[0.9, -0.1]]]] of shape "
                       "(2, 2, 1, 2), per_channel=True (alpha over all but dim 0)",
                       torch.tensor([[[[0.2, -0.4]], [[0.6, 0.0]]], [[[-1.2, 0.3]], [[0.9, -0.1]]]]),
                       kwargs={"per_channel": True}),
            _grad_case("a float64 weight [[0.3, -0.6, 1.2]], per_channel=True (the output is float64)",
                       torch.tensor([[0.3, -0.6, 1.2]], dtype=torch.float64), kwargs={"per_channel": True}),
            _grad_case("an integer weight [[1, -2], [3, 0]] (must raise TypeError naming weight)",
                       torch.tensor([[1, -2], [3, 0]]),
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
                       torch.randn(20, generator=g) * (torch.rand(20, generator=g) > 0.3),
                       kwargs={"per_channel": False}),
            _grad_case("a float64 weight, per_channel=True", torch.randn(5, 7, generator=g, dtype=torch.float64),
                       kwargs={"per_channel": True}),
            _grad_case("an integer weight (must raise TypeError naming weight)",
                       torch.randint(-3, 3, (4, 4), generator=g), kwargs={"per_channel": False}, raises="weight")]


EXERCISES = (
    Exercise("compute_qparams", "course_lib.quantization", qparams_public, qparams_hidden,
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
    Exercise("quantize", "course_lib.quantization", quantize_public, quantize_hidden,
             hint="the int64 codes of x: x / scale rounded to the nearest integer (half to even), plus "
                  "zero_point, clamped to the code range",
             dtypes=True,
             hints=("q_min, q_max = qrange(bits, signed); along(scale, x, axis) and along(zero_point, x, axis) "
                    "shape per-channel parameters so that they broadcast against x.",
                    "A scale that is not positive is a ValueError naming scale: check (s <= 0).any() first.",
                    "torch.round rounds half to even; x.long(), int() and torch.floor do not round to the "
                    "nearest integer.",
                    "Clamp to [q_min, q_max] after adding the zero point, then .to(torch.int64).")),
    Exercise("dequantize", "course_lib.quantization", dequantize_public, dequantize_hidden,
             hint="the float32 values scale * (q - zero_point)", dtypes=True, public_points=0.5, hidden_points=1.0,
             hints=("along(...) for per-channel parameters, as in quantize.",
                    "Subtract the zero point in integers, then convert to float32 and multiply by the scale.")),
    Exercise("fake_quantize", "course_lib.quantization", fake_public, fake_hidden,
             hint="dequantize(quantize(x)) in x's dtype, whose gradient is 1 where x was not clamped and 0 where "
                  "it was",
             observe=gradient_observe, dtypes=True,
             hints=("The forward value is your dequantize(quantize(...)); but autograd cannot see through "
                    "rounding and int64 codes, so that value alone has no gradient.",
                    "Which entries were not clamped? Those whose torch.round(x.detach() / s) + z lies in "
                    "[q_min, q_max] (compute this boolean mask yourself, with along(...)).",
                    "Add to the value, in x's dtype (.to(x.dtype): dequantize gives float32), a term that is 0 but "
                    "has the gradient you want: (x - x.detach()) * inside is zero everywhere, and its gradient with "
                    "respect to x is inside.")),
    Exercise("binarize", "course_lib.quantization", binarize_public, binarize_hidden,
             hint="alpha * sign(weight) with alpha = mean |w| per output channel (or over the tensor), sign(0) = "
                  "+1, with the straight-through gradient for the sign",
             observe=gradient_observe, dtypes=True,
             hints=("A weight that is not a floating-point tensor is a TypeError naming weight.",
                    "alpha: weight.abs().mean(dim=(1, ..., weight.dim() - 1), keepdim=True) per channel, "
                    "weight.abs().mean() otherwise; keep it differentiable (no .detach()).",
                    "torch.sign(0) is 0; torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype) gives +1 there, "
                    "in weight's dtype.",
                    "The sign's straight-through gradient is 1 where |w| <= 1: signs + (weight - weight.detach()) "
                    "* (weight.detach().abs() <= 1) has the signs as value and that gradient.",
                    "Return alpha * that; autograd adds alpha's own gradient.")),
)

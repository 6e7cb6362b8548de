"""Exercise 3, quantization: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` and its gradient.

References: :mod:`course_lib.quantization`. Hidden cases: ranges that do and do not contain 0,
symmetric and asymmetric, signed and unsigned, 2 to 8 bits, per-tensor and per-channel (``axis``)
parameters, values far outside the range (clamping), and the straight-through gradient of
``fake_quantize``.
"""
from __future__ import annotations

from typing import Any

import torch

from ..spec import Assignment, Case, Exercise


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _case(text: str, args: tuple, kwargs: dict | None = None) -> Case:
    def make() -> tuple[tuple, dict]:
        return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs or {})
    return Case(text, make)


# --- compute_qparams ---------------------------------------------------------------------------

def qparams_public() -> list[Case]:
    return [_case("x_min=-1.0, x_max=3.0 (8 bits, signed, asymmetric)", (-1.0, 3.0)),
            _case("x_min=-1.0, x_max=3.0, symmetric=True", (-1.0, 3.0), {"symmetric": True}),
            _case("x_min=0.0, x_max=6.0, bits=4, signed=False", (0.0, 6.0), {"bits": 4, "signed": False})]


def qparams_hidden(seed: int) -> list[Case]:
    g = _gen(seed)
    cases = []
    for bits, signed, symmetric in [(8, True, False), (8, False, False), (4, True, True), (2, True, False),
                                    (8, True, True), (3, False, False)]:
        lo = -float(torch.rand(1, generator=g)) * 5
        hi = float(torch.rand(1, generator=g)) * 5
        cases.append(_case(f"x_min={lo:.3f}, x_max={hi:.3f}, bits={bits}, signed={signed}, symmetric={symmetric}",
                           (lo, hi), {"bits": bits, "signed": signed, "symmetric": symmetric}))
    cases.append(_case("a range above 0: x_min=0.5, x_max=2.0 (the range must still contain 0)", (0.5, 2.0)))
    return cases


# --- quantize / dequantize / fake_quantize -----------------------------------------------------

def quantize_public() -> list[Case]:
    x = torch.tensor([-1.0, 0.0, 0.26, 1.0, 5.0])
    return [_case("x=[-1, 0, 0.26, 1, 5], scale=0.1, zero_point=0 (8 bits, signed)", (x, 0.1, 0)),
            _case("the same x, scale=0.5, zero_point=3, bits=4, signed=False (5 clamps to 15)", (x, 0.5, 3),
                  {"bits": 4, "signed": False})]


def quantize_hidden(seed: int) -> list[Case]:
    g = _gen(seed)
    x = torch.randn(64, generator=g) * 2
    w = torch.randn(4, 6, generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(-3, 4, (4,), generator=g)
    return [_case("random x, scale=0.02, zero_point=-5", (x, 0.02, -5)),
            _case("random x, scale=0.3, zero_point=2, bits=4, signed=False", (x, 0.3, 2), {"bits": 4, "signed": False}),
            _case("random x, scale=0.5, zero_point=0, bits=2", (x, 0.5, 0), {"bits": 2}),
            _case("x far outside the range (clamping)", (x * 100, 0.01, 0)),
            _case("per-channel: a (4, 6) weight, 4 scales and zero points, axis=0", (w, scales, zps), {"axis": 0}),
            _case("per-channel along axis=1", (w.t().contiguous(), scales, zps), {"axis": 1})]


def dequantize_public() -> list[Case]:
    return [_case("q=[-10, 0, 3, 10], scale=0.1, zero_point=0", (torch.tensor([-10, 0, 3, 10]), 0.1, 0)),
            _case("q=[0, 3, 15], scale=0.5, zero_point=3", (torch.tensor([0, 3, 15]), 0.5, 3))]


def dequantize_hidden(seed: int) -> list[Case]:
    g = _gen(seed)
    q = torch.randint(-128, 128, (50,), generator=g)
    qc = torch.randint(0, 16, (4, 6), generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(0, 16, (4,), generator=g)
    return [_case("random int8 codes, scale=0.03, zero_point=-7", (q, 0.03, -7)),
            _case("per-channel: (4, 6) codes, 4 scales and zero points, axis=0", (qc, scales, zps), {"axis": 0}),
            _case("per-channel along axis=1", (qc.t().contiguous(), scales, zps), {"axis": 1})]


def fake_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The output and the gradient of ``sum(output * weights)`` with respect to ``x`` (fixed weights)."""
    x = args[0]
    grad = None
    if isinstance(result, torch.Tensor) and result.requires_grad and result.shape == x.shape:
        weights = torch.linspace(-1.0, 2.0, x.numel()).reshape(x.shape)
        grad = torch.autograd.grad((result * weights).sum(), x, allow_unused=True)[0]
    return {"the output": result.detach() if isinstance(result, torch.Tensor) else result,
            "the gradient with respect to x": grad}


def _grad_case(text: str, x: torch.Tensor, scale: Any, zero_point: Any, kwargs: dict | None = None) -> Case:
    def make() -> tuple[tuple, dict]:
        s = scale.clone() if isinstance(scale, torch.Tensor) else scale
        z = zero_point.clone() if isinstance(zero_point, torch.Tensor) else zero_point
        return (x.clone().requires_grad_(True), s, z), dict(kwargs or {})
    return Case(text, make)


def fake_public() -> list[Case]:
    x = torch.tensor([-1.0, 0.0, 0.26, 1.0, 5.0])
    return [_grad_case("x=[-1, 0, 0.26, 1, 5], scale=0.1, zero_point=0 (8 bits, signed)", x, 0.1, 0),
            _grad_case("the same x, scale=0.5, zero_point=3, bits=4, signed=False (5 is clamped: no gradient there)",
                       x, 0.5, 3, {"bits": 4, "signed": False})]


def fake_hidden(seed: int) -> list[Case]:
    g = _gen(seed)
    x = torch.randn(64, generator=g) * 2
    w = torch.randn(4, 6, generator=g)
    scales = torch.rand(4, generator=g) * 0.05 + 0.01
    zps = torch.randint(-3, 4, (4,), generator=g)
    return [_grad_case("random x, scale=0.02, zero_point=-5 (many values clamped)", x, 0.02, -5),
            _grad_case("random x, scale=0.3, zero_point=2, bits=4, signed=False", x, 0.3, 2, {"bits": 4, "signed": False}),
            _grad_case("random x, scale=1.0, zero_point=0, bits=2", x, 1.0, 0, {"bits": 2}),
            _grad_case("per-channel: a (4, 6) weight, axis=0", w, scales, zps, {"axis": 0})]


ASSIGNMENT = Assignment(
    name="quantization",
    title="Quantization",
    allowed=("course_lib.quantization:qrange",),
    exercises=(
        Exercise("compute_qparams", "course_lib.quantization:compute_qparams", qparams_public, qparams_hidden,
                 hint="widen [x_min, x_max] to contain 0, then scale = range / (qmax - qmin) and an integer "
                      "zero_point (0 when symmetric)"),
        Exercise("quantize", "course_lib.quantization:quantize", quantize_public, quantize_hidden,
                 hint="round(x / scale) + zero_point, clamped to qrange(bits, signed), as int64; "
                      "along(scale, x, axis) shapes per-channel parameters"),
        Exercise("dequantize", "course_lib.quantization:dequantize", dequantize_public, dequantize_hidden,
                 hint="(q - zero_point) * scale in float32; along(scale, q, axis) shapes per-channel parameters", public_points=0.5, hidden_points=1.0),
        Exercise("fake_quantize", "course_lib.quantization:fake_quantize", fake_public, fake_hidden,
                 hint="dequantize(quantize(x)) in the forward pass; let the gradient through (straight-through "
                      "estimator) where x was not clamped", observe=fake_observe),
    ),
)

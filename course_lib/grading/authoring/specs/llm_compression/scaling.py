"""Activation outliers and the scales that move them in exercise 5: ``outlier_stats``, ``smooth_scales``
(SmoothQuant) and ``awq_search_scales`` (AWQ's grid search)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from ...compare import compare_values, describe
from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

F64 = torch.float64


def compare_tuple(names: tuple[str, ...], rtol: float, atol: float, dtypes: bool = True) -> Callable:
    """A ``compare`` for a function that returns the tuple ``names`` (a NamedTuple or a plain tuple): each item
    compared with the reference's, named in the feedback."""
    def compare(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
        if not isinstance(got, (tuple, list)) or len(got) != len(names):
            return f"returned {describe(got)}, expected a tuple ({', '.join(names)}): {describe(expected)}"
        for name, g, e in zip(names, got, expected):
            msg = compare_values(g, e, rtol, atol, where=name, dtypes=dtypes)
            if msg:
                return msg
        return None
    return compare


# --- outlier_stats ---------------------------------------------------------------------------------------

HAND = torch.tensor([[1.0, 0.0, 2.0], [-1.0, 0.0, 2.0], [1.0, 0.0, 2.0], [-1.0, 4.0, 2.0]], dtype=F64)
EVEN = torch.tensor([[1.0, -2.0, 4.0, 10.0], [-1.0, 2.0, -4.0, 0.0], [0.5, 1.0, 3.0, -1.0]], dtype=F64)


def _offset(g: torch.Generator, tokens: int, channels: int) -> torch.Tensor:
    """float32 activations ``1000 + 0.01 z``: their moments computed in float32 are off in the third digit."""
    return (1000 + 0.01 * torch.randn(tokens, channels, generator=g, dtype=F64)).float()


def stats_public() -> list[Case]:
    return [fixed_case("activations=[[1, 0, 2], [-1, 0, 2], [1, 0, 2], [-1, 4, 2]] (4 tokens, 3 channels, "
                       "float64): kurtosis 1 for channel 0, (21/4) / (12/4)^2 = 7/3 for channel 1 (population "
                       "moments, Pearson's, not the excess), NaN for the constant channel 2; median absmax 2, no "
                       "channel above 6 x 2", (HAND,)),
            fixed_case("the same activations, threshold=1.5 (channel 1: 4 > 1.5 x 2)", (HAND,), {"threshold": 1.5}),
            fixed_case("the same activations, threshold=2 (channel 1: 4 = 2 x 2 is not larger: no outlier)", (HAND,),
                       {"threshold": 2.0}),
            fixed_case("activations of 3 tokens x 4 channels with absmax [1, 2, 4, 10], threshold=4 (an even number "
                       "of channels: the median is (2 + 4) / 2 = 3, so 10 < 12 is no outlier)", (EVEN,),
                       {"threshold": 4.0}),
            fixed_case("the same channels as a (1, 3, 4) tensor (batch, tokens, channels: every leading dimension "
                       "counts as tokens), threshold=3", (EVEN[None],), {"threshold": 3.0}),
            fixed_case("float32 activations (absmax and kurtosis are returned as float32, computed in float64)",
                       (torch.tensor([[0.5, 3.0], [-0.25, 1.0], [0.1, -2.0]]),)),
            fixed_case("float32 activations 1000 + 0.01 z of 64 tokens, z standard normal (in float32, x - mean "
                       "keeps only a few digits: computed in float64, the kurtosis is right to 6 digits)",
                       (_offset(generator(2), 64, 3),)),
            fixed_case("a single token of shape (1, 3) (must raise ValueError naming activations)", (HAND[:1],),
                       raises="activations")]


def stats_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    x = torch.randn(64, 16, generator=g, dtype=F64)
    x[:, 5] *= 30  # an outlier channel
    x[::16, 11] = 40  # a few massive tokens: high kurtosis
    x3 = torch.randn(2, 32, 10, generator=g, dtype=F64)
    x3[..., 2] = 0.75  # constant; its float64 mean is exact, so m2 is 0 however the learner computes it
    return [fixed_case("random (64, 16) activations with an outlier channel and a channel of a few massive tokens",
                       (x,)),
            fixed_case("the same, threshold=20", (x,), {"threshold": 20.0}),
            fixed_case("random (2, 32, 10) activations with a constant channel (0.75 everywhere: NaN)", (x3,),
                       {"threshold": 2.0}),
            fixed_case("random float32 (64, 16) activations", (x.float(),)),
            fixed_case("random float32 (48, 4) activations 1000 + 0.01 z (computed in float64)", (_offset(g, 48, 4),)),
            fixed_case("a (1, 1, 16) tensor, one token (must raise ValueError naming activations)", (x[None, :1],),
                       raises="activations")]


# --- smooth_scales ---------------------------------------------------------------------------------------

ACT, WEIGHT = torch.tensor([16.0, 1.0, 0.25, 4.0], dtype=F64), torch.tensor([1.0, 4.0, 0.25, 1.0], dtype=F64)


def smooth_public() -> list[Case]:
    zeros = (torch.tensor([2.0, 0.0], dtype=F64), torch.tensor([0.0, 3.0], dtype=F64))
    return [fixed_case("act_absmax=[16, 1, 0.25, 4], weight_absmax=[1, 4, 0.25, 1], alpha=0.5 (s = "
                       "sqrt(act / weight))", (ACT, WEIGHT, 0.5)),
            fixed_case("the same, alpha=0.8", (ACT, WEIGHT, 0.8)),
            fixed_case("the same, alpha=0 (s = 1 / weight_absmax)", (ACT, WEIGHT, 0.0)),
            fixed_case("the same, alpha=1 (s = act_absmax)", (ACT, WEIGHT, 1.0)),
            fixed_case("act_absmax=[2, 0], weight_absmax=[0, 3], alpha=0.5 (a weight maximum of 0 counts as 1e-5; "
                       "a scale of 0 becomes 1e-5)", (*zeros, 0.5)),
            fixed_case("alpha=1.5 (must raise ValueError naming alpha)", (ACT, WEIGHT, 1.5), raises="alpha"),
            fixed_case("weight_absmax of 3 channels for act_absmax of 4 (must raise ValueError naming "
                       "weight_absmax)", (ACT, WEIGHT[:3], 0.5), raises="weight_absmax")]


def smooth_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    act = torch.rand(32, generator=g, dtype=F64) * 10
    act[[3, 17]] = 200.0
    weight = torch.rand(32, generator=g, dtype=F64)
    weight[7] = 0
    return [fixed_case(f"random maxima of 32 channels with 2 outliers, alpha={a}", (act, weight, a))
            for a in (0.5, 0.25, 0.85, 0.0, 1.0)] + \
        [fixed_case("alpha=-0.1 (must raise ValueError naming alpha)", (act, weight, -0.1), raises="alpha"),
         fixed_case("weight_absmax of 31 channels (must raise ValueError naming weight_absmax)",
                    (act, weight[:31], 0.5), raises="weight_absmax")]


# --- awq_search_scales -----------------------------------------------------------------------------------

def _layer(g: torch.Generator, out: int, inputs: int, tokens: int, salient: list[int]) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """A random weight and inputs whose ``salient`` channels are 20 times larger."""
    w = torch.randn(out, inputs, generator=g, dtype=F64)
    x = torch.randn(tokens, inputs, generator=g, dtype=F64)
    x[:, salient] *= 20
    return w, x


W_AWQ, X_AWQ = _layer(generator(1), 4, 8, 16, [2])


def _gelu_case(text: str, w: torch.Tensor, x: torch.Tensor, bits: int, group_size: int | None,
               n_grid: int) -> Case:
    """A case whose block output is GELU(x W^T): ``forward`` built afresh with the case's own inputs."""
    def make() -> tuple[tuple, dict]:
        inputs = x.clone()
        return (w.clone(), inputs, bits, group_size), {"forward": lambda w_: F.gelu(inputs @ w_.T), "n_grid": n_grid}
    return Case(text, make)


def awq_public() -> list[Case]:
    dead = X_AWQ.clone()
    dead[:, 5] = 0
    flat = torch.where(X_AWQ > 0, 1.0, -1.0).to(F64)
    return [fixed_case("a (4, 8) weight and 16 tokens of inputs whose channel 2 is 20 times larger (g = "
                       "torch.Generator().manual_seed(1); weight = torch.randn(4, 8, generator=g, "
                       "dtype=torch.float64); inputs = torch.randn(16, 8, generator=g, dtype=torch.float64); "
                       "inputs[:, 2] *= 20), bits=3, group_size=4, n_grid=4 (alphas 0, 0.25, 0.5, 0.75: 1 is not on "
                       "the grid)",
                       (W_AWQ, X_AWQ, 3, 4), {"n_grid": 4}),
            fixed_case("the same, bits=2, group_size=None, default n_grid=20", (W_AWQ, X_AWQ, 2, None)),
            fixed_case("the same, input channel 5 always 0 (its mean |x| is 0: s is floored at 1e-4 before the "
                       "normalisation by sqrt(max s * min s))", (W_AWQ, dead, 3, 4), {"n_grid": 5}),
            fixed_case("inputs of +1 and -1 only (every channel's mean |x| is 1: every alpha gives the same error, "
                       "and the first, alpha 0, wins)", (W_AWQ, flat, 2, 4), {"n_grid": 4}),
            _gelu_case("the same weight and inputs as the first case, forward=lambda w: gelu(inputs @ w.T) (the "
                       "error is measured on forward's output), bits=3, group_size=4, n_grid=4", W_AWQ, X_AWQ, 3, 4,
                       4),
            fixed_case("inputs with 6 features for a weight of 8 input columns (must raise ValueError naming "
                       "inputs)", (W_AWQ, X_AWQ[:, :6], 3, 4), raises="inputs")]


def awq_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    w, x = _layer(g, 6, 16, 32, [1, 9])
    w2, x2 = _layer(g, 4, 8, 24, [0])
    return [fixed_case("a random (6, 16) weight, inputs with 2 salient channels, bits=3, group_size=8",
                       (w, x, 3, 8)),
            fixed_case("the same, bits=4, group_size=4, n_grid=10", (w, x, 4, 4), {"n_grid": 10}),
            fixed_case("the same, bits=2, group_size=None, n_grid=1 (alpha 0 only)", (w, x, 2, None), {"n_grid": 1}),
            fixed_case("a random (4, 8) weight, (2, 12, 8) inputs (leading dimensions are tokens), bits=3, "
                       "group_size=4", (w2, x2.reshape(2, 12, 8), 3, 4), {"n_grid": 8}),
            _gelu_case("a gelu block, bits=2, group_size=8, n_grid=6", w, x, 2, 8, 6),
            fixed_case("inputs with 15 features (must raise ValueError naming inputs)", (w, x[:, :15], 3, 8),
                       raises="inputs")]


EXERCISES = (
    Exercise("outlier_stats", "course_lib.llm.scaling", stats_public, stats_hidden,
             hint="(absmax, kurtosis, outliers): per channel the largest |x| and Pearson's kurtosis m4 / m2^2 over "
                  "the tokens, and the int64 indices of the channels whose absmax exceeds threshold times the "
                  "median absmax",
             compare=compare_tuple(("absmax", "kurtosis", "outliers"), 1e-6, 1e-9),
             hints=("Flatten the tokens: x = activations.reshape(-1, activations.shape[-1]); fewer than 2 rows is "
                    "a ValueError naming activations. Compute in float64: x.double().",
                    "m2 and m4 are means over the tokens (dim 0) of (x - x.mean(0)) ** 2 and ** 4; the kurtosis is "
                    "m4 / m2 ** 2, and torch.where(m2 > 0, ..., torch.nan) for a constant channel.",
                    "torch.median returns the lower of the two middle values; torch.quantile(absmax, 0.5) "
                    "returns their mean.",
                    "torch.nonzero(mask, as_tuple=True)[0] gives the int64 indices, ascending. Return absmax and "
                    "kurtosis converted back with .to(activations.dtype).")),
    Exercise("smooth_scales", "course_lib.llm.scaling", smooth_public, smooth_hidden,
             hint="SmoothQuant's s_j = act_absmax_j^alpha / weight_absmax_j^(1 - alpha), weight maxima and scales "
                  "floored at 1e-5",
             rtol=1e-6, atol=1e-12, public_points=0.5, hidden_points=1.0,
             hints=("alpha outside [0, 1] is a ValueError naming alpha; a weight_absmax of another shape than "
                    "act_absmax is a ValueError naming weight_absmax.",
                    "weight_absmax.clamp(min=1e-5) before the power, and the result .clamp(min=1e-5).")),
    Exercise("awq_search_scales", "course_lib.llm.scaling", awq_public, awq_hidden,
             hint="(scales, alpha, alphas, errors): for alpha = k / n_grid, scales s = mean|x|^alpha (floored, "
                  "normalised), the output error of forward(Q(W diag(s)) diag(s)^-1) against forward(W); the first "
                  "smallest error wins",
             compare=compare_tuple(("scales", "alpha", "alphas", "errors"), 1e-6, 1e-12),
             relies_on=("fake_group_quantize",), public_points=1.5, hidden_points=3.0,
             hints=("inputs whose last dimension is not weight.shape[1] is a ValueError naming inputs. Without "
                    "forward, the block's output is inputs @ w.T.",
                    "s_x = inputs.abs().reshape(-1, inputs.shape[-1]).mean(0); alphas = torch.arange(n_grid, "
                    "dtype=torch.float64) / n_grid.",
                    "For each alpha: s = s_x ** alpha, .clamp(min=1e-4), then s / (s.max() * s.min()).sqrt().",
                    "The quantized weight seen by the block is fake_group_quantize(weight * s, bits, group_size) / "
                    "s (s multiplies the columns, which is what broadcasting a (in,) tensor does).",
                    "error = ((output - reference) ** 2).mean() as a Python float; errors is a float64 tensor of "
                    "them; torch.argmin returns the first of equal minima. Return (s, alpha as a float, alphas, "
                    "errors).")),
)

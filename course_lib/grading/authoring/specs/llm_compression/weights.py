"""Weight-only quantization in exercise 5: ``fake_group_quantize`` (plain rounding per group of input columns)
and ``gptq_quantize`` (rounding with error feedback). Inputs are float64, except where a case checks that a
float32 weight stays float32: GPTQ's rounding decisions are sequential, and float64 keeps them the same
whatever the order of the learner's floating-point operations."""
from __future__ import annotations

from typing import Any

import torch

from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

F64 = torch.float64


def _w(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --- fake_group_quantize ---------------------------------------------------------------------------------

GROUPED = _w([[0.1, -0.2, 0.3, -0.1, 5.0, -4.0, 3.0, 2.0], [1.0, 2.0, -3.0, 0.5, 0.01, 0.02, -0.03, 0.04]])


def group_public() -> list[Case]:
    return [fixed_case("w=[[-1, 0.5, 1.5, 2]], bits=2, group_size=None (range [-1, 2], scale 1, zero point 1; "
                       "0.5 and 1.5 are ties: half to even gives codes 1 and 3)", (_w([[-1.0, 0.5, 1.5, 2.0]]), 2,
                                                                                  None)),
            fixed_case("w=[[0.2, 0.6, 0.9, 1.5]], bits=2, group_size=None (all positive: the range is widened to "
                       "[0, 1.5], scale 0.5, zero point 0)", (_w([[0.2, 0.6, 0.9, 1.5]]), 2, None)),
            fixed_case("w=[[-1.5, -0.4, 0.6, 1.5]], bits=2, group_size=None (zero point round(1.5) = 2, so 1.5 "
                       "would get code 4: codes are clamped to [0, 3])", (_w([[-1.5, -0.4, 0.6, 1.5]]), 2, None)),
            fixed_case(f"w={GROUPED.tolist()}, bits=3, group_size=4 (one grid per 4 columns of a row: the small "
                       "weights get a fine grid of their own)", (GROUPED, 3, 4)),
            fixed_case("the same w, group_size=None (one grid per row)", (GROUPED, 3, None)),
            fixed_case("w=[[0, 0, 0, 0, 1, -1, 0.5, 0.25]], bits=2, group_size=4 (the first group is all zero: its "
                       "scale is the floor eps, and it stays 0, no NaN)",
                       (_w([[0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.5, 0.25]]), 2, 4)),
            fixed_case("a float32 w=[[0.3, -0.7, 1.1, 0.05], [2.0, 0.4, -0.6, 0.9]], bits=4, group_size=2 (the "
                       "result stays float32)", (torch.tensor([[0.3, -0.7, 1.1, 0.05], [2.0, 0.4, -0.6, 0.9]]), 4,
                                                 2)),
            fixed_case("a (2, 8) w, group_size=3 (must raise ValueError naming group_size: 3 does not divide 8)",
                       (GROUPED, 3, 3), raises="group_size")]


def group_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    w = torch.randn(6, 16, generator=g, dtype=F64)
    ties = torch.randint(-8, 8, (4, 8), generator=g).to(F64) / 4  # on a grid of step 0.25: many ties
    zero_groups = torch.randn(3, 8, generator=g, dtype=F64)
    zero_groups[1, :4] = 0
    cases = [fixed_case(f"a random (6, 16) weight, bits={b}, group_size={gs}", (w, b, gs))
             for b, gs in ((2, None), (3, 4), (4, 8), (8, 16), (1, 2))]
    return cases + [fixed_case("a (4, 8) weight of multiples of 0.25 (ties), bits=3, group_size=4", (ties, 3, 4)),
                    fixed_case("a (3, 8) weight with an all-zero group, bits=2, group_size=4", (zero_groups, 2, 4)),
                    fixed_case("a random float32 (4, 8) weight, bits=4, group_size=4", (w[:4, :8].float(), 4, 4)),
                    fixed_case("group_size=5 for 16 columns (must raise ValueError naming group_size)", (w, 4, 5),
                               raises="group_size")]


# --- gptq_quantize ---------------------------------------------------------------------------------------

W = _w([[0.8, -0.3, 0.45, 1.2, -0.9, 0.1], [-0.25, 0.6, -1.1, 0.35, 0.7, -0.5], [0.05, 0.9, 0.2, -0.4, 1.3, -0.75]])


def _hessian(g: torch.Generator, tokens: int, features: int) -> torch.Tensor:
    """``2/n X^T X`` of ``tokens`` correlated random inputs (each input mixes a few others)."""
    z = torch.randn(tokens, features, generator=g, dtype=F64)
    x = z @ (torch.eye(features, dtype=F64) + 0.8 * torch.randn(features, features, generator=g, dtype=F64))
    return 2.0 / tokens * x.T @ x


H = _hessian(generator(0), 32, 6)
H_DEAD = H.clone()
H_DEAD[2, :] = 0
H_DEAD[:, 2] = 0


def gptq_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The rounded weight, and ``weight`` and ``hessian`` after the call: the function must leave them unchanged."""
    return {"the rounded weight": result, "the argument weight after the call (it must stay unchanged)": args[0],
            "the argument hessian after the call (it must stay unchanged)": args[1]}


def gptq_public() -> list[Case]:
    eye = torch.eye(6, dtype=F64)
    return [fixed_case(f"weight={W.tolist()}, hessian = identity, bits=3, group_size=None, damp=0 (nothing to "
                       "move: plain rounding per row, as fake_group_quantize)", (W, eye, 3, None), {"damp": 0.0}),
            fixed_case("the same weight, hessian = diag(1, ..., 6), bits=2, group_size=3 (a diagonal hessian: still "
                       "plain rounding)", (W, torch.diag(torch.arange(1.0, 7.0, dtype=F64)), 2, 3)),
            fixed_case("the same weight, the hessian H = 2/32 X^T X of 32 correlated inputs (g = "
                       "torch.Generator().manual_seed(0); X = torch.randn(32, 6, generator=g, dtype=torch.float64) @ "
                       "(torch.eye(6) + 0.8 * torch.randn(6, 6, generator=g, dtype=torch.float64))), bits=2, "
                       "group_size=None (each column's error moves onto the columns to its right)", (W, H, 2, None)),
            fixed_case("the same, group_size=3 (the second group's grid comes from its weights as updated by the "
                       "first group's errors)", (W, H, 2, 3)),
            fixed_case("the same, bits=3, damp=0.5 (0.5 times the mean of the diagonal is added to the diagonal)",
                       (W, H, 3, None), {"damp": 0.5}),
            fixed_case("the same hessian with row and column 2 zeroed (input 2 is always 0: first its weights are "
                       "set to 0 and H[2, 2] to 1, so each row's grid comes from the weight with column 2 zeroed), "
                       "bits=2, group_size=None", (W, H_DEAD, 2, None)),
            fixed_case("the same hessian divided by 100, damp=0.5 (the mean of the diagonal is taken after H[2, 2] "
                       "is set to 1, which then weighs on it)", (W, H_DEAD / 100, 2, None), {"damp": 0.5}),
            fixed_case("the correlated hessian, bits=2, group_size=None, block_size=2 (the result does not depend "
                       "on block_size)", (W, H, 2, None), {"block_size": 2}),
            fixed_case("a (5, 5) hessian for a weight of 6 input columns (must raise ValueError naming hessian)",
                       (W, torch.eye(5, dtype=F64), 2, None), raises="hessian")]


def gptq_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    w = torch.randn(4, 16, generator=g, dtype=F64)
    h = _hessian(g, 64, 16)
    dead = h.clone()
    dead[[3, 9], :] = 0
    dead[:, [3, 9]] = 0
    cases = [fixed_case(f"a random (4, 16) weight, a correlated hessian, bits={b}, group_size={gs}, damp={d}, "
                        f"block_size={bs}", (w, h, b, gs), {"damp": d, "block_size": bs})
             for b, gs, d, bs in ((2, None, 0.01, 128), (3, 4, 0.01, 128), (4, 8, 0.1, 4), (2, 4, 0.01, 3))]
    return cases + [fixed_case("inputs 3 and 9 always 0, bits=3, group_size=8", (w, dead, 3, 8)),
                    fixed_case("inputs 3 and 9 always 0, the hessian divided by 100, bits=2, group_size=None, "
                               "damp=0.5", (w, dead / 100, 2, None), {"damp": 0.5}),
                    fixed_case("a diagonal hessian, bits=3, group_size=4", (w, torch.diag(h.diagonal()), 3, 4)),
                    fixed_case("a (16, 15) hessian (must raise ValueError naming hessian)", (w, h[:, :15], 2, None),
                               raises="hessian")]


EXERCISES = (
    Exercise("fake_group_quantize", "course_lib.llm.quantize", group_public, group_hidden,
             hint="the dequantized weight after rounding each group of group_size input columns of a row to its "
                  "own asymmetric bits-bit min/max grid (range widened to contain 0), in w's dtype",
             dtypes=True, rtol=1e-6, atol=1e-9,
             hints=("Check group_size first: None means one group per row (group_size = w.shape[1]); a number "
                    "that does not divide w.shape[1] is a ValueError naming group_size.",
                    "w.reshape(rows, -1, group_size) puts each group on the last dimension; amin(-1, "
                    "keepdim=True) and amax(-1, keepdim=True) give each group's range.",
                    "Widen the range to contain 0 (low.clamp(max=0), high.clamp(min=0)); scale = (high - low) / "
                    "(2 ** bits - 1), floored with .clamp(min=torch.finfo(torch.float32).eps); zero point = "
                    "torch.round(-low / scale). All of these stay in w's dtype.",
                    "codes = torch.clamp(torch.round(w / scale) + zero, 0, 2 ** bits - 1); the result is (codes - "
                    "zero) * scale, reshaped to w's shape.")),
    Exercise("gptq_quantize", "course_lib.llm.quantize", gptq_public, gptq_hidden,
             hint="quantize the columns left to right on fake_group_quantize's grids, moving each column's "
                  "rounding error onto the columns not yet quantized with the (damped) inverse hessian",
             observe=gptq_observe, rtol=1e-6, atol=1e-9, public_points=1.5, hidden_points=3.0,
             hints=("Check that hessian has shape (in, in) (ValueError naming hessian). Work on clones: W = "
                    "weight.clone(), H = hessian.to(weight.dtype).clone().",
                    "Dead inputs: where H's diagonal is 0, set H[j, j] = 1 and W[:, j] = 0. Then add damp * "
                    "H.diagonal().mean() to the diagonal.",
                    "Hinv = torch.linalg.inv(H). GPTQ's step for column i, with q the rounded column: err = (W[:, "
                    "i] - q) / Hinv[i, i]; W[:, i + 1:] -= err[:, None] * Hinv[i, i + 1:][None, :].",
                    "After column i, remove it from the problem: Hinv becomes the inverse of H without row and "
                    "column i, which is Hinv - Hinv[:, i:i+1] @ Hinv[i:i+1, :] / Hinv[i, i] (the Schur "
                    "complement). Equivalently, U = torch.linalg.cholesky(Hinv, upper=True) gives the steps "
                    "directly: err = (W[:, i] - q) / U[i, i], W[:, i + 1:] -= err[:, None] * U[i, i + 1:].",
                    "The grid: per row (group_size None), scale and zero point come from W once, after the dead "
                    "columns are zeroed and before any update. With groups, when column i starts a group (i % "
                    "group_size == 0), compute the grid of "
                    "W[:, i:i + group_size] as it is now, after the updates from the earlier columns.")),
)

"""Pruning a language model's Linear layers in exercise 5: Wanda's ``wanda_scores`` and the N:M ``nm_mask``."""
from __future__ import annotations

import torch

from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

F64 = torch.float64

# --- wanda_scores ----------------------------------------------------------------------------------------

WEIGHT = torch.tensor([[0.5, -2.0, 0.1, 1.0], [-0.3, 0.2, -4.0, 0.05]], dtype=F64)
NORM = torch.tensor([10.0, 0.5, 2.0, 0.0], dtype=F64)


def wanda_public() -> list[Case]:
    return [fixed_case("weight=[[0.5, -2, 0.1, 1], [-0.3, 0.2, -4, 0.05]], act_norm=[10, 0.5, 2, 0] (|W_ij| "
                       "times the norm of input j: the small weights on input 0 outscore the large ones on input 1)",
                       (WEIGHT, NORM)),
            fixed_case("a float32 weight with float64 act_norm (the scores are in weight's dtype, float32)",
                       (WEIGHT.float(), NORM)),
            fixed_case("act_norm of 3 values for 4 input columns (must raise ValueError naming act_norm)",
                       (WEIGHT, NORM[:3]), raises="act_norm")]


def wanda_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    w = torch.randn(8, 16, generator=g, dtype=F64)
    x = torch.randn(32, 16, generator=g, dtype=F64)
    return [fixed_case("a random (8, 16) weight, the norms of 32 random tokens", (w, x.norm(dim=0))),
            fixed_case("a random float32 weight", (w.float(), x.norm(dim=0).float())),
            fixed_case("act_norm of shape (16, 1) (must raise ValueError naming act_norm)", (w, x.norm(dim=0)[:, None]),
                       raises="act_norm")]


# --- nm_mask ---------------------------------------------------------------------------------------------

SCORES = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.7, 0.6], [1.0, 2.0, 3.0, 4.0, 8.0, 7.0, 6.0, 5.0]], dtype=F64)


def mask_public() -> list[Case]:
    ties = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.5, 2.0, 2.0, 0.5]], dtype=F64)
    return [fixed_case(f"scores={SCORES.tolist()}, n=2, m=4 (2:4: in each group of 4 consecutive columns, the 2 "
                       "largest)", (SCORES, 2, 4)),
            fixed_case("the same scores, n=4, m=8 (4:8)", (SCORES, 4, 8)),
            fixed_case("scores=[[1, 1, 1, 1, 0.5, 2, 2, 0.5]], n=2, m=4 (ties: the lower column index is kept)",
                       (ties, 2, 4)),
            fixed_case("the same ties, n=1, m=2", (ties, 1, 2)),
            fixed_case("the first scores, n=0, m=4 (nothing kept) ", (SCORES, 0, 4)),
            fixed_case("the first scores, n=4, m=4 (everything kept)", (SCORES, 4, 4)),
            fixed_case("m=3 for 8 columns (must raise ValueError naming m)", (SCORES, 2, 3), raises="m"),
            fixed_case("n=5, m=4 (must raise ValueError naming n)", (SCORES, 5, 4), raises="n")]


def mask_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    s = torch.rand(6, 16, generator=g, dtype=F64)
    ties = torch.randint(0, 3, (6, 16), generator=g).to(F64)
    return [fixed_case(f"random (6, 16) scores, n={n}, m={m}", (s, n, m)) for n, m in ((2, 4), (4, 8), (1, 4),
                                                                                       (8, 16), (3, 4))] + \
        [fixed_case("(6, 16) scores in {0, 1, 2} (many ties), n=2, m=4", (ties, 2, 4)),
         fixed_case("(6, 16) scores in {0, 1, 2}, n=5, m=8", (ties, 5, 8)),
         fixed_case("m=6 for 16 columns (must raise ValueError naming m)", (s, 2, 6), raises="m"),
         fixed_case("n=-1, m=4 (must raise ValueError naming n)", (s, -1, 4), raises="n")]


EXERCISES = (
    Exercise("wanda_scores", "course_lib.llm.sparsity", wanda_public, wanda_hidden,
             hint="Wanda's scores |W_ij| * act_norm_j, in weight's dtype", dtypes=True, rtol=1e-6, atol=1e-12,
             public_points=0.5, hidden_points=1.0,
             hints=("act_norm must have shape (weight.shape[1],): otherwise a ValueError naming act_norm.",
                    "weight.abs() * act_norm.to(weight.dtype): broadcasting multiplies column j by act_norm[j].")),
    Exercise("nm_mask", "course_lib.llm.sparsity", mask_public, mask_hidden,
             hint="a bool mask keeping the n largest scores of every m consecutive entries of a row (ties: the "
                  "lower column index)",
             dtypes=True,
             hints=("m must divide scores.shape[1] (ValueError naming m), and 0 <= n <= m (ValueError naming n).",
                    "groups = scores.reshape(rows, -1, m) puts each group of m on the last dimension.",
                    "torch.topk does not promise which of equal scores it picks; torch.sort(groups, dim=-1, "
                    "descending=True, stable=True) keeps equal scores in column order.",
                    "mask = torch.zeros_like(groups, dtype=torch.bool); mask.scatter_(-1, order[..., :n], True); "
                    "reshape it to scores' shape.")),
)

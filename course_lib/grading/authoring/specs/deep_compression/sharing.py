"""Weight sharing in exercise 4: ``kmeans_codebook`` and ``centroid_gradient``."""
from __future__ import annotations

from typing import Any

import torch

from ...compare import compare_values, describe
from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- kmeans_codebook -------------------------------------------------------------------------------------

def kmeans_public() -> list[Case]:
    w = torch.tensor([-1.0, -0.8, 0.1, 0.3, 2.0])
    return [fixed_case("weight=[-1, -0.8, 0.1, 0.3, 2], bits=1: centroids start at -1 and 2 and end at -0.35 and 2",
                       (w, 1)),
            fixed_case("the same weight, bits=1, iters=0 (the linear initialization and its assignment only)", (w, 1),
                       {"iters": 0}),
            fixed_case("weight=[0, 4, 4, 4, 5.2, 10], bits=1, iters=1: one update (centroids 3 and 7.6) then one "
                       "reassignment (5.2 moves to the first), not converged yet",
                       (torch.tensor([0.0, 4.0, 4.0, 4.0, 5.2, 10.0]), 1), {"iters": 1}),
            fixed_case("weight=[0, 0.1, 0.2, 3], bits=2: centroids start at 0, 1, 2, 3; the clusters of 1 and 2 are "
                       "empty and keep their centroids", (torch.tensor([0.0, 0.1, 0.2, 3.0]), 2)),
            fixed_case("weight=[[0, 0.5, -0.4, 0], [0.9, 0, -0.1, 0.6]], bits=2, skip_zeros=True (code 0 is 0.0 for "
                       "the zeros; the other 3 centroids cluster the non-zero weights)",
                       (torch.tensor([[0.0, 0.5, -0.4, 0.0], [0.9, 0.0, -0.1, 0.6]]), 2), {"skip_zeros": True}),
            fixed_case("weight=[0, 0.2, 0, 0.45, 0.6, 1.4], bits=2, skip_zeros=True, iters=0 (every non-zero weight is "
                       "positive: the linear initialization spans the non-zero weights, 0.2 to 1.4, not 0 to 1.4)",
                       (torch.tensor([0.0, 0.2, 0.0, 0.45, 0.6, 1.4]), 2), {"skip_zeros": True, "iters": 0}),
            fixed_case("bits=0 (must raise ValueError naming bits)", (w, 0), raises="bits")]


def kmeans_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    normal = torch.randn(30, 20, generator=g)
    laplace = torch.log(torch.rand(400, generator=g)) * torch.sign(torch.rand(400, generator=g) - 0.5) * 0.1
    pruned = torch.randn(20, 30, generator=g) * (torch.rand(20, 30, generator=g) > 0.8)
    return [fixed_case("a random (30, 20) weight, bits=3", (normal, 3)),
            fixed_case("a random (30, 20) weight, bits=4, iters=2", (normal, 4), {"iters": 2}),
            fixed_case("400 heavy-tailed weights, bits=5 (empty clusters between the outliers)", (laplace, 5)),
            fixed_case("a random (20, 30) weight with 80% zeros, bits=3, skip_zeros=True", (pruned, 3),
                       {"skip_zeros": True}),
            fixed_case("the same weight, bits=2, skip_zeros=False (the zeros are clustered like any weight)",
                       (pruned, 2)),
            fixed_case("a random (20, 30) weight with 80% zeros, all its non-zero weights positive, bits=3, "
                       "skip_zeros=True", (pruned.abs(), 3), {"skip_zeros": True}),
            fixed_case("a (3, 4) weight of zeros only, bits=2, skip_zeros=True (every centroid 0.0, every index 0)",
                       (torch.zeros(3, 4), 2), {"skip_zeros": True}),
            fixed_case("a float64 random (30, 20) weight, bits=3 (the code book is float64)", (normal.double(), 3)),
            fixed_case("bits=17 (must raise ValueError naming bits)", (normal, 17), raises="bits")]


def compare_codebook(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """``None`` if ``got`` is ``(codebook, indices)`` with the reference's centroids and assignment (an index may
    differ only where the weight is, within float32 rounding, as close to both centroids)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"returned {describe(got)}, expected a tuple (codebook, indices)"
    codebook, indices = got
    if isinstance(codebook, torch.Tensor) and isinstance(indices, torch.Tensor) and not codebook.is_floating_point() \
            and indices.is_floating_point():
        return (f"returned ({describe(codebook)}, {describe(indices)}): integer indices first, then a float code "
                f"book; expected (codebook, indices) in that order: ({describe(expected[0])}, {describe(expected[1])})")
    msg = compare_values(codebook, expected[0], rtol=1e-4, atol=1e-6, where="the code book", dtypes=True)
    if msg:
        return msg
    if not isinstance(indices, torch.Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
        return f"returned {describe(indices)} as the indices, expected an integer tensor {describe(expected[1])}"
    if indices.shape != expected[1].shape:
        return (f"returned indices of shape {tuple(indices.shape)}: {describe(indices)}; expected the weight's shape "
                f"{tuple(expected[1].shape)}: {describe(expected[1])}")
    if bool(((indices < 0) | (indices >= len(expected[0]))).any()):
        return f"returned indices outside [0, {len(expected[0])}): {describe(indices)}"
    weight = args[0].detach().double()
    centroids = expected[0].double()
    differ = indices != expected[1]
    mine, theirs = (weight - centroids[indices]).abs(), (weight - centroids[expected[1]]).abs()
    tie = (mine - theirs).abs() <= 1e-6 * (1 + weight.abs())
    if bool((differ & ~tie).any()):
        return compare_values(indices, expected[1], rtol=0.0, atol=0.0, where="the indices")
    return None


# --- centroid_gradient -----------------------------------------------------------------------------------

G = torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
INDICES = torch.tensor([[0, 1, 1], [2, 1, 0]])


def centroid_public() -> list[Case]:
    return [fixed_case("weight_grad=[[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], indices=[[0, 1, 1], [2, 1, 0]], codes=4 "
                       "(sums: -0.5, 0.6, 0.4, and 0 for the unused code 3)", (G, INDICES, 4)),
            fixed_case("the same, skip_zeros=True (code 0 is the pinned zero: its gradient is 0)", (G, INDICES, 4),
                       {"skip_zeros": True}),
            fixed_case("the same gradient in float64 (the result is float64)", (G.double(), INDICES, 4)),
            fixed_case("indices of shape (3, 2) for a (2, 3) gradient (must raise ValueError naming indices)",
                       (G, INDICES.reshape(3, 2), 4), raises="indices"),
            fixed_case("an index 4 with codes=4 (must raise ValueError naming indices)", (G, INDICES + 2, 4),
                       raises="indices")]


def centroid_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    grad = torch.randn(100, 78, generator=g) * 1e-3
    idx = torch.randint(0, 32, (100, 78), generator=g)
    conv = torch.randn(8, 4, 3, 3, generator=g)
    return [fixed_case("a random (100, 78) gradient, 32 codes", (grad, idx, 32)),
            fixed_case("the same, skip_zeros=True", (grad, idx, 32), {"skip_zeros": True}),
            fixed_case("a (8, 4, 3, 3) conv gradient, 4 codes",
                       (conv, torch.randint(0, 4, conv.shape, generator=g), 4)),
            fixed_case("a float64 gradient, 256 codes, most unused", (grad.double(), idx, 256)),
            fixed_case("a negative index (must raise ValueError naming indices)", (grad, idx - 1, 32),
                       raises="indices"),
            fixed_case("a flattened index tensor (must raise ValueError naming indices)", (grad, idx.reshape(-1), 32),
                       raises="indices")]


EXERCISES = (
    Exercise("kmeans_codebook", "course_lib.quantization", kmeans_public, kmeans_hidden,
             hint="a code book of 2**bits centroids from 1-D k-means with linear initialization, and the index of "
                  "each weight's centroid",
             compare=compare_codebook, public_points=1.0, hidden_points=3.0,
             hints=("bits outside [1, 16] is a ValueError naming bits. Work on weight.detach().reshape(-1) in "
                    "float64; with skip_zeros only on the non-zero entries, with 2**bits - 1 centroids.",
                    "Linear initialization: torch.linspace(values.min().item(), values.max().item(), k, "
                    "dtype=torch.float64).",
                    "Assignment: the nearest centroid, (values[:, None] - centroids[None, :]).abs().argmin(1) "
                    "(argmin picks the lower index on a tie).",
                    "Update: each centroid becomes the mean of its cluster: sums with torch.zeros(k, "
                    "dtype=torch.float64).index_add_(0, assignment, values), counts with torch.bincount("
                    "assignment, minlength=k); a centroid with count 0 keeps its value (torch.where).",
                    "Loop up to iters times: update, reassign, stop when the assignment did not change. With "
                    "skip_zeros, code 0 is 0.0 and the non-zero entries get their cluster index + 1. Return the "
                    "code book in weight's dtype (.to(weight.dtype)).")),
    Exercise("centroid_gradient", "course_lib.compression.sharing", centroid_public,
             centroid_hidden,
             hint="the gradient of each centroid: the sum of the gradients of the weights in its cluster (0 for "
                  "code 0 with skip_zeros)",
             dtypes=True,
             hints=("Check first: indices must have weight_grad's shape and lie in [0, codes) (ValueError naming "
                    "indices).",
                    "Flatten both, then torch.zeros(codes, dtype=weight_grad.dtype).index_add_(0, indices, "
                    "weight_grad) adds each gradient into its centroid's entry (a sum, not a mean).",
                    "With skip_zeros, set entry 0 to 0.")),
)

"""The masks and scores of exercise 2: ``magnitude_mask``, ``global_magnitude_masks``, ``taylor_importance`` and
``channel_l1_norms``."""
from __future__ import annotations

import torch

from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- magnitude_mask --------------------------------------------------------------------------------------

def mask_public() -> list[Case]:
    w = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    v = torch.tensor([-3.0, 1.0, -2.0, 4.0, 0.5])
    u = torch.tensor([0.4, -0.1, 0.3, 0.25, -0.5])
    return [fixed_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.5 (the two smallest |w|: 0.1 and -0.2)",
                       (w, 0.5)),
            fixed_case("weight=[-3, 1, -2, 4, 0.5], sparsity=0.6 (3 zeros: 0.5, 1 and -2)", (v, 0.6)),
            fixed_case("weight=[0.4, -0.1, 0.3, 0.25, -0.5], sparsity=0.5 (round(2.5) = 2 zeros)", (u, 0.5)),
            fixed_case("the same weight, sparsity=0.3 (round(1.5) = 2 zeros)", (u, 0.3)),
            fixed_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.0 (keep everything)", (w, 0.0)),
            fixed_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=1.0 (prune everything)", (w, 1.0)),
            fixed_case("sparsity=1.5 (must raise ValueError naming sparsity)", (w, 1.5), raises="sparsity")]


def mask_hidden(seed: int) -> list[Case]:
    cases = []
    for i, (shape, sparsity) in enumerate([((10, 10), 0.9), ((20, 30), 0.5), ((8, 4, 3, 3), 0.95), ((50,), 1.0),
                                           ((6, 7), 0.0), ((300, 100), 0.8), ((5,), 0.5)]):
        w = torch.randn(shape, generator=generator(seed + i))
        cases.append(fixed_case(f"a random weight of shape {shape}, sparsity={sparsity}", (w, sparsity)))
    w = torch.randn(4, 4, generator=generator(seed))
    cases += [fixed_case("sparsity=-0.1 (must raise ValueError naming sparsity)", (w, -0.1), raises="sparsity"),
              fixed_case("sparsity=2.0 (must raise ValueError naming sparsity)", (w, 2.0), raises="sparsity")]
    return cases


# --- global_magnitude_masks ------------------------------------------------------------------------------

def _global_case(text: str, weights: list[torch.Tensor], sparsity: float) -> Case:
    return Case(text, lambda: (([w.clone() for w in weights], sparsity), {}))


def global_public() -> list[Case]:
    a = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    b = torch.tensor([2.0, -0.05, 1.0])
    conv = torch.tensor([[[[0.6]], [[-0.02]]], [[[0.35]], [[-0.8]]]])
    return [_global_case("weights=[[[0.1, -0.5], [0.3, -0.2]], [2, -0.05, 1]], sparsity=0.5: round(3.5) = 4 zeros "
                         "over both (0.05, 0.1, 0.2 and 0.3), not 2 per tensor", [a, b], 0.5),
            _global_case("the same weights and a conv weight [[[[0.6]], [[-0.02]]], [[[0.35]], [[-0.8]]]] of shape "
                         "(2, 2, 1, 1), sparsity=0.25 (3 zeros)",
                         [a, b, conv], 0.25),
            _global_case("the same weights, sparsity=0.0", [a, b], 0.0)]


def global_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    layers = [torch.randn(16, 1, 3, 3, generator=g) * 0.5, torch.randn(32, 16, 3, 3, generator=g) * 0.1,
              torch.randn(10, 128, generator=g) * 0.05]
    cases = [_global_case(f"three layers of scales 0.5, 0.1 and 0.05, sparsity={s}", layers, s)
             for s in (0.5, 0.9, 0.95)]
    cases.append(_global_case("one layer alone, sparsity=0.8 (same as magnitude_mask)",
                              [torch.randn(20, 20, generator=g)], 0.8))
    cases.append(_global_case("two layers, sparsity=1.0", [torch.randn(5, 5, generator=g), torch.randn(7, generator=g)],
                              1.0))
    return cases


# --- taylor_importance -----------------------------------------------------------------------------------

def taylor_public() -> list[Case]:
    return [fixed_case("weight=[0.5, -2, 1], grad=[0.1, 0.1, -3]",
                       (torch.tensor([0.5, -2.0, 1.0]), torch.tensor([0.1, 0.1, -3.0]))),
            fixed_case("weight=[-0.5, 3, 0], grad=[0.4, -0.01, 7] (a zero weight scores 0, whatever its gradient)",
                       (torch.tensor([-0.5, 3.0, 0.0]), torch.tensor([0.4, -0.01, 7.0])))]


def taylor_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(10, 20), (8, 4, 3, 3), (100,)]):
        g = generator(seed + i)
        cases.append(fixed_case(f"random weight and gradient of shape {shape}",
                                (torch.randn(shape, generator=g), torch.randn(shape, generator=g) * 1e-2)))
    return cases


# --- channel_l1_norms ------------------------------------------------------------------------------------

def channel_public() -> list[Case]:
    w = torch.arange(-8.0, 8.0).reshape(2, 2, 2, 2)
    return [fixed_case("conv_weight = arange(-8, 8) of shape (2, 2, 2, 2): norms 36 and 28 (sum over all but dim 0)",
                       (w,))]


def channel_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(8, 3, 3, 3), (16, 8, 1, 1), (4, 2, 5, 5)]):
        w = torch.randn(shape, generator=generator(seed + i))
        cases.append(fixed_case(f"a random conv weight of shape {shape}", (w,)))
    return cases


EXERCISES = (
    Exercise("magnitude_mask", "course_lib.pruning", mask_public, mask_hidden,
             hint="a mask of weight's shape: 0.0 at the round(sparsity * numel) entries of smallest |weight|, "
                  "1.0 elsewhere",
             hints=("k = round(sparsity * weight.numel()) entries go; Python's round(2.5) is 2, and a sparsity "
                    "outside [0, 1] is a ValueError you raise before anything else.",
                    "Work on the flat magnitudes weight.detach().abs().reshape(-1): torch.topk(..., k, "
                    "largest=False).indices are the positions of the k smallest.",
                    "Start from torch.ones_like(weight) and set those positions of mask.view(-1) to 0. "
                    "Comparing with a threshold instead zeroes a different number of entries when the k-th "
                    "smallest value is (or is not) included.")),
    Exercise("global_magnitude_masks", "course_lib.pruning", global_public, global_hidden,
             hint="one mask per tensor, from a single magnitude threshold over all the tensors together",
             hints=("Treat all the tensors as one long vector: which round(sparsity * N) entries of it are the "
                    "smallest?",
                    "torch.cat of the flattened |w|, then your magnitude_mask on that vector.",
                    "Cut the long mask back with .split([w.numel() for w in weights]) and reshape each piece to "
                    "its tensor's shape.")),
    Exercise("taylor_importance", "course_lib.pruning", taylor_public, taylor_hidden,
             hint="the first-order Taylor importance |w_i g_i| of each weight, elementwise",
             public_points=0.5, hidden_points=1.0),
    Exercise("channel_l1_norms", "course_lib.pruning", channel_public, channel_hidden,
             hint="the l1 norm of each output filter, shape (C_out,)", public_points=0.5, hidden_points=1.0),
)

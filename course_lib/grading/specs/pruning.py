"""Exercise 2, pruning: ``magnitude_mask``, ``global_magnitude_masks``, ``taylor_importance``, ``channel_l1_norms``.

References: :mod:`course_lib.pruning`. Convention: at sparsity $s$ exactly ``round(s * n)`` of the
``n`` entries are zeroed (Python's ``round``); masks hold 0 and 1 (``bool`` masks are accepted).
Hidden cases: random Linear and Conv weights (no ties in ``|w|``), sparsities 0, 0.5, 0.9, 0.95
and 1, layers of very different scales for the global threshold.
"""
from __future__ import annotations

import torch

from ..spec import Assignment, Case, Exercise


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tensor_case(text: str, *tensors: torch.Tensor, extra: tuple = ()) -> Case:
    return Case(text, lambda: (tuple(t.clone() for t in tensors) + extra, {}))


# --- magnitude_mask ----------------------------------------------------------------------------

def mask_public() -> list[Case]:
    w = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    return [_tensor_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.5", w, extra=(0.5,)),
            _tensor_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.0 (keep everything)", w, extra=(0.0,)),
            _tensor_case("weight=[-3, 1, -2, 4, 0.5], sparsity=0.6", torch.tensor([-3.0, 1.0, -2.0, 4.0, 0.5]),
                         extra=(0.6,))]


def mask_hidden(seed: int) -> list[Case]:
    cases = []
    for i, (shape, sparsity) in enumerate([((10, 10), 0.9), ((20, 30), 0.5), ((8, 4, 3, 3), 0.95), ((50,), 1.0),
                                           ((6, 7), 0.0), ((300, 100), 0.8)]):
        w = torch.randn(shape, generator=_gen(seed + i))
        cases.append(_tensor_case(f"a random weight of shape {shape}, sparsity={sparsity}", w, extra=(sparsity,)))
    return cases


# --- global_magnitude_masks --------------------------------------------------------------------

def _global_case(text: str, weights: list[torch.Tensor], sparsity: float) -> Case:
    return Case(text, lambda: (([w.clone() for w in weights], sparsity), {}))


def global_public() -> list[Case]:
    a = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    b = torch.tensor([2.0, -0.05, 1.0])
    return [_global_case("weights=[[[0.1, -0.5], [0.3, -0.2]], [2, -0.05, 1]], sparsity=0.4 (one threshold for both)",
                         [a, b], 0.4),
            _global_case("the same weights, sparsity=0.0", [a, b], 0.0)]


def global_hidden(seed: int) -> list[Case]:
    g = _gen(seed)
    layers = [torch.randn(16, 1, 3, 3, generator=g) * 0.5, torch.randn(32, 16, 3, 3, generator=g) * 0.1,
              torch.randn(10, 128, generator=g) * 0.05]
    cases = [_global_case(f"three layers of scales 0.5, 0.1 and 0.05, sparsity={s}", layers, s)
             for s in (0.5, 0.9, 0.95)]
    cases.append(_global_case("one layer alone, sparsity=0.8 (same as magnitude_mask)",
                              [torch.randn(20, 20, generator=g)], 0.8))
    cases.append(_global_case("two layers, sparsity=1.0", [torch.randn(5, 5, generator=g), torch.randn(7, generator=g)],
                              1.0))
    return cases


# --- taylor_importance -------------------------------------------------------------------------

def taylor_public() -> list[Case]:
    return [_tensor_case("weight=[0.5, -2, 1], grad=[0.1, 0.1, -3]", torch.tensor([0.5, -2.0, 1.0]),
                         torch.tensor([0.1, 0.1, -3.0]))]


def taylor_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(10, 20), (8, 4, 3, 3), (100,)]):
        g = _gen(seed + i)
        cases.append(_tensor_case(f"random weight and gradient of shape {shape}", torch.randn(shape, generator=g),
                                  torch.randn(shape, generator=g) * 1e-2))
    return cases


# --- channel_l1_norms --------------------------------------------------------------------------

def channel_public() -> list[Case]:
    w = torch.arange(-8.0, 8.0).reshape(2, 2, 2, 2)
    return [_tensor_case("conv_weight = arange(-8, 8) of shape (2, 2, 2, 2)", w)]


def channel_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(8, 3, 3, 3), (16, 8, 1, 1), (4, 2, 5, 5)]):
        cases.append(_tensor_case(f"a random conv weight of shape {shape}", torch.randn(shape, generator=_gen(seed + i))))
    return cases


ASSIGNMENT = Assignment(
    name="pruning",
    title="Pruning",
    exercises=(
        Exercise("magnitude_mask", "course_lib.pruning:magnitude_mask", mask_public, mask_hidden,
                 hint="zero the round(sparsity * numel) entries of smallest |weight| (torch.topk helps), 1 elsewhere"),
        Exercise("global_magnitude_masks", "course_lib.pruning:global_magnitude_masks", global_public, global_hidden,
                 hint="concatenate all |w| into one vector, find the round(sparsity * N) smallest, split back"),
        Exercise("taylor_importance", "course_lib.pruning:taylor_importance", taylor_public, taylor_hidden,
                 hint="the magnitude of weight times gradient, elementwise", public_points=0.5, hidden_points=1.0),
        Exercise("channel_l1_norms", "course_lib.pruning:channel_l1_norms", channel_public, channel_hidden,
                 hint="sum |w| over every dimension but the first (output channels)", public_points=0.5,
                 hidden_points=1.0),
    ),
)

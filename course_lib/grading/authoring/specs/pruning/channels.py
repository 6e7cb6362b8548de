"""Structured pruning in exercise 2: ``channels_to_keep`` and the Conv-BN-Conv surgery ``remove_channels``."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...compare import compare_values, describe
from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- channels_to_keep ------------------------------------------------------------------------------------

def _keep_case(text: str, scores: list[float] | torch.Tensor, sparsity: float, raises: str | None = None) -> Case:
    return fixed_case(text, (torch.as_tensor(scores, dtype=torch.float32), sparsity), raises=raises)


def keep_public() -> list[Case]:
    scores = [3.0, 1.0, 4.0, 1.5, 9.0, 2.0]
    return [_keep_case("scores=[3, 1, 4, 1.5, 9, 2], sparsity=0.5 (remove 1, 1.5 and 2: keep [0, 2, 4], in increasing "
                       "order)", scores, 0.5),
            _keep_case("the same scores, sparsity=0.25 (round(1.5) = 2 channels removed)", scores, 0.25),
            _keep_case("the same scores, sparsity=0.0 (keep every channel)", scores, 0.0),
            _keep_case("scores=[0.5, 0.2, 0.9, 0.1], sparsity=0.9 (round(3.6) = 4: nothing left, must raise "
                       "ValueError naming sparsity)", [0.5, 0.2, 0.9, 0.1], 0.9, "sparsity"),
            _keep_case("sparsity=1.0 (must raise ValueError naming sparsity)", scores, 1.0, "sparsity")]


def keep_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    return [_keep_case("32 random scores, sparsity=0.5", torch.rand(32, generator=g), 0.5),
            _keep_case("64 random scores, sparsity=0.75", torch.rand(64, generator=g), 0.75),
            _keep_case("7 random scores, sparsity=0.3", torch.rand(7, generator=g), 0.3),
            _keep_case("10 random scores, sparsity=0.95 (round(9.5) = 10: must raise ValueError naming sparsity)",
                       torch.rand(10, generator=g), 0.95, "sparsity"),
            _keep_case("sparsity=-0.2 (must raise ValueError naming sparsity)", torch.rand(5, generator=g), -0.2,
                       "sparsity")]


# --- remove_channels -------------------------------------------------------------------------------------

def _surgery_case(text: str, seed: int, keep: list[int], *, channels: int = 6, silent: bool = False,
                  bias: bool = False, stride: int = 1, dilation: int = 1, eps: float = 1e-5, momentum: float = 0.1,
                  raises: str | None = None) -> Case:
    """Conv2d(3, channels) - BatchNorm2d - Conv2d(channels, 5) with random weights and running statistics; with
    ``silent`` the removed channels' BatchNorm scale and shift are 0, so ReLU makes them exactly 0."""
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            conv = nn.Conv2d(3, channels, 3, padding=dilation, dilation=dilation, bias=bias)
            bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
            nxt = nn.Conv2d(channels, 5, 3, stride=stride, padding=1, bias=True)
            with torch.no_grad():
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_()
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                bn.num_batches_tracked.fill_(7)
                if silent:
                    removed = [c for c in range(channels) if c not in keep]
                    bn.weight[removed] = 0.0
                    bn.bias[removed] = 0.0
        return (conv.eval(), bn.eval(), nxt.eval(), torch.tensor(keep, dtype=torch.int64)), {}
    return Case(text, make, raises)


def _block_output(conv: nn.Module, bn: nn.Module, nxt: nn.Module) -> torch.Tensor:
    x = torch.randn(2, 3, 7, 7, generator=generator(0))
    with torch.no_grad():
        return nn.Sequential(conv, bn, nn.ReLU(), nxt).eval()(x)


def surgery_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The smaller block's output in eval mode on a fixed input, its layers' tensors, and the original layers
    after the call (they must not change); ``{"problem": ...}`` if the result is not three such layers."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Conv2d)
    if not isinstance(result, tuple) or len(result) != 3 or not all(isinstance(m, k) for m, k in zip(result, kinds)):
        return {"problem": f"{describe(result)[:120]}, not a tuple (Conv2d, BatchNorm2d, Conv2d)"}
    try:
        output = _block_output(*result)
    except Exception as e:  # noqa: BLE001 - layers of inconsistent sizes
        return {"problem": f"layers that cannot run one after the other ({type(e).__name__}: {str(e)[:200]})"}
    return {"the smaller block's output (eval mode, ReLU after bn)": output,
            "the new layers' tensors": _tensors(result), "the new layers' settings": _settings(result),
            "the original layers after the call": _tensors(args[:3])}


def _settings(layers: tuple) -> dict[str, Any]:
    """What the new layers must copy besides tensors: the convolutions' geometry and bias, BatchNorm's eps and
    momentum, and each layer's train/eval mode."""
    conv, bn, nxt = layers
    geometry = ("kernel_size", "stride", "padding", "dilation")
    return {"conv": [getattr(conv, a) for a in geometry] + [conv.bias is not None, conv.training],
            "bn": [bn.eps, bn.momentum, bn.training],
            "next_conv": [getattr(nxt, a) for a in geometry] + [nxt.bias is not None, nxt.training]}


def _tensors(layers: tuple) -> dict[str, torch.Tensor]:
    """The parameters and running statistics of (conv, bn, next_conv) by name (BatchNorm's batch count left out:
    it changes nothing the layers compute)."""
    return {f"{n}.{k}": v.detach() for n, m in zip(("conv", "bn", "next_conv"), layers)
            for k, v in m.state_dict().items() if k != "num_batches_tracked"}


def compare_surgery(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    if isinstance(got, dict) and "problem" in got:
        return f"returned {got['problem']}"
    return compare_values(got, expected, rtol=1e-5, atol=1e-6)


def surgery_public() -> list[Case]:
    return [_surgery_case("Conv2d(3, 6) - BatchNorm2d(6) - Conv2d(6, 5), keep=[0, 2, 3, 5]; channels 1 and 4 are "
                          "silent (their BatchNorm scale and shift are 0): the output must equal the original "
                          "block's", 0, [0, 2, 3, 5], silent=True),
            _surgery_case("keep=[1, 4], conv with dilation 2, BatchNorm with eps=0.1 and momentum 0.3 (removed "
                          "channels not silent: the output changes; the running statistics and eps matter in eval "
                          "mode)", 1, [1, 4], dilation=2, eps=0.1, momentum=0.3),
            _surgery_case("conv with a bias, next_conv with stride 2, keep=[5, 0, 3] (new channels in this order)", 2,
                          [5, 0, 3], bias=True, stride=2),
            _surgery_case("keep=[0, 6] with 6 channels (must raise ValueError naming keep)", 3, [0, 6], raises="keep"),
            _surgery_case("keep=[2, 2] (must raise ValueError naming keep)", 4, [2, 2], raises="keep")]


def surgery_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    keep16 = torch.randperm(16, generator=g)[:9].sort().values.tolist()
    keep8 = torch.randperm(8, generator=g)[:3].tolist()
    return [_surgery_case("16 channels, 9 kept at random, the removed ones silent", seed + 1, keep16, channels=16,
                          silent=True),
            _surgery_case("8 channels, 3 kept in random order, with biases", seed + 2, keep8, channels=8, bias=True),
            _surgery_case("8 channels, one kept, stride 2", seed + 3, [7], channels=8, stride=2),
            _surgery_case("16 channels, all kept", seed + 4, list(range(16)), channels=16, bias=True),
            _surgery_case("a negative index (must raise ValueError naming keep)", seed + 5, [-1, 2], raises="keep"),
            _surgery_case("an empty keep (must raise ValueError naming keep)", seed + 6, [], raises="keep")]


EXERCISES = (
    Exercise("channels_to_keep", "course_lib.pruning.structured", keep_public, keep_hidden,
             hint="the indices, in increasing order, of the channels left when the round(sparsity * C) lowest "
                  "scores are removed",
             hints=("How many stay? C - round(sparsity * C); if that is less than 1 (or sparsity is outside "
                    "[0, 1)), raise ValueError naming sparsity.",
                    "torch.topk(scores, number kept).indices are the kept channels, ordered by score.",
                    "Sort them (.sort().values): the surgery keeps the remaining channels in their original "
                    "order.")),
    Exercise("remove_channels", "course_lib.pruning.surgery", surgery_public, surgery_hidden,
             hint="new, smaller (conv, bn, next_conv) holding only the output channels keep of conv; the "
                  "originals stay unchanged",
             observe=surgery_observe, compare=compare_surgery, public_points=1.0, hidden_points=3.0,
             hints=("Check keep first: every index in [0, conv.out_channels), none repeated, at least one "
                    "(ValueError naming keep).",
                    "Build new layers with the same settings: nn.Conv2d(in, out, conv.kernel_size, conv.stride, "
                    "conv.padding, conv.dilation, bias=conv.bias is not None), and nn.BatchNorm2d(len(keep), "
                    "bn.eps, bn.momentum).",
                    "The first conv loses output channels: weight[keep] (dim 0) and bias[keep]. The second loses "
                    "input channels: weight[:, keep] (dim 1); its bias stays whole.",
                    "The BatchNorm has four per-channel tensors, not two: weight, bias, running_mean and "
                    "running_var, each [keep]. In eval mode the running statistics are what it computes with.",
                    "Copy inside torch.no_grad() with .copy_(...), and return the three new layers in eval mode "
                    "if the originals were (.train(conv.training)).")),
)

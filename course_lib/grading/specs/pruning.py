"""Exercise 2, pruning: masks, the global threshold, importance scores, the masked training step, the sensitivity
scan, channel selection and the Conv-BN-Conv surgery.

References: :mod:`course_lib.pruning` (:func:`~course_lib.pruning.masked_training.masked_step` and
:func:`~course_lib.pruning.surgery.remove_channels` were written for this exercise). Convention: at
sparsity $s$ exactly ``round(s * n)`` of the ``n`` entries are zeroed (Python's ``round``, half to even);
masks hold 0 and 1 (``bool`` masks are accepted). Every rule the notebook states has a public case; the
errors it names have public and hidden cases. The public cases of ``taylor_importance`` (shape ``(3,)``) and
``channel_l1_norms`` (shape ``(2, 2, 2, 2)``) and the absence of error cases for them and for
``global_magnitude_masks`` are relied on by ``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..spec import Assignment, Case, Exercise, Question, compare_values, describe, generator


def _tensor_case(text: str, *tensors: torch.Tensor, extra: tuple = (), raises: str | None = None) -> Case:
    return Case(text, lambda: (tuple(t.clone() for t in tensors) + extra, {}), raises)


# --- magnitude_mask ----------------------------------------------------------------------------

def mask_public() -> list[Case]:
    w = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    v = torch.tensor([-3.0, 1.0, -2.0, 4.0, 0.5])
    u = torch.tensor([0.4, -0.1, 0.3, 0.25, -0.5])
    return [_tensor_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.5 (the two smallest |w|: 0.1 and -0.2)", w,
                         extra=(0.5,)),
            _tensor_case("weight=[-3, 1, -2, 4, 0.5], sparsity=0.6 (3 zeros: 0.5, 1 and -2)", v, extra=(0.6,)),
            _tensor_case("weight=[0.4, -0.1, 0.3, 0.25, -0.5], sparsity=0.5 (round(2.5) = 2 zeros)", u, extra=(0.5,)),
            _tensor_case("the same weight, sparsity=0.3 (round(1.5) = 2 zeros)", u, extra=(0.3,)),
            _tensor_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=0.0 (keep everything)", w, extra=(0.0,)),
            _tensor_case("weight=[[0.1, -0.5], [0.3, -0.2]], sparsity=1.0 (prune everything)", w, extra=(1.0,)),
            _tensor_case("sparsity=1.5 (must raise ValueError naming sparsity)", w, extra=(1.5,), raises="sparsity")]


def mask_hidden(seed: int) -> list[Case]:
    cases = []
    for i, (shape, sparsity) in enumerate([((10, 10), 0.9), ((20, 30), 0.5), ((8, 4, 3, 3), 0.95), ((50,), 1.0),
                                           ((6, 7), 0.0), ((300, 100), 0.8), ((5,), 0.5)]):
        w = torch.randn(shape, generator=generator(seed + i))
        cases.append(_tensor_case(f"a random weight of shape {shape}, sparsity={sparsity}", w, extra=(sparsity,)))
    w = torch.randn(4, 4, generator=generator(seed))
    cases += [_tensor_case("sparsity=-0.1 (must raise ValueError naming sparsity)", w, extra=(-0.1,), raises="sparsity"),
              _tensor_case("sparsity=2.0 (must raise ValueError naming sparsity)", w, extra=(2.0,), raises="sparsity")]
    return cases


# --- global_magnitude_masks --------------------------------------------------------------------

def _global_case(text: str, weights: list[torch.Tensor], sparsity: float) -> Case:
    return Case(text, lambda: (([w.clone() for w in weights], sparsity), {}))


def global_public() -> list[Case]:
    a = torch.tensor([[0.1, -0.5], [0.3, -0.2]])
    b = torch.tensor([2.0, -0.05, 1.0])
    conv = torch.tensor([[[[0.6]], [[-0.02]]], [[[0.35]], [[-0.8]]]])
    return [_global_case("weights=[[[0.1, -0.5], [0.3, -0.2]], [2, -0.05, 1]], sparsity=0.5: round(3.5) = 4 zeros "
                         "over both (0.05, 0.1, 0.2 and 0.3), not 2 per tensor", [a, b], 0.5),
            _global_case("the same weights and a conv weight of shape (2, 2, 1, 1), sparsity=0.25 (3 zeros)",
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


# --- taylor_importance -------------------------------------------------------------------------

def taylor_public() -> list[Case]:
    return [_tensor_case("weight=[0.5, -2, 1], grad=[0.1, 0.1, -3]", torch.tensor([0.5, -2.0, 1.0]),
                         torch.tensor([0.1, 0.1, -3.0])),
            _tensor_case("weight=[-0.5, 3, 0], grad=[0.4, -0.01, 7] (a zero weight scores 0, whatever its gradient)",
                         torch.tensor([-0.5, 3.0, 0.0]), torch.tensor([0.4, -0.01, 7.0]))]


def taylor_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(10, 20), (8, 4, 3, 3), (100,)]):
        g = generator(seed + i)
        cases.append(_tensor_case(f"random weight and gradient of shape {shape}", torch.randn(shape, generator=g),
                                  torch.randn(shape, generator=g) * 1e-2))
    return cases


# --- channel_l1_norms --------------------------------------------------------------------------

def channel_public() -> list[Case]:
    w = torch.arange(-8.0, 8.0).reshape(2, 2, 2, 2)
    return [_tensor_case("conv_weight = arange(-8, 8) of shape (2, 2, 2, 2): norms 36 and 28 (sum over all but dim 0)",
                         w)]


def channel_hidden(seed: int) -> list[Case]:
    cases = []
    for i, shape in enumerate([(8, 3, 3, 3), (16, 8, 1, 1), (4, 2, 5, 5)]):
        cases.append(_tensor_case(f"a random conv weight of shape {shape}", torch.randn(shape, generator=generator(seed + i))))
    return cases


# --- masked_step ---------------------------------------------------------------------------------

def _net(batch_norm: bool) -> nn.Sequential:
    # no bias before BatchNorm: its gradient would be rounding noise, which Adam scales up to a full step
    layers = [nn.Linear(6, 12, bias=not batch_norm)] + ([nn.BatchNorm1d(12)] if batch_norm else []) + \
        [nn.ReLU(), nn.Linear(12, 4)]
    return nn.Sequential(*layers)


def _step_case(text: str, seed: int, *, batch_norm: bool = True, optimizer: str = "sgd", sparsity: float = 0.5,
               eval_mode: bool = False, mask_names: tuple[str, ...] | None = None, bad: str | None = None) -> Case:
    """A pruned network whose optimizer already took dense steps (momentum or Adam moments, gradients left in
    ``.grad``), as in fine-tuning after pruning; ``bad`` makes the masks invalid ("name" or "shape")."""
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _net(batch_norm)
            names = mask_names or tuple(n for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2)
            opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3) if optimizer == "sgd"
                   else torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1))
            for _ in range(2):  # dense training before pruning: the optimizer's state is not zero
                x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            params = dict(model.named_parameters())
            masks = {}
            for name in names:
                masks[name] = (torch.rand(params[name].shape) >= sparsity).float()
                with torch.no_grad():
                    params[name].mul_(masks[name])
            inputs, labels = torch.randn(16, 6), torch.randint(0, 4, (16,))
        if bad == "name":
            masks["1.weights"] = masks.pop(names[0])
        elif bad == "shape":
            masks[names[0]] = masks[names[0]].t().contiguous()
        model.train(not eval_mode)
        return (model, masks, inputs, labels, opt), {}
    return Case(text, make, raises="masks" if bad else None)


def step_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned loss, the parameters and buffers after the step, and how many pruned weights are not 0."""
    model, masks = args[0], args[1]
    params = dict(model.named_parameters())
    revived = sum(int(((mask == 0) & (params[name].detach() != 0)).sum()) for name, mask in masks.items())
    return {"the returned loss": result.detach() if isinstance(result, torch.Tensor) else result,
            "the number of pruned weights that are not zero after the step": revived,
            "the model's parameters and buffers after the step": {k: v.detach() for k, v in model.state_dict().items()}}


def step_public() -> list[Case]:
    return [_step_case("a 6-12-4 network with BatchNorm, both weight matrices 50% pruned, SGD with momentum 0.9 and "
                       "weight decay that has already taken dense steps (its momentum would revive pruned weights)", 0),
            _step_case("the same with AdamW (Adam's moments and weight decay would revive them too)", 1,
                       optimizer="adam"),
            _step_case("a network left in eval mode by the caller (the step must train it in train mode)", 2,
                       eval_mode=True),
            _step_case("masks={} (no pruned weight: an ordinary training step)", 3, mask_names=()),
            _step_case("masks names '1.weights', not a parameter (must raise ValueError naming masks)", 4, bad="name"),
            _step_case("a mask of shape (6, 12) for a (12, 6) weight (must raise ValueError naming masks)", 5,
                       bad="shape")]


def step_hidden(seed: int) -> list[Case]:
    return [_step_case("random network with BatchNorm, 90% pruned, SGD with momentum", seed + 1, sparsity=0.9),
            _step_case("no BatchNorm, 75% pruned, AdamW", seed + 2, batch_norm=False, sparsity=0.75, optimizer="adam"),
            _step_case("eval mode on entry, 50% pruned, SGD with momentum", seed + 3, eval_mode=True),
            _step_case("only the first layer pruned", seed + 4, mask_names=("0.weight",), batch_norm=False),
            _step_case("a mask key that is not a parameter (must raise ValueError naming masks)", seed + 5, bad="name"),
            _step_case("a mask of the wrong shape (must raise ValueError naming masks)", seed + 6, bad="shape")]


# --- layer_sensitivity --------------------------------------------------------------------------

def _loader(seed: int, image: bool) -> DataLoader:
    g = generator(seed)
    x = torch.randn(96, 1, 6, 6, generator=g) if image else torch.randn(96, 8, generator=g)
    labels = (x.flatten(1)[:, :3].argmax(1) + (x.flatten(1)[:, 3] > 0).long()) % 3
    return DataLoader(TensorDataset(x, labels), batch_size=32)


def _scan_case(text: str, seed: int, sparsities: list[float], image: bool = False) -> Case:
    def make() -> tuple[tuple, dict]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if image:
                model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
            else:
                model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
            loader = _loader(seed, image)
            opt = torch.optim.Adam(model.parameters(), lr=0.02)
            for _ in range(15):  # a little training, so that pruning visibly costs accuracy
                for x, y in loader:
                    loss = nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        return (model.eval(), loader), {"sparsities": list(sparsities)}
    return Case(text, make, raises="sparsities" if not sparsities else None)


def scan_observe(result: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The returned accuracies, keyed "layer 'name' pruned to sparsity s" when they have the expected structure,
    and the model's parameters after the scan (it must be left as it was)."""
    sparsities = kwargs["sparsities"]
    accuracies = result
    if isinstance(result, dict) and all(isinstance(v, (list, tuple)) and len(v) == len(sparsities)
                                        for v in result.values()):
        accuracies = {f"layer {name!r} pruned to sparsity {s:g}": value for name, values in result.items()
                      for s, value in zip(sparsities, values)}
    return {"the returned accuracies": accuracies,
            "the model's parameters after the scan": {k: v.detach() for k, v in args[0].state_dict().items()}}


def scan_public() -> list[Case]:
    return [_scan_case("a trained 8-16-16-3 network (layers '0', '2', '4') on 96 points, sparsities=[0.0, 0.5, 0.9]",
                       0, [0.0, 0.5, 0.9]),
            _scan_case("a Conv2d + Linear network (layers '0', '3'), sparsities=[0.3, 0.7, 1.0]", 1, [0.3, 0.7, 1.0],
                       image=True),
            _scan_case("sparsities=[] (must raise ValueError naming sparsities)", 2, [])]


def scan_hidden(seed: int) -> list[Case]:
    return [_scan_case("a random trained MLP, sparsities=[0.5, 0.8, 0.9, 0.95, 0.99]", seed + 1,
                       [0.5, 0.8, 0.9, 0.95, 0.99]),
            _scan_case("a random trained CNN, sparsities=[0.9, 0.5]", seed + 2, [0.9, 0.5], image=True),
            _scan_case("a random trained MLP, one sparsity [1.0]", seed + 3, [1.0]),
            _scan_case("sparsities=[] (must raise ValueError naming sparsities)", seed + 4, [])]


# --- channels_to_keep ------------------------------------------------------------------------------

def _keep_case(text: str, scores: list[float] | torch.Tensor, sparsity: float, raises: str | None = None) -> Case:
    s = torch.as_tensor(scores, dtype=torch.float32)
    return Case(text, lambda: ((s.clone(), sparsity), {}), raises)


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


# --- remove_channels -------------------------------------------------------------------------------

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
    return [_surgery_case("Conv2d(3, 6) - BatchNorm2d(6) - Conv2d(6, 5), keep=[0, 2, 3, 5]; channels 1 and 4 are silent "
                          "(their BatchNorm scale and shift are 0): the output must equal the original block's", 0,
                          [0, 2, 3, 5], silent=True),
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


ASSIGNMENT = Assignment(
    name="pruning",
    title="Pruning",
    exercises=(
        Exercise("magnitude_mask", "course_lib.pruning:magnitude_mask", mask_public, mask_hidden,
                 hint="a mask of weight's shape: 0.0 at the round(sparsity * numel) entries of smallest |weight|, "
                      "1.0 elsewhere",
                 hints=("k = round(sparsity * weight.numel()) entries go; Python's round(2.5) is 2, and a sparsity "
                        "outside [0, 1] is a ValueError you raise before anything else.",
                        "Work on the flat magnitudes weight.detach().abs().reshape(-1): torch.topk(..., k, "
                        "largest=False).indices are the positions of the k smallest.",
                        "Start from torch.ones_like(weight) and set those positions of mask.view(-1) to 0. "
                        "Comparing with a threshold instead zeroes a different number of entries when the k-th "
                        "smallest value is (or is not) included.")),
        Exercise("global_magnitude_masks", "course_lib.pruning:global_magnitude_masks", global_public, global_hidden,
                 hint="one mask per tensor, from a single magnitude threshold over all the tensors together",
                 hints=("Treat all the tensors as one long vector: which round(sparsity * N) entries of it are the "
                        "smallest?",
                        "torch.cat of the flattened |w|, then your magnitude_mask on that vector.",
                        "Cut the long mask back with .split([w.numel() for w in weights]) and reshape each piece to "
                        "its tensor's shape.")),
        Exercise("taylor_importance", "course_lib.pruning:taylor_importance", taylor_public, taylor_hidden,
                 hint="the first-order Taylor importance |w_i g_i| of each weight, elementwise",
                 public_points=0.5, hidden_points=1.0),
        Exercise("channel_l1_norms", "course_lib.pruning:channel_l1_norms", channel_public, channel_hidden,
                 hint="the l1 norm of each output filter, shape (C_out,)", public_points=0.5, hidden_points=1.0),
        Exercise("masked_step", "course_lib.pruning.masked_training:masked_step", step_public, step_hidden,
                 hint="one training step (train mode, cross-entropy) after which every masked weight is exactly 0; "
                      "returns the loss before the step",
                 observe=step_observe, public_points=1.0, hidden_points=3.0,
                 hints=("Check masks first: every key must be a name of model.named_parameters() and every mask "
                        "that parameter's shape (ValueError naming masks otherwise).",
                        "The step itself is the usual one: model.train(), loss = F.cross_entropy(model(inputs), "
                        "labels), optimizer.zero_grad(), loss.backward(), optimizer.step().",
                        "Which weights does the step move? All of them: momentum, weight decay and Adam's moments "
                        "do not know about your mask, and the gradient of a zero weight is not zero.",
                        "So multiply the parameters by their masks after optimizer.step(), in place and inside "
                        "torch.no_grad() (an in-place product on a parameter that requires grad raises otherwise).",
                        "Return loss.item().")),
        Exercise("layer_sensitivity", "course_lib.pruning:layer_sensitivity", scan_public, scan_hidden,
                 hint="for each Linear/Conv2d layer, the accuracy with only that layer magnitude-pruned to each "
                      "sparsity; the model is left unchanged",
                 observe=scan_observe,
                 hints=("The layers are the (name, module) pairs of model.named_modules() that are nn.Linear or "
                        "nn.Conv2d; an empty sparsities is a ValueError naming sparsities.",
                        "For one layer and one sparsity: save a copy of its weight, multiply the weight by your "
                        "magnitude_mask (inside torch.no_grad()), evaluate(model, loader).",
                        "Put the saved weight back before the next sparsity and the next layer: each measurement "
                        "prunes exactly one layer, and the model ends as it began.")),
        Exercise("channels_to_keep", "course_lib.pruning.structured:channels_to_keep", keep_public, keep_hidden,
                 hint="the indices, in increasing order, of the channels left when the round(sparsity * C) lowest "
                      "scores are removed",
                 hints=("How many stay? C - round(sparsity * C); if that is less than 1 (or sparsity is outside "
                        "[0, 1)), raise ValueError naming sparsity.",
                        "torch.topk(scores, number kept).indices are the kept channels, ordered by score.",
                        "Sort them (.sort().values): the surgery keeps the remaining channels in their original "
                        "order.")),
        Exercise("remove_channels", "course_lib.pruning.surgery:remove_channels", surgery_public, surgery_hidden,
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
    ),
    questions=(
        Question("revival", "Fine-tuned without the masks, your pruned LeNet-300-100 lost part of its sparsity. Which "
                            "mechanisms of the optimizer move a weight that is exactly zero, and why does re-applying "
                            "the mask after each step (not before it) prevent it?"),
        Question("scores", "Your channel selection ranks the teacher's first-layer filters by their l1 norm, but a "
                           "BatchNorm follows that convolution. Why is the filter's norm a weak score there, and "
                           "which quantity would you rank by instead? Use the numbers you measured."),
        Question("speed", "The 90%-sparse LeNet-300-100 is not faster than the dense one, while the teacher with half "
                          "of its first-layer channels removed is. Explain why, and say what unstructured sparsity "
                          "would need to pay off in time."),
    ),
)

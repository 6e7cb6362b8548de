"""Pruning a trained network in exercise 2: the masked training step ``masked_step`` and the ``layer_sensitivity``
scan."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ...exercise import Case, Exercise
from ...seeds import generator

# --- masked_step -----------------------------------------------------------------------------------------

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
            _step_case("the same with AdamW (Adam's moments would revive them too; weight decay cannot move an "
                       "exact zero)", 1, optimizer="adam"),
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


# --- layer_sensitivity -----------------------------------------------------------------------------------

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


EXERCISES = (
    Exercise("masked_step", "course_lib.pruning.masked_training", step_public, step_hidden,
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
    Exercise("layer_sensitivity", "course_lib.pruning", scan_public, scan_hidden,
             hint="for each Linear/Conv2d layer, the accuracy with only that layer magnitude-pruned to each "
                  "sparsity; the model is left unchanged",
             observe=scan_observe,
             hints=("The layers are the (name, module) pairs of model.named_modules() that are nn.Linear or "
                    "nn.Conv2d; an empty sparsities is a ValueError naming sparsities.",
                    "For one layer and one sparsity: save a copy of its weight, multiply the weight by your "
                    "magnitude_mask (inside torch.no_grad()), evaluate(model, loader).",
                    "Put the saved weight back before the next sparsity and the next layer: each measurement "
                    "prunes exactly one layer, and the model ends as it began.")),
)

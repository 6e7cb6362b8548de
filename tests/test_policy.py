"""The per-layer policy (course_lib.compression.policy): the greedy choice on toys whose answer is known, the budget
counted on the returned model itself, masks and bit widths kept through fine-tuning, and the errors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.compression import apply_policy, choose_policy, make_policy, policy_scan
from course_lib.compression.policy import LayerChoice, Policy
from course_lib.pruning import make_permanent
from course_lib.training import evaluate


class TwoPaths(nn.Module):
    """logits = big(x) + extra(small(x)): ``big`` (40 weights) decides every prediction; ``small`` (40) and
    ``extra`` (25) hold weights of 1e-4, so pruning them changes no prediction."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.big, self.small, self.extra = (nn.Linear(8, 5, bias=False), nn.Linear(8, 5, bias=False),
                                            nn.Linear(5, 5, bias=False))
        with torch.no_grad():
            self.small.weight.fill_(1e-4)
            self.extra.weight.fill_(1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.big(x) + self.extra(self.small(x))


def _toy() -> tuple[nn.Module, DataLoader]:
    model = TwoPaths()
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model.big(x).argmax(1)  # the labels the dense model gets right
    return model, DataLoader(TensorDataset(x, y), batch_size=100)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach() for n, m in make_permanent(model).named_modules() if isinstance(m, nn.Linear)}


def test_the_policy_prunes_the_free_layers_and_spares_the_costly_one():
    model, loader = _toy()
    assert evaluate(model, loader) == 1.0
    # 40 + 40 + 25 weights; keep 55: the 65 weights of small and extra can go for free, big's cannot
    policy = choose_policy(model, loader, budget=55, sparsities=(0.5, 0.9, 0.99))
    assert {n: c.sparsity for n, c in policy.layers.items()} == {"big": 0.0, "small": 0.99, "extra": 0.99}
    assert policy.size <= 55 and policy.estimated_drop == 0.0
    assert evaluate(policy.apply(model), loader) == 1.0
    # uniform pruning at the same budget hurts: half of big's weights go
    uniform = make_policy(model, settings=dict.fromkeys(("big", "small", "extra"), (0.5, 32)))
    assert uniform.size == 20 + 20 + 13 and evaluate(uniform.apply(model), loader) < 1.0


def test_the_greedy_rule_takes_the_least_loss_per_unit_saved():
    """A hand-made metric, drop = c * s**2 with c = 0.1 for "big", 0.5 for "small", 10 for "extra" (40, 40 and 25
    weights). Saving 36: big to 0.5 (0.025 / 20 saved), then to 0.9 (0.056 / 16) beats small (0.125 / 20).
    Saving 20 more: small to 0.5 (0.125 / 20) beats small to 0.9 (0.405 / 36) and extra (2.304 / 12)."""
    model, loader = _toy()
    cost = {"big": 0.1, "small": 0.5, "extra": 10.0}

    def metric(m: nn.Module, _: DataLoader) -> float:
        return 1.0 - sum(cost[n] * float((w == 0).float().mean()) ** 2 for n, w in _weights(m).items())

    policy = choose_policy(model, loader, budget=105 - 36, sparsities=(0.5, 0.9), metric=metric)
    assert {n: c.sparsity for n, c in policy.layers.items()} == {"big": 0.9, "small": 0.0, "extra": 0.0}
    policy = choose_policy(model, loader, budget=105 - 56, sparsities=(0.5, 0.9), metric=metric)
    assert {n: c.sparsity for n, c in policy.layers.items()} == {"big": 0.9, "small": 0.5, "extra": 0.0}


@pytest.mark.parametrize("budget", [30, 50, 70, 90])
def test_the_policy_leaves_no_budget_that_one_layer_could_use_better(budget):
    """After the greedy pass overshoots, the refill pass spends the rest: no single layer's costlier option that
    fits in what is left would lower that layer's measured drop."""
    model, loader = _toy()
    grid = (0.5, 0.7, 0.9, 0.99)
    scan = policy_scan(model, loader, sparsities=grid, bits=())
    policy = choose_policy(model, loader, budget=budget, sparsities=grid, scan=scan)
    left = budget - policy.size
    for name, choice in policy.layers.items():
        n = model.get_submodule(name).weight.numel()
        for s in (0.0, *grid):
            if 0 < round(choice.sparsity * n) - round(s * n) <= left:
                assert scan.accuracy[name][(s, 32)] <= scan.accuracy[name][(choice.sparsity, 32)]


@pytest.mark.parametrize("budget", [30, 60, 90])
def test_a_parameter_budget_holds_on_the_returned_model(budget):
    model, loader = _toy()
    result = choose_policy(model, loader, budget=budget).apply(model)
    assert sum(int((w != 0).sum()) for w in _weights(result).values()) <= budget


@pytest.mark.parametrize("budget", [60, 100, 200])  # the grid reaches 58 bytes at least
def test_a_byte_budget_holds_on_the_returned_model(budget):
    """Bytes counted from the model itself: each row's distinct values must fit the layer's codes (at most
    2**bits), then a bitmask (if any weight is zero), the codes and one float32 scale per row."""
    model, loader = _toy()
    policy = choose_policy(model, loader, budget=budget, unit="bytes", sparsities=(0.5, 0.9), bits=(8, 4, 2))
    total = 0
    for name, w in _weights(policy.apply(model)).items():
        bits = policy.layers[name].bits
        if bits < 32:
            assert max(len(torch.unique(row)) for row in w) <= 2 ** bits
        kept = int((w != 0).sum())
        total += math.ceil((w.numel() * (kept < w.numel()) + bits * kept + 32 * w.shape[0] * (bits < 32)) / 8)
    assert total <= budget


def test_masks_and_bit_widths_stay_in_force_while_the_model_trains():
    model, loader = _toy()
    policy = Policy("bytes", 100, {"big": LayerChoice(0.5, 3, 0), "small": LayerChoice(0.9, 32, 0)})
    tuned = apply_policy(model, policy=policy)
    optimizer = torch.optim.SGD(tuned.parameters(), lr=0.5)
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(tuned(x), y).backward()
        optimizer.step()
    w = _weights(tuned)
    assert int((w["big"] == 0).sum()) >= 20 and int((w["small"] == 0).sum()) >= 36
    assert max(len(torch.unique(row)) for row in w["big"]) <= 2 ** 3
    assert not torch.equal(w["big"], _weights(apply_policy(model, policy=policy))["big"])  # it did train


def test_a_scan_is_reused_and_must_cover_the_grid():
    model, loader = _toy()
    scan = policy_scan(model, loader, sparsities=(0.5,), bits=(4,))
    assert set(scan.accuracy["big"]) == {(0.0, 32), (0.0, 4), (0.5, 32), (0.5, 4)}
    assert choose_policy(model, loader, budget=60, sparsities=(0.5,), scan=scan) == \
        choose_policy(model, loader, budget=60, sparsities=(0.5,))
    with pytest.raises(ValueError, match="scan must cover every option"):
        choose_policy(model, loader, budget=60, sparsities=(0.9,), scan=scan)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"budget": 50, "unit": "flops"}, ValueError, "unit must be one of 'parameters', 'bytes', 'macs', got 'flops'"),
    ({"budget": 0}, ValueError, r"budget must be a finite number > 0 \(the most parameters"),
    ({"budget": "small"}, TypeError, "budget must be a finite number"),
    ({"budget": 50, "sparsities": (0.5,)}, ValueError, "budget must be at least 53 parameters, the smallest this "),
    ({"budget": 50, "sparsities": (1.0,)}, ValueError, r"sparsities entry must be a finite number in \[0, 1\)"),
    ({"budget": 50, "sparsities": 0.5}, TypeError, "sparsities must be an iterable"),
    ({"budget": 50, "unit": "bytes", "bits": (1,)}, ValueError, r"bits entries must be integers in \[2, 16\] or 32"),
    ({"budget": 50, "unit": "bytes", "bits": (4.0,)}, TypeError, "bits entries must be integers"),
    ({"budget": 50, "layers": ["nope"]}, ValueError, "layers must name Linear/Conv2d layers of the model"),
    ({"budget": 50, "scan": {}}, TypeError, "scan must be a Scan from policy_scan or None, got dict"),
])
def test_bad_arguments_are_refused_with_clear_messages(kwargs, error, message):
    model, loader = _toy()
    with pytest.raises(error, match=message):
        choose_policy(model, loader, sparsities=kwargs.pop("sparsities", (0.99,)), **kwargs)


def test_apply_policy_and_make_policy_refuse_bad_arguments():
    model, _ = _toy()
    with pytest.raises(TypeError, match="policy must be a Policy from choose_policy, got dict"):
        apply_policy(model, policy={"big": (0.5, 4)})
    with pytest.raises(ValueError, match="the layers of policy must name Linear/Conv2d layers"):
        apply_policy(model, policy=Policy("parameters", 1, {"fc": LayerChoice(0.5, 32, 1)}))
    with pytest.raises(TypeError, match=r"settings\['big'\] must be a pair \(sparsity, bits\)"):
        make_policy(model, settings={"big": 0.5})
    with pytest.raises(ValueError, match="the keys of settings must name"):
        make_policy(model, settings={"fc": (0.5, 32)})


def _budget(uniform: float, global_: float, policy: float, sizes: tuple[int, int, int] = (100, 100, 99)) -> dict:
    return {"budget": 100, **{m: {"accuracy": a, "size": s} for m, a, s in
                              zip(("uniform", "global", "policy"), (uniform, global_, policy), sizes)}}


def test_the_sections_claims_read_hand_made_figures():
    from course_lib.benchmark.figures import REGISTRY

    section = REGISTRY["pruning_policy"]
    target, within = section.claims
    figures = {"teacher": {"dense": 0.98, "parameters": {"0.9": _budget(0.975, 0.98, 0.98),   # uniform loses 0.5
                                                         "0.95": _budget(0.90, 0.97, 0.93)}}}  # loses 8, gains 3
    assert target.check(figures)[1] is True and within.check(figures)[1] is True
    figures["teacher"]["parameters"]["0.98"] = _budget(0.50, 0.90, 0.505, (100, 100, 101))  # gains 0.5, over budget
    assert target.check(figures)[1] is False and within.check(figures)[1] is False
    assert "over: teacher 0.98" in within.check(figures)[0]
    assert target.check({}) is None and section.tables({})
    assert "90.0%" in section.tables(figures)[0]


@pytest.mark.slow  # scans and fine-tunes the zoo teacher and LeNet-300-100 on a few batches
def test_quick_run_returns_the_contract():
    from course_lib.benchmark import pruning_policy as section

    result = section.run(quick=True, seeds=1)
    for name in section.MODELS:
        entry = result[name]
        assert entry["scan"]["sparsities"] == [0.0, *section.QUICK_SPARSITIES]
        assert set(entry["scan"]["accuracy"]) == set(entry["weights"])
        for unit in ("parameters", "bytes"):
            for budget in entry[unit].values():
                assert budget["policy"]["size"] <= budget["budget"]
                assert all(len(budget[m]["accuracy_per_seed"]) == 1 for m in section.METHODS)

"""course_lib.acceleration against independent references: PyTorch's own fusion, the SVD formulae,
single-process SGD."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn
from torch.ao.quantization import fuse_modules
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from torch.utils.data import TensorDataset

from course_lib.acceleration import (
    batch_throughput,
    compiling,
    ddp_train,
    factorize_linears,
    fold_batchnorm,
    kernel_times,
    low_rank_linear,
    max_param_diff,
    rank_for_energy,
    single_process_train,
    thread_latency,
    to_channels_last,
    try_compile,
)
from course_lib.acceleration.folding import _folded_weights
from course_lib.models import build_model


def _random_bn(bn: nn.BatchNorm2d, generator: torch.Generator) -> nn.BatchNorm2d:
    c = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=generator))
        bn.running_var.copy_(torch.rand(c, generator=generator) * 2 + 0.1)
        bn.weight.copy_(torch.randn(c, generator=generator))
        bn.bias.copy_(torch.randn(c, generator=generator))
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_folding_formula_matches_pytorch_fuse_conv_bn_eval(bias):
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=bias).eval()
    bn = _random_bn(nn.BatchNorm2d(5, eps=1e-3), g)
    reference = fuse_conv_bn_eval(conv, bn)
    weight, b = _folded_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)
    torch.testing.assert_close(weight, reference.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b, reference.bias, rtol=1e-6, atol=1e-6)
    folded = fold_batchnorm(nn.Sequential(conv, bn))[0]
    torch.testing.assert_close(folded.weight, reference.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(folded.bias, reference.bias, rtol=1e-6, atol=1e-6)


def test_linear_batchnorm1d_folding_matches_pytorch_fuse_linear_bn_eval():
    g = torch.Generator().manual_seed(2)
    linear = nn.Linear(6, 4, bias=False).eval()
    bn = _random_bn(nn.BatchNorm1d(4), g)
    reference = fuse_linear_bn_eval(linear, bn)
    folded = fold_batchnorm(nn.Sequential(linear, bn, nn.ReLU()))
    assert isinstance(folded[1], nn.Identity)
    torch.testing.assert_close(folded[0].weight, reference.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(folded[0].bias, reference.bias, rtol=1e-6, atol=1e-6)


def test_fold_batchnorm_of_a_pruned_conv_matches_pytorch_fusion_of_its_masked_weight():
    """Before: the fused copy of a parametrized conv took its new weight through the mask's missing right_inverse."""
    from course_lib.pruning import magnitude_prune, make_permanent

    g = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), _random_bn(nn.BatchNorm2d(4), g)).eval()
    pruned = magnitude_prune(model, sparsity=0.5)
    reference = fuse_conv_bn_eval(make_permanent(pruned)[0], pruned[1])
    folded = fold_batchnorm(pruned)[0]
    assert not torch.nn.utils.parametrize.is_parametrized(folded)
    torch.testing.assert_close(folded.weight, reference.weight, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(folded.bias, reference.bias, rtol=1e-6, atol=1e-6)
    assert torch.nn.utils.parametrize.is_parametrized(pruned[0], "weight")  # the argument keeps its mask


def test_folding_formula_hand_case():
    # one 1x1 conv channel, weight 2, bias 1; BN: mean 3, var 4 - eps, gamma 5, beta 6 -> s = 5/2
    weight, bias = _folded_weights(torch.full((1, 1, 1, 1), 2.0), torch.tensor([1.0]), torch.tensor([3.0]),
                                   torch.tensor([4.0 - 1e-5]), torch.tensor([5.0]), torch.tensor([6.0]), 1e-5)
    assert weight.item() == pytest.approx(5.0)
    assert bias.item() == pytest.approx((1 - 3) * 2.5 + 6)


def test_fold_batchnorm_rejects_a_non_module():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got 'teacher'"):
        fold_batchnorm("teacher")


def test_fold_batchnorm_model_matches_eval_and_torch_fuse_modules():
    g = torch.Generator().manual_seed(1)
    model = build_model("student")
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            _random_bn(m, g)
    model.eval()
    fused = fold_batchnorm(model)
    reference = fuse_modules(model, [["features.0", "features.1"], ["features.4", "features.5"],
                                     ["classifier.1", "classifier.2"]], inplace=False)
    x = torch.rand(8, 1, 28, 28, generator=g)
    with torch.no_grad():
        out, expected, ref = model(x), fused(x), reference(x)
    torch.testing.assert_close(expected, out, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(expected, ref, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the input model must not change"


def test_low_rank_linear_full_rank_reproduces_layer():
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(20, 12)
    x = torch.randn(5, 20, generator=g)
    pair = low_rank_linear(linear, 12)
    assert [type(m) for m in pair] == [nn.Linear, nn.Linear] and pair[0].bias is None
    with torch.no_grad():
        torch.testing.assert_close(pair(x), linear(x), rtol=1e-5, atol=1e-5)


def test_low_rank_linear_is_the_eckart_young_approximation():
    torch.manual_seed(0)
    linear = nn.Linear(30, 16)
    w = linear.weight.detach().double()
    s = torch.linalg.svdvals(w)
    for rank in (1, 4, 9):
        pair = low_rank_linear(linear, rank)
        product = (pair[1].weight @ pair[0].weight).double()
        error = torch.linalg.matrix_norm(w - product) ** 2
        assert error.item() == pytest.approx((s[rank:] ** 2).sum().item(), rel=1e-4)
        assert torch.linalg.matrix_rank(product, atol=1e-5).item() == rank


def test_low_rank_linear_rejects_bad_rank():
    with pytest.raises(ValueError, match=r"rank \(for a Linear\(4, 8\)\) must be an integer in \[1, 4\], got 5"):
        low_rank_linear(nn.Linear(4, 8), 5)
    with pytest.raises(TypeError, match="rank .* must be an integer .*got True"):
        low_rank_linear(nn.Linear(4, 8), True)
    with pytest.raises(TypeError, match="rank must be an integer"):
        factorize_linears(nn.Sequential(nn.Linear(4, 8)), rank=True)


def test_rank_for_energy_hand_case():
    s = torch.tensor([3.0, 2.0, 1.0])  # energies 9, 4, 1 of 14
    assert rank_for_energy(s, 9 / 14) == 1
    assert rank_for_energy(s, 0.65) == 2
    assert rank_for_energy(s, 1.0) == 3
    for energy in (0.0, 1.5, -0.1):  # before: "[0, 1]" for 1.5, "(0, 1]" for 0
        with pytest.raises(ValueError, match=r"energy must be a finite number in \(0, 1\] \(the share of sum "
                                             rf"s_i\^2 to keep\), got {energy}"):
            rank_for_energy(s, energy)


def test_factorize_linears_only_where_it_saves_work():
    model = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
    small = factorize_linears(model, rank=10)
    assert isinstance(small[0], nn.Sequential) and small[0][0].out_features == 10
    assert isinstance(small[2], nn.Linear)  # 10 * (50 + 10) > 50 * 10: kept
    assert isinstance(model[0], nn.Linear), "the input model must not change"
    full = factorize_linears(model, energy=1.0)
    assert isinstance(full[0], nn.Linear)  # full rank 50 saves nothing
    chosen = factorize_linears(model, rank=2, layers=["2"])
    assert isinstance(chosen[0], nn.Linear) and isinstance(chosen[2], nn.Sequential)
    with pytest.raises(ValueError, match="exactly one of rank or energy"):
        factorize_linears(model)
    with pytest.raises(ValueError, match="'1' is not among them"):
        factorize_linears(model, rank=2, layers=["1"])


@pytest.mark.slow  # two spawned processes each import torch
def test_ddp_equals_single_process_training():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(256, 1, 28, 28, generator=g), torch.randint(0, 10, (256,), generator=g))
    torch.manual_seed(0)
    model = build_model("lenet300")
    parallel = ddp_train(model, data, world_size=2, batch_size=64, epochs=1, lr=0.1, seed=0)
    single = single_process_train(model, data, batch_size=64, epochs=1, lr=0.1, seed=0)
    assert max_param_diff(parallel, single) < 1e-5
    assert max_param_diff(model, single) > 1e-3, "training must have moved the weights"


def test_ddp_rejects_batch_not_divisible_by_workers():
    data = TensorDataset(torch.rand(8, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of world_size=3"):
        ddp_train(nn.Linear(4, 2), data, world_size=3, batch_size=4)


def test_ddp_rejects_a_parametrized_model_before_starting_its_processes():
    """Before: the spawned processes failed to unpickle a pruned model with a RuntimeError from parametrize."""
    from course_lib.pruning import magnitude_prune

    data = TensorDataset(torch.rand(8, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="model must have no parametrized layer .*make_permanent.*got parametrized 0"):
        ddp_train(magnitude_prune(nn.Sequential(nn.Linear(4, 2)), sparsity=0.5), data, batch_size=4)


class ScriptedCost(nn.Module):
    """Costs ``cost(threads, batch size)`` seconds on a fake clock (wall = CPU) per call, and logs each call."""

    def __init__(self, cost):
        super().__init__()
        self.cost, self.now, self.log = cost, 0.0, []

    def forward(self, x):
        self.log.append((torch.get_num_threads(), len(x)))
        self.now += self.cost(torch.get_num_threads(), len(x))
        return x

    def clocks(self, load=0.0):
        return {"wall_clock": lambda: self.now, "cpu_clock": lambda: self.now, "read_load": lambda: (load,) * 3}


def test_thread_latency_is_one_interleaved_comparison_whose_rows_carry_the_verdict():
    """Before: each thread count was timed in a run of its own, and the rows said nothing of the load."""
    model = ScriptedCost(lambda threads, batch: {1: 4e-3, 2: 2.5e-3}[threads])
    before = torch.get_num_threads()
    rows = thread_latency(model, torch.zeros(3, 1), threads=(1, 2), repeats=4, warmup=1, **model.clocks())
    assert torch.get_num_threads() == before
    assert [t for t, _ in model.log] == [1, 2, 2, 1, 1, 2, 2, 1, 1, 2]  # one call: rounds alternate, order rotates
    assert rows == [{"threads": 1, "median_ms": 4.0, "p10_ms": 4.0, "p90_ms": 4.0, "speedup": 1.0, "reliable": True,
                     "why": ""},
                    {"threads": 2, "median_ms": 2.5, "p10_ms": 2.5, "p90_ms": 2.5, "speedup": 1.6, "reliable": True,
                     "why": ""}]
    busy = ScriptedCost(lambda threads, batch: 1e-3)
    rows = thread_latency(busy, torch.zeros(3, 1), repeats=2, retries=0, **busy.clocks(load=os.cpu_count() + 5.0))
    assert [r["reliable"] for r in rows] == [False, False] and all("load" in r["why"] for r in rows)


def test_batch_throughput_is_one_interleaved_comparison_whose_rows_carry_the_verdict():
    """Before: each batch size was timed in a run of its own, and the rows said nothing of the load."""
    model = ScriptedCost(lambda threads, batch: 1e-3 + 1e-4 * batch)
    rows = batch_throughput(model, batch_sizes=(1, 10), repeats=3, threads=1, **model.clocks())
    assert [b for _, b in model.log] == [1, 10, 10, 1, 1, 10, 10, 1, 1, 10, 10, 1]  # 3 warm-up + 3 rounds
    assert rows == [{"batch_size": 1, "median_ms": 1.1, "p10_ms": 1.1, "p90_ms": 1.1, "samples_per_s": 909.1,
                     "ms_per_sample": 1.1, "reliable": True, "why": ""},
                    {"batch_size": 10, "median_ms": 2.0, "p10_ms": 2.0, "p90_ms": 2.0, "samples_per_s": 5000.0,
                     "ms_per_sample": 0.2, "reliable": True, "why": ""}]
    busy = ScriptedCost(lambda threads, batch: 1e-3)
    rows = batch_throughput(busy, batch_sizes=(1, 2), repeats=2, retries=0, **busy.clocks(load=os.cpu_count() + 5.0))
    assert [r["reliable"] for r in rows] == [False, False] and all("load" in r["why"] for r in rows)


def test_thread_latency_and_batch_throughput_on_a_real_model():
    model = build_model("student").eval()
    before = torch.get_num_threads()
    rows = thread_latency(model, torch.rand(2, 1, 28, 28), threads=(1, 2), repeats=2, warmup=1, retries=0)
    assert [r["threads"] for r in rows] == [1, 2] and rows[0]["speedup"] == 1.0
    assert all(0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for r in rows)
    assert torch.get_num_threads() == before
    table = batch_throughput(model, batch_sizes=(1, 4), repeats=2, retries=0)
    for row in table:
        assert row["samples_per_s"] == pytest.approx(1e3 * row["batch_size"] / row["median_ms"], rel=1e-2)
        assert isinstance(row["reliable"], bool) and isinstance(row["why"], str)


@pytest.mark.parametrize("call,error,match", [
    (lambda m: batch_throughput(m, batch_sizes=(0,)), ValueError, "batch_sizes entry must be an integer >= 1"),
    (lambda m: batch_throughput(m, batch_sizes=(4, 4)), ValueError, r"batch_sizes must not repeat a value, got \(4, 4"),
    (lambda m: thread_latency(m, torch.rand(1, 4), threads=(1, 1)), ValueError, "threads must not repeat a value"),
    (lambda m: thread_latency(m, torch.rand(1, 4), threads=(0,)), ValueError, "threads entry must be an integer >= 1"),
    (lambda m: thread_latency(m, [[1.0]]), TypeError, "example_input must be a tensor"),
    (lambda m: thread_latency(m, torch.rand(1, 4), repeats=0), ValueError, "repeats must be an integer >= 1"),
])
def test_thread_latency_and_batch_throughput_reject_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(nn.Linear(4, 2))


def test_channels_last_copy_computes_the_same():
    model = build_model("student").eval()
    x = torch.rand(2, 1, 28, 28)
    converted = to_channels_last(model)
    assert converted.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(converted(x.to(memory_format=torch.channels_last)), model(x))


def test_try_compile_reports_failure_instead_of_raising(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(compiling.torch, "compile", broken)
    result = try_compile(nn.Linear(2, 2), torch.zeros(1, 2))
    assert result.model is None and result.error == "RuntimeError: no C++ compiler found"


def test_frozen_wrapper_turns_freezing_on_only_during_its_calls(monkeypatch):
    import torch._inductor.config as inductor_config

    seen = []

    def fake_compile(model, mode=None, dynamic=None):
        def run(x):
            seen.append(inductor_config.freezing)
            return model(x)
        return run

    monkeypatch.setattr(compiling.torch, "compile", fake_compile)
    before = inductor_config.freezing
    result = try_compile(nn.Linear(2, 2), torch.zeros(1, 2), freezing=True)
    result.model(torch.zeros(3, 2))
    assert seen == [True, True] and inductor_config.freezing == before


def test_kernel_times_lists_the_innermost_layer_kernels_with_their_inputs_and_accounts_for_the_rest():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    x = torch.randn(2, 1, 8, 8)
    seen = []  # the shape each layer receives, from forward hooks (the independent reference)
    for layer in (model[0], model[2], model[4]):
        layer.register_forward_hook(lambda module, inputs, output: seen.append(tuple(inputs[0].shape)))
    model(x)
    profile = kernel_times(model, x, repeats=3, warmup=1)
    shapes = [kernel.shape for kernel in profile.kernels]
    assert seen[0] in shapes and seen[1] in shapes  # the convolution's and the pool's inputs
    names = [kernel.name for kernel in profile.kernels]
    assert any("addmm" in name or "linear" in name for name in names)  # the Linear layer (its first input: bias)
    assert "aten::conv2d" not in names and "aten::linear" not in names  # wrappers give way to what they call
    assert all(0 <= kernel.ms <= profile.total_ms for kernel in profile.kernels)
    assert 0 <= profile.other_ms <= profile.total_ms  # medians over the passes: parts and total need not add up
    assert profile.as_dict()["kernels"][0]["shape"] == list(profile.kernels[0].shape)


@pytest.mark.parametrize("kwargs, match", [({"repeats": 0}, "repeats"), ({"warmup": -1}, "warmup"),
                                           ({"kernels": "conv("}, "regular expression")])
def test_kernel_times_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernel_times(nn.Linear(2, 2), torch.randn(1, 2), **kwargs)

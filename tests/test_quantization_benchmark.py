"""The quantization benchmark section: the bit-width curve's layout on a tiny model, and the quick run's contract."""
import json
import statistics
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.benchmark.figures.quantization import FUSED, kernel_rows
from course_lib.benchmark.quantization import LATENCY_THREADS, SWEEPS, bit_width_curve, qat_lr_scan, run, sweep_widths
from course_lib.training import evaluate


@pytest.fixture(scope="module")
def tiny_task():
    """A linear 3-class problem and a small MLP trained on it (60 steps, a fraction of a second)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(384, 8, generator=g)
    y = (x[:, :3] * torch.tensor([3.0, 2.0, 1.0])).argmax(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    loaders = SimpleNamespace(train=loader, val=DataLoader(TensorDataset(x[:128], y[:128]), batch_size=64),
                              test=DataLoader(TensorDataset(x[128:], y[128:]), batch_size=64))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(5):
        for inputs, targets in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    return model.eval(), loaders


def test_sweep_widths():
    assert sweep_widths("weights", 2) == (2, None)  # activations stay in fp32
    assert sweep_widths("activations", 2) == (8, 2)  # weights at 8 bits
    assert sweep_widths("both", 2) == (2, 2)
    assert SWEEPS["activations"] == (True,)  # activations have one scale per tensor whatever the weights do


def test_bit_width_curve_layout_and_means(tiny_task):
    model, loaders = tiny_task
    curve = bit_width_curve(model, loaders, bits=(8,), seeds=(0, 1), qat_epochs=1, qat_lr=1e-3)
    assert curve["fp32"] == evaluate(model, loaders.test) and curve["fp32"] > 0.9
    for sweep, granularities in SWEEPS.items():
        keys = {"per_channel" if pc else "per_tensor" for pc in granularities}
        assert set(curve[sweep]["ptq"]) == keys
        assert set(curve[sweep]["qat"]) == keys | {f"{k}_per_seed" for k in keys}
        for key in keys:
            per_seed = curve[sweep]["qat"][f"{key}_per_seed"]
            assert len(per_seed) == 2 and all(len(accuracies) == 1 for accuracies in per_seed)
            assert curve[sweep]["qat"][key] == pytest.approx([statistics.fmean(a) for a in zip(*per_seed)])
            assert all(0.0 <= a <= 1.0 for a in curve[sweep]["ptq"][key] + curve[sweep]["qat"][key])
    # 8 bits everywhere loses at most a few of the 256 test points (a tolerance, not a copied value)
    assert curve["both"]["ptq"]["per_channel"][0] >= curve["fp32"] - 0.02
    json.dumps(curve)


def test_qat_lr_scan_keys_are_the_learning_rates(tiny_task):
    model, loaders = tiny_task
    scan = qat_lr_scan(model, loaders, lrs=(1e-3, 1e-2), epochs=1)
    assert list(scan) == ["0.001", "0.01"] and all(0.0 <= a <= 1.0 for a in scan.values())


@pytest.mark.slow  # trains, calibrates and compiles (Inductor) the zoo teacher
def test_quick_run_returns_the_contract():
    result = run(quick=True, seeds=1)
    json.dumps(result)  # JSON-serialisable
    fractions = [result["fp32_accuracy"], result["ptq"]["int8"], result["ptq"]["int4"],
                 result["qat"]["int4"], result["qat"]["binary"], result["pt2e"]["accuracy"]]
    assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in fractions)
    curve = result["curve"]
    assert curve["bits"] == [8, 2] and set(result["qat_lr_scan"]) == {"lenet300"}
    assert len(curve["lenet300"]["both"]["qat"]["per_tensor"]) == 2
    pt2e = result["pt2e"]
    assert {"speedup_vs_compiled", "speedup_vs_eager", "accuracy", "fp32_accuracy", "int8_kernel", "vnni",
            "saturates", "reduce_range"} <= pt2e.keys()
    for threads in LATENCY_THREADS:  # one interleaved comparison per thread count, each speed-up a timing record
        timed = pt2e[str(threads)]
        rows = {r["model"]: r for r in timed["rows"]}
        assert set(rows) == {"fp32_eager", "fp32_compiled", "int8"} and timed["threads"] == threads
        for key, baseline in (("speedup_vs_compiled", "fp32_compiled"), ("speedup_vs_eager", "fp32_eager")):
            record = timed[key]
            assert record["baseline"]["median_ms"] == rows[baseline]["median_ms"]
            assert record["candidate"]["median_ms"] == rows["int8"]["median_ms"]
            assert record["p10"] <= record["speedup"] <= record["p90"] and record["baseline"]["threads"] == threads
            assert {"load_before", "load_after", "capability", "cpu_flags"} <= record["context"].keys()
    assert pt2e["speedup_vs_compiled"] == pt2e[str(max(LATENCY_THREADS))]["speedup_vs_compiled"]
    assert pt2e["fp32_accuracy"] == result["fp32_accuracy"] and pt2e["batch_size"] == 256
    assert pt2e["int8_kernel"].startswith("onednn/") and pt2e["vnni"] is not pt2e["saturates"]
    assert abs(pt2e["accuracy"] - pt2e["fp32_accuracy"]) <= 0.01  # int8 kernels within a point of fp32
    assert pt2e["size_ratio"] > 3  # one byte per weight instead of four, plus scales and fp32 biases
    kinds = {name: [k["name"] for k in pt2e["kernels"][name]["kernels"]] for name in ("fp32_compiled", "int8")}
    assert sum("qconv" in n for n in kinds["int8"]) == 2 and sum("qlinear" in n for n in kinds["int8"]) == 2
    assert not any(n.startswith(("onednn::q", "quantized::")) for n in kinds["fp32_compiled"])


def test_kernel_rows_pair_the_layers_by_their_input_and_give_each_its_speedup_and_share():
    fp32 = {"kernels": [{"name": "mkldnn::_convolution_pointwise", "shape": [8, 1, 4, 4], "ms": 10.0},
                        {"name": "mkl::_mkl_linear", "shape": [8, 16], "ms": 4.0}], "total_ms": 20.0, "other_ms": 6.0}
    int8 = {"kernels": [{"name": "onednn::qconv_pointwise", "shape": [8, 1, 4, 4], "ms": 2.5},
                        {"name": "quantized::max_pool2d", "shape": [8, 2, 4, 4], "ms": 1.0},
                        {"name": "onednn::qlinear_pointwise", "shape": [8, 16], "ms": 1.0}],
            "total_ms": 6.0, "other_ms": 1.5}
    rows = kernel_rows({"threads": 1, "fp32_compiled": fp32, "int8": int8})
    assert rows[0] == ["convolution, input 8x1x4x4", "10.00", "2.50", "4.00x", "50%"]  # 10/2.5; 10 of 20 ms
    assert rows[1] == ["max-pool, input 8x2x4x4", FUSED, "1.00", "", ""]  # fp32's pool is inside Inductor's code
    assert rows[2] == ["fully connected, input 8x16", "4.00", "1.00", "4.00x", "20%"]
    assert rows[3][1:] == ["6.00", "1.50", "4.00x", "30%"]
    assert rows[4] == ["whole forward pass", "20.00", "6.00", "3.33x", "100%"]

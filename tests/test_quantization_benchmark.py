"""The quantization benchmark section runs (quick mode) and returns the keys of its contract with the right types."""
import json

import pytest

from course_lib.benchmark.quantization import run


@pytest.mark.slow  # trains, calibrates and compiles (Inductor) the zoo teacher
def test_quick_run_returns_the_contract():
    result = run(quick=True, seeds=1)
    json.dumps(result)  # JSON-serialisable
    fractions = [result["fp32_accuracy"], result["ptq"]["int8"], result["ptq"]["int4"],
                 result["qat"]["int4"], result["qat"]["binary"], result["pt2e"]["accuracy"]]
    assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in fractions)
    pt2e = result["pt2e"]
    assert {"fp32_eager_ms", "fp32_compiled_ms", "int8_ms", "speedup_vs_compiled", "speedup_vs_eager",
            "accuracy", "fp32_accuracy"} <= pt2e.keys()
    assert pt2e["speedup_vs_eager"] == pytest.approx(pt2e["fp32_eager_ms"] / pt2e["int8_ms"])
    assert pt2e["speedup_vs_compiled"] == pytest.approx(pt2e["fp32_compiled_ms"] / pt2e["int8_ms"])
    assert pt2e["fp32_accuracy"] == result["fp32_accuracy"] and pt2e["batch_size"] == 256
    assert abs(pt2e["accuracy"] - pt2e["fp32_accuracy"]) <= 0.01  # int8 kernels within a point of fp32
    assert pt2e["size_ratio"] > 3  # one byte per weight instead of four, plus scales and fp32 biases

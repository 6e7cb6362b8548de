"""The quantization benchmark section runs (quick mode) and returns the keys of its contract with the right types."""
import json

import pytest

from course_lib.benchmark.quantization import run


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_quick_run_returns_the_contract():
    result = run(quick=True, seeds=1)
    json.dumps(result)  # JSON-serialisable
    fractions = [result["fp32_accuracy"], result["ptq"]["int8"], result["ptq"]["int4"],
                 result["qat"]["int4"], result["qat"]["binary"]]
    assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in fractions)
    assert result["int8_size_ratio"] > 3  # one byte per weight instead of four, plus metadata
    assert isinstance(result["int8_latency_speedup"], float) and result["int8_latency_speedup"] > 0
    assert {"model", "batch", "backend"} <= result["latency"].keys()


def test_seeds_must_be_positive():
    with pytest.raises(ValueError, match="seeds"):
        run(seeds=0)

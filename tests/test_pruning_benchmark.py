"""The pruning benchmark section: the knee of a curve on hand-made cases, and the quick run's contract."""
import math

import pytest

from course_lib.benchmark import pruning as section
from course_lib.benchmark.knee import free_up_to
from course_lib.metrics import layer_macs
from course_lib.pruning import prune_channels
from course_lib.zoo import get_model


@pytest.mark.parametrize("curve,dense,expected", [
    ({"0.5": 0.98, "0.9": 0.975, "0.99": 0.90}, 0.98, "0.9"),        # falls at 0.99
    ({"0.5": 0.98, "0.9": 0.97, "0.99": 0.96}, 0.98, "0.9"),         # exactly one point below still counts
    ({"0.99": 0.99, "0.5": 0.99, "0.9": 0.99}, 0.98, "0.99"),        # never falls; keys in any order
    ({"0.5": 0.90, "0.9": 0.98}, 0.98, None),                        # falls at once
    ({"0.5": 0.98, "0.8": 0.50, "0.9": 0.98, "0.95": 0.10}, 0.98, "0.5"),  # a lucky point after a fall is not the knee
])
def test_knee_is_the_last_sparsity_before_the_first_fall(curve, dense, expected):
    assert free_up_to(curve, reference=dense, within=section.KNEE_WITHIN)[0] == expected


def test_knee_within_is_a_fraction():
    curve = {"0.5": 0.97, "0.9": 0.95}
    assert free_up_to(curve, reference=0.98, within=0.02)[0] == "0.5"
    assert free_up_to(curve, reference=0.98, within=0.03)[0] == "0.9"


@pytest.mark.slow  # fine-tunes the zoo teacher and LeNet-300-100 on a few batches, times the teacher
def test_quick_run_returns_the_contract():
    result = section.run(quick=True, seeds=1)
    sparsities = list(section.QUICK_SPARSITIES)
    curve = result["curve"]
    assert curve["sparsities"] == sparsities and curve["knee_within"] == section.KNEE_WITHIN
    for name in section.MODELS:
        entry = curve[name]
        variants = {"no_finetune", "finetuned", "finetuned_per_seed"} | ({"recalibrated"} if name == "teacher"
                                                                        else set())
        assert entry["finetune"] == {"epochs": section.FINETUNE[name].epochs, "lr": section.FINETUNE[name].lr}
        for scope in section.SCOPES:
            assert set(entry[scope]) == variants
            tuned = [s for s in sparsities if s in section.FINETUNED_SPARSITIES.get((name, scope), sparsities)]
            for variant in variants:
                assert list(entry[scope][variant]) == (tuned if variant.startswith("finetuned") else sparsities)
            assert all(len(v) == 1 for v in entry[scope]["finetuned_per_seed"].values())
            assert set(entry["knee"][scope]) == variants - {"finetuned_per_seed"}
            for variant, k in entry["knee"][scope].items():
                assert k == free_up_to(entry[scope][variant], reference=entry["dense"],
                                       within=curve["knee_within"])[0]
        values = [a for scope in section.SCOPES for v in entry[scope].values() for a in v.values()]
        assert all(0.0 <= a <= 1.0 for a in values if isinstance(a, float))
    # no fine-tuning is deterministic: the zoo teacher at 90% globally, stale statistics against recalibrated
    teacher = curve["teacher"]["global"]
    assert teacher["recalibrated"]["0.9"] > teacher["no_finetune"]["0.9"] + 0.5
    assert result["dense_accuracy"] == curve["teacher"]["dense"]
    assert result["magnitude"] == teacher["finetuned"]  # quick: SPARSITIES are the QUICK_SPARSITIES
    assert result["random"]["0.9"] == result["random_per_seed"]["0.9"][0]
    assert set(result["gradual"]) == set(section.MODELS)
    g = result["gradual"]["lenet300"]["0.99"]
    assert g["one_shot"] == curve["lenet300"]["global"]["finetuned"]["0.99"] and len(g["gradual_per_seed"]) == 1
    assert list(result["channel_curve"]) == [str(s) for s in section.CHANNEL_SPARSITIES]
    assert result["channel"]["sparsity"] == section.CHANNEL_SPARSITY
    assert result["channel"]["params_ratio"] > 1
    for record in (result["unstructured_latency_speedup"], result["channel"]["latency_speedup"]):
        assert {"speedup", "p10", "p90", "reliable", "why", "baseline", "candidate", "context"} <= record.keys()
        assert math.isfinite(record["speedup"]) and record["baseline"]["name"] == "dense"
    assert result["unstructured_latency_speedup"]["candidate"]["name"] == "unstructured"
    slim = prune_channels(get_model("teacher"), sparsity=section.CHANNEL_SPARSITY)  # the work ratio, from the layers
    assert math.isclose(result["channel"]["macs_ratio"],
                        sum(layer_macs(get_model("teacher")).values()) / sum(layer_macs(slim).values()))
    stored = result["sparse_bytes"]
    assert stored["bitmask"] < stored["csr"] < stored["dense"] and stored["sparsity"] == section.SPARSE_SPARSITY

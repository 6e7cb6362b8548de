"""The benchmark's distillation section in quick mode: it runs, writes every documented key, and its derived
figures (the share of the gap recovered, the means) agree with its own per-seed accuracies."""
import math
import statistics

import pytest

from course_lib.benchmark import run_section
from course_lib.benchmark.distillation import FRACTIONS


@pytest.fixture(scope="module")
def section():
    return run_section("distillation", quick=True, seeds=2)


@pytest.mark.slow  # trains about twenty small students for a few steps each
def test_quick_section_writes_every_key(section):
    assert "error" not in section, section.get("traceback")
    for key in ("teacher", "student", "low_label", "all_labels", "feature_kd", "omitted_digit", "seconds", "machine"):
        assert key in section, key
    assert {"params", "bytes", "accuracy"} <= section["teacher"].keys()
    assert {"scratch_accuracy_per_seed", "kd_accuracy_per_seed", "speedup"} <= section["student"].keys()
    low = section["low_label"]
    assert low["fractions"] == list(FRACTIONS) and set(low["labels"]) == {str(f) for f in FRACTIONS}
    for f in FRACTIONS:
        row = low[str(f)]
        assert all(len(row[m]) == 2 and all(0 <= a <= 1 for a in row[m]) for m in ("scratch", "kd", "kd_transfer"))
        assert set(row["seconds"]) == {"scratch", "kd", "kd_transfer"} and all(t > 0 for t in row["seconds"].values())
    assert {"scratch", "kd", "gain", "spread", "train_accuracy", "params", "selection"} <= section["all_labels"].keys()
    assert {"fitnet", "kd", "scratch", "student_layer", "teacher_layer", "selection"} <= section["feature_kd"].keys()
    om = section["omitted_digit"]
    assert {"kd_accuracy", "kd_accuracy_per_seed", "bias_shift", "kd_accuracy_bias_corrected", "scratch_accuracy",
            "selection", "temperature", "alpha", "steps"} <= om.keys()
    assert all({"val_accuracy", "val_digit_accuracy"} == set(v) for v in om["selection"].values())


@pytest.mark.slow
def test_quick_section_derived_figures_follow_from_the_per_seed_accuracies(section):
    full = section["student"]["scratch_accuracy_per_seed"]
    for f in FRACTIONS:
        row = section["low_label"][str(f)]
        for method in ("kd", "kd_transfer"):
            expected = [(row[method][s] - row["scratch"][s]) / (full[s] - row["scratch"][s])
                        if full[s] != row["scratch"][s] else None for s in range(2)]
            got = row["gap_recovered_per_seed"][method]
            assert all(g == e or math.isclose(g, e) for g, e in zip(got, expected))
            if None not in expected:
                assert math.isclose(row["gap_recovered"][method], statistics.fmean(expected))
    al = section["all_labels"]
    assert math.isclose(al["gain"], statistics.fmean(al["kd"]) - statistics.fmean(al["scratch"]))
    assert math.isclose(al["spread"], max(statistics.stdev(al["kd"]), statistics.stdev(al["scratch"])))
    assert section["feature_kd"]["kd"] == al["kd"]  # the same students, compared on the same seeds
    om = section["omitted_digit"]
    assert math.isclose(om["kd_accuracy"], statistics.fmean(om["kd_accuracy_per_seed"]))

"""The benchmark runner: its command line, its JSON file, its failure handling, and the report helpers."""
from __future__ import annotations

import json
import types

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import course_lib.benchmark as benchmark  # noqa: E402
from course_lib._tables import markdown_table  # noqa: E402
from course_lib.benchmark import SECTIONS  # noqa: E402
from course_lib.benchmark.__main__ import main  # noqa: E402
from course_lib.benchmark.claims import check_claims, claims_table  # noqa: E402
from course_lib.benchmark.curves import find_curves, plot_section_curves, where_free  # noqa: E402
from course_lib.benchmark.figures import REGISTRY  # noqa: E402
from course_lib.benchmark.figures.section import WORK_SLACK, plausible_speedup  # noqa: E402
from course_lib.benchmark.knee import free_up_to  # noqa: E402
from course_lib.benchmark.report import about, section_tables  # noqa: E402
from course_lib.benchmark.results import (  # noqa: E402
    get,
    is_timing,
    latency,
    load_results,
    percent,
    points,
    speed,
    speedup_of,
    times,
    unreliable_timings,
)
from course_lib.benchmark.tradeoffs import format_table, plot_tradeoffs, tradeoff_points  # noqa: E402
from course_lib.plotting import plot_curves  # noqa: E402
from course_lib.timing import INT8_FLAGS, cpu_flags  # noqa: E402


@pytest.mark.slow  # the whole section, quick mode; its DDP part spawns two processes
def test_cli_quick_acceleration_writes_json(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--quick", "--only", "acceleration", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    results = json.loads(out.read_text())
    section = results["acceleration"]
    for key in ("ddp", "fusion", "low_rank", "low_rank_teacher", "threads", "batching", "seconds", "machine"):
        assert key in section, key
    assert {"workers", "max_param_diff"} <= section["ddp"].keys()
    assert {"max_abs_diff", "speedup", "macs_ratio"} <= section["fusion"].keys()
    assert {"model", "rank", "accuracy", "speedup", "speedup_batch1", "macs_ratio"} <= section["low_rank"].keys()
    assert section["low_rank"]["model"] == "LeNet300100" and section["low_rank_teacher"]["model"] == "ConvNet"
    for record in (section["fusion"]["speedup"], section["low_rank"]["speedup_batch1"], section["threads"]["speedup"]):
        assert is_timing(record) and {"load_before", "capability"} <= record["context"].keys()
    assert [r["threads"] for r in section["threads"]["rows"]] == [1, 2]
    assert [r["batch_size"] for r in section["batching"]["rows"]] == [1, 16]
    assert "load_after" in section["batching"]["context"]
    assert section["seconds"] > 0 and {"torch", "threads", "cpu", "cuda_device", "started", "load_before",
                                       "load_after", "capability", "int8_kernel"} <= section["machine"].keys()
    assert "| low rank " in stdout  # the table


@pytest.mark.parametrize("argv,words", [(["--only", "acceleration", "nope"], ["'nope'", "acceleration"]),
                                        (["--seeds", "0"], ["--seeds must be an integer >= 1, got 0"])])
def test_cli_bad_arguments_exit_2_with_one_line(argv, words, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert not (tmp_path / "r.json").exists()


def test_failing_section_does_not_stop_the_others(monkeypatch, tmp_path, capsys):
    def fake(name):
        def run(quick=False, seeds=3):
            if name.endswith("pruning"):
                raise RuntimeError("boom")
            return {"fp32_accuracy": 0.9, "ptq": {"int8": 0.89}, "quick": quick, "seeds": seeds}
        return types.SimpleNamespace(run=run)

    monkeypatch.setattr(benchmark, "importlib", types.SimpleNamespace(import_module=fake))
    out = tmp_path / "sub" / "r.json"
    code = main(["--only", "pruning", "quantization", "--quick", "--seeds", "2", "--out", str(out)])
    assert code == 1
    results = json.loads(out.read_text())
    assert results["pruning"]["error"] == "RuntimeError: boom"
    assert results["quantization"]["ptq"] == {"int8": 0.89} and results["quantization"]["seeds"] == 2
    assert results["quantization"]["quick"] is True
    assert all("seconds" in r and "machine" in r for r in results.values())
    assert "pruning" in capsys.readouterr().err


def test_update_replaces_only_the_sections_run(monkeypatch, tmp_path):
    fake = types.SimpleNamespace(import_module=lambda name: types.SimpleNamespace(
        run=lambda quick=False, seeds=3: {"new": name}))
    monkeypatch.setattr(benchmark, "importlib", fake)  # the runner's imports only, not importlib.resources'
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"pruning": {"old": 1}, "quantization": {"old": 2}}))
    assert main(["--only", "quantization", "--update", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["pruning"] == {"old": 1}
    assert results["quantization"]["new"].endswith("quantization") and "old" not in results["quantization"]
    assert main(["--only", "quantization", "--out", str(out)]) == 0  # without --update: only what ran
    assert set(json.loads(out.read_text())) == {"quantization"}


def test_run_section_rejects_unknown_name_and_bad_seeds_before_running(monkeypatch):
    monkeypatch.setattr(benchmark, "importlib", types.SimpleNamespace(import_module=lambda name: pytest.fail("ran")))
    with pytest.raises(ValueError, match="sections must name sections of the benchmark"):
        benchmark.run_section("nope")
    with pytest.raises(ValueError, match="seeds must be an integer >= 1, got 0"):
        benchmark.run_section("quantization", seeds=0)
    with pytest.raises(TypeError, match="seeds must be an integer"):
        benchmark.run_section("quantization", seeds=True)


def test_every_section_module_has_a_run_with_the_common_interface():
    import importlib
    import inspect

    for name in SECTIONS:
        run = importlib.import_module(f"course_lib.benchmark.{name}").run
        params = inspect.signature(run).parameters
        assert list(params) == ["quick", "seeds"] and params["quick"].default is False, name


def record(ratio, p10=None, p90=None, reliable=True, why=""):
    """A hand-made speed-up as :func:`course_lib.timing.timing_record` stores it (the keys the readers use)."""
    return {"speedup": ratio, "p10": ratio * 0.9 if p10 is None else p10, "p90": ratio * 1.1 if p90 is None else p90,
            "rounds": 50, "reliable": reliable, "why": why, "baseline": {}, "candidate": {},
            "context": {"load_before": 0.1, "load_after": 0.1, "capability": "AVX2"}}


RESULTS = {
    "distillation": {"teacher": {"params": 800, "accuracy": 0.98},
                     "student": {"params": 100, "kd_accuracy": 0.97, "scratch_accuracy": 0.96, "speedup": record(3.0),
                                 "scratch_accuracy_per_seed": [0.95, 0.96, 0.97],
                                 "kd_accuracy_per_seed": [0.97, 0.97, 0.97]},
                     "low_label": {"fractions": [0.01, 0.03], "labels": {"0.01": 35, "0.03": 105},
                                   "0.01": {"scratch": [0.5, 0.6], "kd": [0.6, 0.7], "kd_transfer": [0.8, 0.9],
                                            "gap_recovered": {"kd": 0.2, "kd_transfer": 0.7}},
                                   "0.03": {"scratch": [0.8, 0.8], "kd": [0.85, 0.85], "kd_transfer": [0.79, 0.79],
                                            "gap_recovered": {"kd": 0.3, "kd_transfer": 0.4}}},
                     "omitted_digit": {"digit": 3, "scratch_accuracy": 0.0, "kd_accuracy": 0.3,
                                       "bias_shift": [4.0, 3.5], "kd_accuracy_bias_corrected": 0.9,
                                       "kd_overall_accuracy_bias_corrected": 0.95}},
    "pruning": {"dense_accuracy": 0.98, "magnitude": {"0.9": 0.975},
                "magnitude_per_seed": {"0.5": [0.98, 0.98, 0.98], "0.9": [0.97, 0.975, 0.98]},
                "random_per_seed": {"0.5": [0.11, 0.96, 0.95], "0.9": [0.1, 0.5, 0.4]},
                "channel": {"sparsity": 0.5, "accuracy": 0.97, "params_ratio": 4.0,
                            "latency_speedup": record(1.6)},
                "unstructured_latency_speedup": record(1.0),
                "sparse_bytes": {"sparsity": 0.9, "csr": 500, "bitmask": 400, "dense": 3000}},
    "quantization": {"fp32_accuracy": 0.98, "ptq": {"int8": 0.979},
                     "pt2e": {"accuracy": 0.979, "fp32_accuracy": 0.98, "size_ratio": 3.9,
                              "speedup_vs_eager": record(2.2), "speedup_vs_compiled": record(0.9), "batch_size": 256,
                              "threads": 2, "int8_kernel": "onednn/avx512_vnni", "vnni": True, "saturates": False},
                     "curve": {"lenet300": {"bits": [8, 4, 2],
                                            "both": {"ptq": {"per_channel": [0.97, 0.965, 0.5],
                                                             "per_channel_per_seed": [[0.97], [0.965], [0.5]]}}}}},
    "acceleration": {"fusion": {"accuracy": 0.98, "dense_accuracy": 0.98, "params_ratio": 1.0,
                                "speedup": record(1.05), "max_abs_diff": 3e-6, "batch_size": 64},
                     "low_rank": {"rank": 32, "accuracy": 0.96, "dense_accuracy": 0.972, "params_ratio": 5.0,
                                  "macs_ratio": 5.0, "speedup": record(2.5), "batch_size": 64},
                     "ddp": {"max_param_diff": 2e-5}},
    "deep_compression": {"error": "RuntimeError: boom"},
}


def test_tradeoff_points_and_table_from_hand_made_results():
    points = {p["technique"]: p for p in tradeoff_points(RESULTS)}
    scratch, kd = points["student from scratch"], points["distilled student"]
    assert scratch["compression"] == kd["compression"] == 800 / 100 and scratch["speedup"] == kd["speedup"] == 3.0
    assert (scratch["accuracy"], kd["accuracy"], kd["baseline_accuracy"]) == (0.96, 0.97, 0.98)
    sparse = points["magnitude pruning 90%, bitmask file"]  # the smaller of the two measured files, and its name
    assert sparse["compression"] == 3000 / 400 and sparse["accuracy"] == pytest.approx((0.97 + 0.975 + 0.98) / 3)
    assert points["channel pruning 50%"]["compression"] == 4.0  # original / pruned parameters, as measured
    assert points["int8 PT2E vs compiled fp32"]["speedup"] == 0.9
    assert points["int8 PT2E vs eager fp32"]["speedup"] == 2.2
    assert points["low rank 32, LeNet-300-100"]["compression"] == 5.0
    assert not any(p["section"] == "deep_compression" for p in points.values())  # the failed section
    table = format_table(RESULTS)
    assert "| int8 PT2E vs compiled fp32 | 97.90% | 98.00% | 3.90x | 0.90x |" in table
    assert "deep_compression: FAILED: RuntimeError: boom" in table
    no_bytes = {"pruning": {**RESULTS["pruning"], "sparse_bytes": {}}}
    assert tradeoff_points(no_bytes)[0]["compression"] is None  # nothing measured, nothing claimed


def test_deep_compression_points_pair_the_mean_file_with_the_mean_accuracy():
    c = {"dense_accuracy": 0.97, "dense_bytes": 1000, "compressed_bytes_per_seed": [20, 30],
         "compressed_accuracy_per_seed": [0.95, 0.96], "compressed_bytes": 25.0, "compressed_accuracy": 0.955,
         "compression_ratio": 40.0, "roundtrip_equal": True, "lenet5": {"dense_accuracy": 0.98, "dense_bytes": 2000,
                                                                        "compressed_accuracy": 0.97,
                                                                        "compression_ratio": 38.0}}
    points = {p["technique"]: p for p in tradeoff_points({"deep_compression": c})}
    assert points["Deep Compression, LeNet-300-100"]["compression"] == 40.0
    assert points["Deep Compression, LeNet-5"]["accuracy"] == 0.97
    table = section_tables({"deep_compression": c}, "deep_compression")[0]
    assert "20 B: 95.0%, 30 B: 96.0%" in table  # each file beside the accuracy of the model it holds
    verdicts = {r["statement"][:30]: r["holds"] for r in check_claims({"deep_compression": c})}
    assert verdicts["Deep Compression makes the fil"] is False  # LeNet-5: 38x < 40x
    assert verdicts["Deep Compression costs at most"] is True  # -1.5 and -1 points


def test_pruning_tables_give_every_random_seed_and_the_median():
    tables = section_tables(RESULTS, "pruning")
    # median of (0.11, 0.96, 0.95) is 0.95; 0.11 is within 2 points of chance (0.1)
    assert "| 50% | 98.0% | 95.0% | 11.0, 96.0, 95.0%; 1 of 3 at chance level |" in tables[0]
    assert "| bitmask file of the 90%-sparse teacher | 400 | 7.5x |" in tables[1]
    assert section_tables(RESULTS, "deep_compression") == [] and section_tables({}, "pruning") == []


def test_claims_are_checked_against_the_file_and_missing_figures_are_not_measured():
    checked = {(c["section"], c["statement"][:40]): c for c in check_claims(RESULTS)}
    by = lambda section, start: next(c for (s, text), c in checked.items() if s == section and text.startswith(start))  # noqa: E731
    assert by("pruning", "Global magnitude")["holds"] is True  # mean 0.975 vs 0.98: 0.5 point
    assert by("pruning", "Random pruning")["holds"] is True  # medians 0.95 < 0.98 and 0.4 < 0.975
    assert by("pruning", "A sparse file")["holds"] is True  # 3000 / 400 = 7.5 < 1 / (1 - 0.9) = 10
    assert by("quantization", "int8 kernels are faster")["holds"] is False  # 0.9x against compiled fp32
    assert by("distillation", "With few labels")["holds"] is False  # 0.79 < 0.8 at 3%
    assert by("distillation", "At 3% of the labels")["holds"] is False  # 40% of the gap is not most of it
    assert by("distillation", "A student that never saw")["holds"] is True
    assert by("acceleration", "Data-parallel")["holds"] is False  # 2e-5 is not below 1e-5
    assert by("acceleration", "torch.compile")["holds"] is None and by("acceleration", "torch.compile")["evidence"] \
        == "not measured"
    assert all(c["holds"] is None for c in check_claims(RESULTS, "deep_compression"))  # the section failed
    assert check_claims({}) and all(c["holds"] is None for c in check_claims({}))
    assert "**not supported**" in claims_table(RESULTS, "quantization")


def test_curves_are_found_in_both_layouts_and_where_they_stop_being_free():
    pruning = {"pruning": {"curve": {"teacher": {"global": {"0.9": [0.98, 0.98], "0.99": 0.9, "0.5": 0.981},
                                                 "global_per_seed": {"0.9": [[0.98]]}}}}}
    assert find_curves(pruning, "pruning") == {"teacher / global": {0.5: 0.981, 0.9: 0.98, 0.99: 0.9}}
    curves = find_curves(RESULTS, "quantization")
    assert curves == {"lenet300 / both / ptq / per_channel": {2.0: 0.5, 4.0: 0.965, 8.0: 0.97}}
    # sparsity: more is more aggressive; 0.98 is within a point of 0.981, 0.9 is not
    assert free_up_to({0.5: 0.981, 0.9: 0.98, 0.99: 0.9}, aggressive="higher") == (0.9, 0.99)
    assert free_up_to({8: 0.97, 4: 0.965, 2: 0.5}, aggressive="lower") == (4, 2)
    assert free_up_to({8: 0.97, 4: 0.969}, aggressive="lower") == (4, None)
    assert where_free(RESULTS, "quantization") == ["lenet300 / both / ptq / weights per channel: within 1 point of "
                                                   "97.0% (mildest setting) up to 4; at 2: 50.0%"]
    # against the unpruned model's accuracy: the mildest setting can already fall
    assert free_up_to({0.5: 0.981, 0.9: 0.98, 0.99: 0.9}, aggressive="higher", reference=0.995) == (None, 0.5)
    assert free_up_to({0.5: 0.981, 0.9: 0.98, 0.99: 0.9}, aggressive="higher", reference=0.985) == (0.9, 0.99)
    dense = {"pruning": {"curve": {"teacher": {"dense": 0.995, "global": {"0.5": 0.981, "0.9": 0.98}}}}}
    assert where_free(dense, "pruning") == ["teacher / global: within 1 point of 99.5% (unchanged model) at no "
                                            "setting measured; at 0.5: 98.1%"]
    with pytest.raises(ValueError, match="aggressive must be 'higher' or 'lower'"):
        free_up_to({1: 1.0}, aggressive="up")
    fig = plot_section_curves(RESULTS, "quantization")
    assert len(fig.axes[0].get_lines()) == 1 and fig.axes[0].get_xlabel() == "bits per value"
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [50.0, 96.5, 97.0]  # percent, in the order of the bits
    assert plot_section_curves(RESULTS, "pruning") is None


def test_free_up_to_is_the_knee_of_any_curve_and_checks_its_arguments():
    """The one knee: sparsity keys as the file writes them ("0.9", returned as given), bits, a lucky point after a
    fall, and each bad argument named."""
    assert free_up_to({"0.5": 0.98, "0.9": 0.975, "0.99": 0.90}, reference=0.98) == ("0.9", "0.99")
    assert free_up_to({"0.5": 0.98, "0.8": 0.50, "0.9": 0.98}, reference=0.98) == ("0.5", "0.8")
    assert free_up_to({"0.10": 0.98, "0.9": 0.5}, reference=0.98) == ("0.10", "0.9")  # by value, not as text
    assert free_up_to({8: 0.99, 3: 0.985, 2: 0.6, 1: 0.99}, reference=0.99, aggressive="lower") == (3, 2)
    assert free_up_to({"0.5": 0.97, "0.9": 0.95}, reference=0.98, within=0.03) == ("0.9", None)
    for args, kwargs, error, word in [(([0.9],), {}, TypeError, "curve"), (({},), {}, ValueError, "curve"),
                                      (({"dense": 0.9},), {}, ValueError, "curve"),
                                      (({"0.5": 0.9},), {"reference": 1.5}, ValueError, "reference"),
                                      (({"0.5": 0.9},), {"reference": "0.9"}, TypeError, "reference"),
                                      (({"0.5": 0.9},), {"within": -0.1}, ValueError, "within"),
                                      (({"0.5": "high"},), {}, TypeError, "curve")]:
        with pytest.raises(error, match=word):
            free_up_to(*args, **kwargs)


def test_the_registry_is_the_one_list_of_sections():
    """Every section the benchmark runs has its runner module and its entry, in one order; every claim names the
    chapter of its section; plot_curves draws curves measured at different points."""
    assert SECTIONS == tuple(REGISTRY) == tuple(s.name for s in REGISTRY.values())
    claims = check_claims({})
    assert {c["section"] for c in claims} <= set(SECTIONS) and all(c["chapter"] == f"code/{c['section']}"
                                                                   for c in claims)
    assert len(claims) == sum(len(s.claims) for s in REGISTRY.values())
    ax = plot_curves(None, {"a": {1: 0.5, 2: 0.6}, "b": {1: 0.4, 3: 0.7}}, "x", "y")
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[1, 2], [1, 3]]
    with pytest.raises(TypeError, match="curve 'a' must be a mapping"):
        plot_curves(None, {"a": [0.5, 0.6]}, "x", "y")


def test_report_helpers():
    assert get(RESULTS, "pruning.channel.accuracy") == 0.97 and get(RESULTS, "pruning.nope.x") is None
    assert percent(0.98123) == "98.1%" and percent(None) == "not measured" and times(2.2) == "2.20x"
    assert points(-0.0113) == "-1.13 points" and points(-1e-9) == "+0.00 points" and points(0.0) == "+0.00 points"
    assert markdown_table(["a", "b"], [[1, 2]], align=["left", "right"]) == "| a | b |\n|---|---:|\n| 1 | 2 |"
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])
    assert "has no `pruning` section" in about({}, "pruning")
    assert "FAILED: RuntimeError: boom" in about(RESULTS, "deep_compression")


def test_plot_tradeoffs_and_load_results(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(RESULTS))
    fig = plot_tradeoffs(load_results(path))
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel()
    measured = [p for p in tradeoff_points(RESULTS) if p["accuracy"] is not None]
    assert len(fig.axes[0].collections) == len(measured) == 8
    assert any(t.get_text() == "distillation +1.00" for t in fig.axes[0].texts)  # 97% - 96%, in points
    fig_empty = plot_tradeoffs({})
    assert len(fig_empty.axes) == 2
    with pytest.raises(FileNotFoundError, match="python -m course_lib.benchmark"):
        load_results(tmp_path / "missing.json")


def _claim(results, section, start):
    return next(c for c in check_claims(results, section) if c["statement"].startswith(start))


def test_quantization_tables_give_each_thread_count_and_the_int8_case():
    timed = {"threads": 1, "rows": [{"model": "fp32_compiled", "median_ms": 12.0, "p10_ms": 11.5, "p90_ms": 12.5,
                                     "reliable": True, "why": ""},
                                    {"model": "int8", "median_ms": 4.0, "p10_ms": 3.9, "p90_ms": 4.2,
                                     "reliable": True, "why": ""}],
             "speedup_vs_compiled": record(3.0, 2.9, 3.1)}
    q = {**RESULTS["quantization"], "pt2e": {**RESULTS["quantization"]["pt2e"], "1": timed}}
    tables = section_tables({"quantization": q}, "quantization")
    assert len(section_tables(RESULTS, "quantization")) == len(tables) - 1  # one table per thread count measured
    assert ("| fp32, compiled (torch.compile, freezing) | 12.00 ms (p10 11.50, p90 12.50) | 3.00x (p10 2.90, "
            "p90 3.10) |") in tables[1]
    assert "| fp32, eager PyTorch | not measured | not measured |" in tables[1]
    assert "| oneDNN int8 kernel (library/instruction set) | onednn/avx512_vnni |" in tables[-1]
    target = _claim({"quantization": q}, "quantization", "On a CPU with VNNI")
    assert target["holds"] is False and "1 thread(s): 3.00x" in target["evidence"]  # 2 threads: 0.9x < 3x
    fast = {**q, "pt2e": {**q["pt2e"], "speedup_vs_compiled": record(3.2)}}
    assert _claim({"quantization": fast}, "quantization", "On a CPU with VNNI")["holds"] is True
    avx2 = {**fast, "pt2e": {**fast["pt2e"], "vnni": False, "saturates": True, "int8_kernel": "onednn/avx2"}}
    assert _claim({"quantization": avx2}, "quantization", "On a CPU with VNNI")["verdict"] == "not measured"
    case = section_tables({"quantization": {**avx2, "pt2e": {**avx2["pt2e"], "reduce_range": False}}},
                          "quantization")[-1]
    assert "| 7-bit activations (reduce_range) | False |" in case and "int16 with saturation" in case
    assert "the VNNI target does not apply" in case and "approach" in section_tables({"quantization": q},
                                                                                    "quantization")[-1]


def test_speedup_of_states_only_reliable_records():
    assert speedup_of(record(2.5)) == 2.5 and is_timing(record(2.5))
    assert speedup_of(record(0.2, reliable=False, why="load 3.1 before")) is None
    assert speedup_of(2.5) is None and speedup_of(None) is None  # a bare number carries no spread: not trusted
    assert speed(record(2.5, 2.25, 2.75)) == "2.50x (p10 2.25, p90 2.75)"
    assert speed(record(0.2, 0.1, 0.4, reliable=False, why="load 3.1 before")) == \
        "not measured reliably: load 3.1 before (p10 0.10x, p90 0.40x)"
    assert speed(3.0).startswith("not measured reliably: stored without its spread and load")
    assert speed(None) == "not measured"
    row = {"median_ms": 12.5, "p10_ms": 12.0, "p90_ms": 13.25, "reliable": True, "why": ""}
    assert latency(row) == "12.50 ms (p10 12.00, p90 13.25)" and latency(None) == "not measured"
    assert latency({**row, "reliable": False, "why": "p90/p10 = 4.00 > 1.5"}) == \
        "not measured reliably: p90/p10 = 4.00 > 1.5"


def test_plausibility_flags_more_speed_than_the_work_saved_and_slow_threads():
    # the committed file's distillation figure: 34.67x from about 15x fewer multiply-accumulates
    speed_, text = plausible_speedup(record(34.67), work_ratio=15.0)
    assert speed_ is None and text.startswith("implausible: 34.67x") and f"{15 * WORK_SLACK:.2f}x" in text
    assert plausible_speedup(record(4.7), work_ratio=15.0)[0] == 4.7
    assert plausible_speedup(record(0.2), threads=2)[0] is None  # 2 threads 5x slower than 1 on 2 cores
    assert plausible_speedup(record(1.9), threads=2)[0] == 1.9
    assert plausible_speedup(record(4.5), threads=2)[0] is None  # more than 2 threads can give, even with caches
    assert plausible_speedup(record(6.0), work_ratio=1.0, gain=4.0)[0] == 6.0  # int8: 4x per operation
    d = {**RESULTS["distillation"], "student": {**RESULTS["distillation"]["student"], "speedup": record(34.67),
                                                 "macs_ratio": 15.0}}
    claim = _claim({"distillation": d}, "distillation", "The student")
    assert claim["holds"] is None and claim["verdict"] == "not measured reliably" and "implausible" in \
        claim["evidence"]
    assert not any(p["speedup"] for p in tradeoff_points({"distillation": d}))  # not drawn as a measured speed
    a = {"threads": {"batch_size": 64, "cores": 2, "speedup": record(0.2),
                     "rows": [{"threads": 1, "median_ms": 90.6, "p10_ms": 88.0, "p90_ms": 95.0, "reliable": True},
                              {"threads": 2, "median_ms": 450.6, "p10_ms": 300.0, "p90_ms": 600.0, "reliable": True}]}}
    claim = _claim({"acceleration": a}, "acceleration", "Two intra-op threads")
    assert claim["verdict"] == "not measured reliably" and "more than 2x slower than one thread" in claim["evidence"]
    assert "implausible: 0.20x" in section_tables({"acceleration": a}, "acceleration")[0]


def test_a_file_from_before_timing_records_shows_its_speeds_as_not_measured_reliably():
    old = {"threads": [{"threads": 1, "median_ms": 90.6, "speedup": 1.0}, {"threads": 2, "median_ms": 450.6,
                                                                           "speedup": 0.2}],
           "batching": [{"batch_size": 1, "median_ms": 0.29, "samples_per_s": 3497.6}],
           "compile": {"ok": True, "compile_seconds": 41.0, "batch_size": 64, "speedup": 1.64}}
    tables = "\n".join(section_tables({"acceleration": old}, "acceleration"))
    assert "| 2 | not measured reliably: stored without its spread and load |" in tables
    assert "| 1 | not measured reliably: stored without its spread and load | not measured reliably |" in tables
    assert "450.6" not in tables and "0.20" not in tables and "3,498" not in tables and "1.64" not in tables
    verdicts = {c["statement"][:20]: c["verdict"] for c in check_claims({"acceleration": old}, "acceleration")}
    assert verdicts["torch.compile makes "] == "not measured reliably"
    assert verdicts["Two intra-op threads"] == "not measured"


def test_an_unreliable_timing_makes_its_claim_not_measured_reliably():
    why = "load 2.4 before timing on 2 cores"
    q = {**RESULTS["quantization"], "pt2e": {**RESULTS["quantization"]["pt2e"],
                                             "speedup_vs_compiled": record(2.53, reliable=False, why=why)}}
    for start in ("int8 kernels are faster", "On a CPU with VNNI"):
        claim = _claim({"quantization": q}, "quantization", start)
        assert claim["holds"] is None and claim["verdict"] == "not measured reliably" and why in claim["evidence"]
    assert "| not measured reliably |" in claims_table({"quantization": q}, "quantization")
    old = {**RESULTS["acceleration"], "fusion": {**RESULTS["acceleration"]["fusion"], "speedup": 1.05}}  # bare number
    assert _claim({"acceleration": old}, "acceleration", "Folding BatchNorm costs")["holds"] is None


def test_unreliable_timings_lists_every_flagged_record_and_row_by_its_path():
    row = {"median_ms": 1.0, "p10_ms": 0.9, "p90_ms": 1.1, "reliable": True, "why": ""}
    section = {"fusion": {"speedup": record(1.0), "speedup_batch1": record(0.7, reliable=False, why="load 3.0")},
               "threads": {"rows": [row, {**row, "reliable": False, "why": "p90/p10 = 2.00 > 1.5"}],
                           "speedup": record(0.2, reliable=False, why="descheduled")},
               "machine": {"threads": 2}, "seconds": 3.0}
    assert unreliable_timings(section, "acceleration") == [
        ("acceleration.fusion.speedup_batch1", "load 3.0"), ("acceleration.threads.rows.1", "p90/p10 = 2.00 > 1.5"),
        ("acceleration.threads.speedup", "descheduled")]
    assert unreliable_timings(RESULTS) == []


def test_run_section_records_when_where_and_at_what_load(monkeypatch):
    loads = iter([(0.25, 0.0, 0.0), (1.75, 0.0, 0.0)])
    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: next(loads))
    monkeypatch.setattr(benchmark, "importlib", types.SimpleNamespace(
        import_module=lambda name: types.SimpleNamespace(run=lambda quick=False, seeds=3: {"x": 1})))
    machine = benchmark.run_section("quantization")["machine"]
    assert (machine["load_before"], machine["load_after"]) == (0.25, 1.75)
    assert machine["started"].endswith("+00:00") and machine["capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["cpu_flags"] == [f for f in INT8_FLAGS if f in cpu_flags()]
    assert machine["int8_kernel"].split("/")[0] in {"fbgemm", "onednn", "qnnpack"} or \
        machine["int8_kernel"].startswith("unknown (")

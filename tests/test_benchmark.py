"""The benchmark runner: its command line, its JSON file, its failure handling, and the report helpers."""
from __future__ import annotations

import json
import types

import matplotlib
import pytest

matplotlib.use("Agg")

import course_lib.benchmark as benchmark  # noqa: E402
from course_lib._tables import markdown_table  # noqa: E402
from course_lib.benchmark import SECTIONS  # noqa: E402
from course_lib.benchmark.__main__ import main  # noqa: E402
from course_lib.benchmark.claims import check_claims, claims_table  # noqa: E402
from course_lib.benchmark.curves import find_curves, plot_section_curves, where_free  # noqa: E402
from course_lib.benchmark.figures import REGISTRY  # noqa: E402
from course_lib.benchmark.knee import free_up_to  # noqa: E402
from course_lib.benchmark.report import about, section_tables  # noqa: E402
from course_lib.benchmark.results import get, load_results, percent, points, times  # noqa: E402
from course_lib.benchmark.tradeoffs import format_table, plot_tradeoffs, tradeoff_points  # noqa: E402
from course_lib.plotting import plot_curves  # noqa: E402


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
    assert {"max_abs_diff", "speedup"} <= section["fusion"].keys()
    assert {"model", "rank", "accuracy", "speedup", "speedup_batch1"} <= section["low_rank"].keys()
    assert section["low_rank"]["model"] == "LeNet300100" and section["low_rank_teacher"]["model"] == "ConvNet"
    assert isinstance(section["threads"], list) and isinstance(section["batching"], list)
    assert section["seconds"] > 0 and {"torch", "threads", "cpu", "cuda_device"} <= section["machine"].keys()
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


RESULTS = {
    "distillation": {"teacher": {"params": 800, "accuracy": 0.98},
                     "student": {"params": 100, "kd_accuracy": 0.97, "scratch_accuracy": 0.96, "speedup": 3.0,
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
                "channel": {"sparsity": 0.5, "accuracy": 0.97, "params_ratio": 4.0, "latency_speedup": 1.6},
                "unstructured_latency_speedup": 1.0,
                "sparse_bytes": {"sparsity": 0.9, "csr": 500, "bitmask": 400, "dense": 3000}},
    "quantization": {"fp32_accuracy": 0.98, "ptq": {"int8": 0.979},
                     "pt2e": {"accuracy": 0.979, "fp32_accuracy": 0.98, "size_ratio": 3.9, "speedup_vs_eager": 2.2,
                              "speedup_vs_compiled": 0.9, "fp32_eager_ms": 22.0, "fp32_compiled_ms": 9.0,
                              "int8_ms": 10.0, "batch_size": 256, "threads": 2},
                     "curve": {"lenet300": {"bits": [8, 4, 2],
                                            "both": {"ptq": {"per_channel": [0.97, 0.965, 0.5],
                                                             "per_channel_per_seed": [[0.97], [0.965], [0.5]]}}}}},
    "acceleration": {"fusion": {"accuracy": 0.98, "dense_accuracy": 0.98, "params_ratio": 1.0, "speedup": 1.05,
                                "max_abs_diff": 3e-6, "batch_size": 64},
                     "low_rank": {"rank": 32, "accuracy": 0.96, "dense_accuracy": 0.972, "params_ratio": 5.0,
                                  "speedup": 2.5, "batch_size": 64},
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
    assert "**does not hold**" in claims_table(RESULTS, "quantization")


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
    assert where_free(RESULTS, "quantization") == ["lenet300 / both / ptq / per_channel: within 1 point of 97.0% "
                                                   "(mildest setting) up to 4; at 2: 50.0%"]
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


def test_quantization_tables_and_claim_give_the_cpu_time_when_measured():
    cpu = {"fp32_eager_ms": 40.0, "fp32_compiled_ms": 12.0, "int8_ms": 4.0, "speedup_vs_compiled": 3.0,
           "speedup_vs_eager": 10.0}
    q = {**RESULTS["quantization"], "pt2e": {**RESULTS["quantization"]["pt2e"], "cpu_1thread": cpu}}
    tables = section_tables({"quantization": q}, "quantization")
    assert len(section_tables(RESULTS, "quantization")) == len(tables) - 1  # no CPU times, no table
    assert "| fp32, compiled (torch.compile, freezing) | 12.0 ms | 3.00x |" in tables[-1]
    speed = next(r for r in check_claims({"quantization": q}) if r["statement"].startswith("int8 kernels are faster"))
    assert "CPU time on one thread: 3.00x against compiled fp32" in speed["evidence"] and speed["holds"] is False

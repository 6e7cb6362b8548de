"""The benchmark runner: its command line, its JSON file, its failure handling, and the report helpers."""
from __future__ import annotations

import json
import types

import matplotlib
import pytest

matplotlib.use("Agg")

import course_lib.benchmark as benchmark  # noqa: E402
from course_lib.benchmark import SECTIONS  # noqa: E402
from course_lib.benchmark.__main__ import main  # noqa: E402
from course_lib.benchmark.report import (format_table, get, load_results, markdown_table, percent,  # noqa: E402
                                         plot_tradeoffs, times, tradeoff_points)


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
    assert "low-rank" in stdout  # the table


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

    monkeypatch.setattr(benchmark.importlib, "import_module", fake)
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
    monkeypatch.setattr(benchmark.importlib, "import_module",
                        lambda name: types.SimpleNamespace(run=lambda quick=False, seeds=3: {"new": name}))
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"pruning": {"old": 1}, "quantization": {"old": 2}}))
    assert main(["--only", "quantization", "--update", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["pruning"] == {"old": 1}
    assert results["quantization"]["new"].endswith("quantization") and "old" not in results["quantization"]
    assert main(["--only", "quantization", "--out", str(out)]) == 0  # without --update: only what ran
    assert set(json.loads(out.read_text())) == {"quantization"}


def test_run_section_rejects_unknown_name_and_bad_seeds_before_running(monkeypatch):
    monkeypatch.setattr(benchmark.importlib, "import_module", lambda name: pytest.fail("must not run"))
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
                     "student": {"params": 100, "kd_accuracy": 0.97, "scratch_accuracy": 0.96}},
    "pruning": {"dense_accuracy": 0.98, "magnitude": {"0.9": 0.975},
                "channel": {"accuracy": 0.97, "params_ratio": 4.0, "latency_speedup": 1.6},
                "unstructured_latency_speedup": 1.0,
                "sparse_bytes": {"sparsity": 0.9, "csr": 500, "bitmask": 400, "dense": 3000}},
    "quantization": {"fp32_accuracy": 0.98, "ptq": {"int8": 0.979},
                     "pt2e": {"accuracy": 0.979, "fp32_accuracy": 0.98, "size_ratio": 3.9, "speedup_vs_eager": 2.2,
                              "speedup_vs_compiled": 1.1}},
    "deep_compression": {"error": "RuntimeError: boom"},
}


def test_tradeoff_points_and_table_from_hand_made_results():
    points = {p["technique"]: p for p in tradeoff_points(RESULTS)}
    assert points["distilled student"]["compression"] == 800 / 100
    sparse = points["magnitude pruning 90% (bitmask)"]  # the smaller of the two measured files, and its name
    assert sparse["compression"] == 3000 / 400 and sparse["accuracy"] == 0.975
    assert points["channel pruning"]["compression"] == 4.0  # original / pruned parameters, as measured
    assert points["int8 PT2E + torch.compile"]["speedup"] == 2.2
    assert not any(p["section"] in ("deep_compression", "acceleration") for p in points.values())
    table = format_table(RESULTS)
    assert "| int8 PT2E + torch.compile | 97.90% | 98.00% | 3.90x | 2.20x |" in table
    assert "deep_compression: FAILED: RuntimeError: boom" in table
    no_bytes = {"pruning": {**RESULTS["pruning"], "sparse_bytes": {}}}
    assert tradeoff_points(no_bytes)[0]["compression"] is None  # nothing measured, nothing claimed


def test_report_helpers():
    assert get(RESULTS, "pruning.channel.accuracy") == 0.97 and get(RESULTS, "pruning.nope.x") is None
    assert percent(0.98123) == "98.1%" and percent(None) == "not measured" and times(2.2) == "2.20x"
    assert markdown_table(["a", "b"], [[1, 2]], align=["left", "right"]) == "| a | b |\n|---|---:|\n| 1 | 2 |"
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])


def test_plot_tradeoffs_and_load_results(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(RESULTS))
    fig = plot_tradeoffs(load_results(path))
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel()
    assert len(fig.axes[0].collections) == 4
    fig_empty = plot_tradeoffs({})
    assert len(fig_empty.axes) == 2
    with pytest.raises(FileNotFoundError, match="python -m course_lib.benchmark"):
        load_results(tmp_path / "missing.json")

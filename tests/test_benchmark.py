"""The benchmark runner: its command line, its JSON file, its failure handling, and the report helpers."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import matplotlib
import pytest

matplotlib.use("Agg")

import course_lib.benchmark as benchmark  # noqa: E402
from course_lib.benchmark import SECTIONS  # noqa: E402
from course_lib.benchmark.__main__ import main  # noqa: E402
from course_lib.benchmark.report import format_table, load_results, plot_tradeoffs, tradeoff_points  # noqa: E402


@pytest.mark.slow
def test_cli_quick_acceleration_writes_json(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "course_lib.benchmark", "--quick", "--only", "acceleration",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
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
    assert "low-rank" in proc.stdout  # the table


def test_cli_unknown_section_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "course_lib.benchmark", "--only", "acceleration", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1 and "nope" in lines[0] and "acceleration" in lines[0], proc.stderr


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


def test_run_section_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown section"):
        benchmark.run_section("nope")
    assert "acceleration" in SECTIONS


RESULTS = {
    "distillation": {"teacher": {"params": 800, "accuracy": 0.98},
                     "student": {"params": 100, "kd_accuracy": 0.97, "scratch_accuracy": 0.96}},
    "pruning": {"dense_accuracy": 0.98, "magnitude": {"0.9": 0.975},
                "channel": {"accuracy": 0.97, "params_ratio": 0.25, "latency_speedup": 1.6},
                "unstructured_latency_speedup": 1.0},
    "quantization": {"fp32_accuracy": 0.98, "ptq": {"int8": 0.979}, "int8_size_ratio": 3.9,
                     "int8_latency_speedup": 2.2},
    "deep_compression": {"error": "RuntimeError: boom"},
}


def test_tradeoff_points_and_table_from_hand_made_results():
    points = {p["technique"]: p for p in tradeoff_points(RESULTS)}
    assert points["distilled student"]["compression"] == 8.0
    assert points["magnitude pruning 90%"]["compression"] == 10.0
    assert points["channel pruning"]["compression"] == 4.0  # kept fraction 0.25 -> 4x smaller
    assert points["int8 PTQ"]["speedup"] == 2.2
    assert not any(p["section"] in ("deep_compression", "acceleration") for p in points.values())
    table = format_table(RESULTS)
    assert "| int8 PTQ | 97.90% | 98.00% | 3.90x | 2.20x |" in table
    assert "deep_compression: FAILED: RuntimeError: boom" in table


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

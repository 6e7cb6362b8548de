"""Setup mistakes fail loudly, before any learner is scored (issue 26): no secret, a malformed one, a platform
without resource limits, a grader that cannot drop privileges; and ``doctor`` says which guarantees hold."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.grading.__main__ import SETUP_FAILED, main
from course_lib.grading.grade.setup import PRACTICE_SEED, SEED_ENV, SetupError, read_secret

ROOT = Path(__file__).resolve().parents[1]
EXERCISE = ROOT / "exercises" / "01_distillation.ipynb"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the grader then drops privileges")
PR_CAPBSET_DROP, CAP_SETGID, CAP_SETUID = 24, 6, 7


@pytest.mark.parametrize("value, why", [(None, "unset"), ("", "empty"), ("  ", "empty"), ("0x1F", "integer"),
                                        ("my secret", "integer")])
def test_a_missing_or_malformed_secret_stops_grade_with_one_line_and_no_results(value, why, tmp_path, monkeypatch,
                                                                                 capsys):
    monkeypatch.delenv(SEED_ENV, raising=False)
    if value is not None:
        monkeypatch.setenv(SEED_ENV, value)
    out = tmp_path / "results.json"
    assert main(["grade", str(EXERCISE), "--assignment", "distillation", "--json", str(out)]) == SETUP_FAILED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("setup error (no learner scored): ") and why in err[0]
    assert not out.exists()  # no results.json: no score of 0 for the learner
    if value and value.strip():
        assert value.strip() not in err[0]  # the secret is never echoed


@pytest.mark.parametrize("seed, why", [("no-such-seed", "cannot be read"), (None, "unset"), ("", "integer")])
def test_a_missing_or_bad_secret_stops_grade_all_before_any_learner(seed, why, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(SEED_ENV, raising=False)
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "ada.ipynb").write_bytes(EXERCISE.read_bytes())
    options = []
    if seed is not None:
        options = ["--seed-file", str(tmp_path / seed)] if seed else ["--seed-file", str(tmp_path / "empty")]
        (tmp_path / "empty").write_text("\n")
    code = main(["grade-all", str(tmp_path / "class"), "--assignment", "distillation", "--csv",
                 str(tmp_path / "grades.csv"), "--results", str(tmp_path / "results"), *options])
    captured = capsys.readouterr()
    assert code == SETUP_FAILED and not (tmp_path / "grades.csv").exists() and not (tmp_path / "results").exists()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("setup error (no learner scored): ") and why in err[0]
    assert "[1/1]" not in captured.out + captured.err  # no learner was started


def test_practice_grading_uses_the_public_seed_only_when_no_secret_is_given(tmp_path, monkeypatch):
    monkeypatch.delenv(SEED_ENV, raising=False)
    assert read_secret(None, practice=True) == PRACTICE_SEED
    with pytest.raises(SetupError):
        read_secret(None)
    monkeypatch.setenv(SEED_ENV, "-77")
    assert read_secret(None, practice=True) == -77


def test_a_platform_without_resource_limits_stops_before_importing_the_launcher(tmp_path):
    """Windows has no ``resource``: the ``grade`` command says so in one line instead of crashing."""
    script = ("import sys; sys.modules['resource'] = None\n"
              "from course_lib.grading.__main__ import main\n"
              f"sys.exit(main(['grade', {str(EXERCISE)!r}, '--assignment', 'distillation', '--practice']))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == SETUP_FAILED
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and "resource" in run.stderr


def _without_setuid() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_SETUID, CAP_SETGID):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


@pytest.mark.slow
@ROOT_ONLY
def test_a_grader_that_cannot_drop_privileges_stops_before_scoring(tmp_path):
    """Root without CAP_SETUID (a locked-down container): learner code would run as root; the grader refuses."""
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "course_lib.grading", "grade", str(EXERCISE), "--assignment",
                          "distillation", "--practice", "--no-execute", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, preexec_fn=_without_setuid)
    assert run.returncode == SETUP_FAILED, run.stderr[-2000:]
    assert run.stderr.strip().startswith("setup error (no learner scored): ") and not out.exists()


@pytest.mark.slow
def test_doctor_reports_what_holds_and_refuses_summative_grading_without_a_secret(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(SEED_ENV, raising=False)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "NO  secret" in out and out.strip().endswith("summative grading: NOT possible on this machine")
    (tmp_path / "seed").write_text("424242\n")
    code = main(["doctor", "--seed-file", str(tmp_path / "seed")])
    out = capsys.readouterr().out
    assert "ok  secret" in out and "424242" not in out
    if os.geteuid() == 0:
        assert code == 0 and "ok  file system: a fresh root" in out and "ok  seed file" in out

"""The Gradescope bundle, run as Gradescope runs it: ``/autograder`` recreated in a temporary folder (slow).

setup.sh's installs are skipped (this environment already has the course and its dependencies); what
setup.sh does to permissions is done here, then ``run_autograder`` grades a submission and must leave
``results/results.json``, also when the submission holds no notebook.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_grading_attacks import IMPORTS, LOSS, SOFT, notebook

from course_lib.grading.__main__ import main
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.grade.reports import GRADESCOPE_KEYS
from course_lib.grading.grade.setup import SETUP_FAILED

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """``/autograder`` as Gradescope builds it from the bundle: source/ unzipped, run_autograder copied."""
    tmp = tmp_path_factory.mktemp("gradescope")
    (tmp / "seed").write_text("5550123\n")
    bundle = tmp / "autograder.zip"
    assert main(["gradescope-bundle", "--assignment", "distillation", "--out", str(bundle),
                 "--seed-file", str(tmp / "seed")]) == 0
    root = tmp / "autograder"
    source = root / "source"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(source)
        for info in zf.infolist():
            (source / info.filename).chmod((info.external_attr >> 16) & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    source.chmod(0o700)  # what setup.sh does after installing
    return root


def run_autograder(root: Path, *notebooks: tuple[str, str]) -> dict:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    for name, assignment in notebooks:
        notebook(submission / name, assignment, IMPORTS, SOFT, LOSS)
    shutil.rmtree(root / "results", ignore_errors=True)
    # Gradescope's metadata of a group submission: the hidden cases are drawn for both learners' ids
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"id": 34, "name": "B"},
                                                                         {"id": 12, "name": "A"}]}))
    env = {**os.environ, "COURSE_AUTOGRADER_ROOT": str(root), "COURSE_AUTOGRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_bundle_scripts_are_valid_bash(autograder):
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(autograder / "source" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_the_bundle_ships_the_course_wheel_of_this_version(autograder):
    import course_lib
    wheels = list((autograder / "source").glob("course_lib-*.whl"))
    assert [w.name.split("-")[1] for w in wheels] == [course_lib.__version__]
    with zipfile.ZipFile(wheels[0]) as zf:
        assert "course_lib/grading/grade/grader.py" in zf.namelist()


def test_run_autograder_grades_the_submission(autograder):
    results = run_autograder(autograder, ("my_notebook.ipynb", "distillation"))
    spec = get_assignment("distillation")
    assert results["score"] == spec.exercise("soft_targets").points + spec.exercise("distillation_loss").points
    assert set(results) <= GRADESCOPE_KEYS and isinstance(results["execution_time"], int)
    assert "5550123" not in json.dumps(results)
    assert results["extra_data"]["learner"] == "12+34"


def test_run_autograder_always_leaves_a_results_file(autograder):
    results = run_autograder(autograder)
    assert results["score"] == 0 and "expected one notebook" in results["output"]
    results = run_autograder(autograder, ("a.ipynb", "pruning"))
    assert results["score"] == 0 and "marked as assignment 'pruning'" in results["output"]


def test_run_autograder_with_a_broken_seed_fails_the_run_instead_of_scoring_zero(autograder):
    """An instructor's setup mistake (here an empty seed) is Gradescope's failed run, never a score of 0."""
    seed = autograder / "source" / "seed"
    kept = seed.read_text()
    seed.write_text("\n")
    submission = autograder / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    notebook(submission / "my_notebook.ipynb", "distillation", IMPORTS, SOFT, LOSS)
    shutil.rmtree(autograder / "results", ignore_errors=True)
    env = {**os.environ, "COURSE_AUTOGRADER_ROOT": str(autograder), "COURSE_AUTOGRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run([str(autograder / "run_autograder")], env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        seed.write_text(kept)
    assert proc.returncode == SETUP_FAILED and not (autograder / "results" / "results.json").exists()
    assert proc.stderr.strip().startswith("setup error (no learner scored): ") and "integer" in proc.stderr

"""``grade-all`` on a small class: one honest, one broken, one hanging submission, two at a time (slow)."""
from __future__ import annotations

import contextlib
import csv

import pytest
from test_grading_attacks import HANG, IMPORTS, LOSS, SOFT, STEP, notebook

from course_lib.grading.__main__ import main
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.deploy.batch import grading_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    notebook(folder / "ada.ipynb", "distillation", IMPORTS, SOFT, LOSS, STEP)
    (folder / "bob").mkdir()
    (folder / "bob" / "my work.ipynb").write_text("{ this is not a notebook")
    notebook(folder / "cy.ipynb", "distillation", IMPORTS, HANG, LOSS)
    out = tmp_path_factory.mktemp("out")
    (out / "seed").write_text("5550123\n")
    with open(out / "stdout.txt", "w") as stdout, open(out / "stderr.txt", "w") as stderr, \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["grade-all", str(folder), "--assignment", "distillation", "--csv", str(out / "grades.csv"),
                     "--jobs", "2", "--no-execute", "--case-timeout", "2", "--exercise-timeout", "6",
                     "--results", str(out / "results"), "--seed-file", str(out / "seed")])
    with open(out / "grades.csv") as f:
        return code, {row["learner"]: row for row in csv.DictReader(f)}, out


def test_every_submission_gets_a_row_and_the_batch_completes(graded):
    code, rows, out = graded
    assert code == 0 and set(rows) == {"ada", "bob", "cy"}
    assert (out / "results" / "ada.json").exists()


def test_rows_hold_the_score_and_each_exercises_points(graded):
    _, rows, _ = graded
    spec = get_assignment("distillation")
    written = ("soft_targets", "distillation_loss", "distillation_step")  # ada's three functions, all right
    assert float(rows["ada"]["score"]) == sum(spec.exercise(name).points for name in written)
    assert rows["ada"]["graded"] == "yes"
    assert float(rows["ada"]["distillation_step"]) == spec.exercise("distillation_step").points
    assert float(rows["cy"]["soft_targets"]) == 0
    assert float(rows["cy"]["score"]) == spec.exercise("distillation_loss").points


def test_a_broken_submission_is_a_row_saying_why(graded):
    _, rows, _ = graded
    assert float(rows["bob"]["score"]) == 0 and rows["bob"]["graded"].startswith("no: ")
    assert "not a Jupyter notebook" in rows["bob"]["graded"]


def test_the_summary_line_counts_the_class(graded):
    _, _, out = graded
    summary = (out / "stdout.txt").read_text().strip().splitlines()[-1]
    assert summary.startswith("graded 2 of 3 submissions of distillation in ") and "1 not graded" in summary


def test_progress_is_shown_while_the_class_is_graded(graded):
    _, _, out = graded
    progress = [line for line in (out / "stderr.txt").read_text().splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/3", "[2/3", "[3/3"]
    assert sum("bob: not graded" in line for line in progress) == 1
    assert any(line.startswith(("[1/3] ada: ", "[2/3] ada: ", "[3/3] ada: ")) and " of " in line for line in progress)


def test_the_item_analysis_and_each_learners_feedback_lie_beside_the_grades(graded):
    _, rows, out = graded
    analysis = out / "grades-analysis"
    with open(analysis / "cases.csv") as f:
        cases = list(csv.DictReader(f))
    spec = get_assignment("distillation")
    assert {c["exercise"] for c in cases} == {ex.name for ex in spec.exercises}
    assert all(c["learners"] == "2" for c in cases)  # ada and cy: bob was not graded
    soft = [c for c in cases if c["exercise"] == "soft_targets"]
    assert all(c["share_failed"] == "0.50" for c in soft)  # cy's hangs, ada's passes
    with open(analysis / "functions.csv") as f:
        assert {r["exercise"] for r in csv.DictReader(f)} == {ex.name for ex in spec.exercises}
    assert sorted(p.name for p in (analysis / "answers").iterdir()) == sorted(f"{q.id}.md" for q in spec.questions)
    for learner in rows:
        feedback = (out / "results" / f"{learner}.md").read_text()
        assert feedback.startswith(f"# Feedback for {learner}")
    assert "Not graded" in (out / "results" / "bob.md").read_text()


@pytest.mark.parametrize("jobs, cores, environ, threads", [
    (2, 2, {}, "1"), (1, 2, {}, "2"), (2, 8, {"PATH": "/bin"}, "4"), (4, 2, {}, "1"),
    (2, 2, {"OMP_NUM_THREADS": "3"}, "3")])  # an instructor's own setting is kept
def test_each_grading_gets_the_threads_its_share_of_the_cores_allows(jobs, cores, environ, threads):
    env = grading_env(jobs, environ, cores)
    assert env["OMP_NUM_THREADS"] == threads and all(env[k] == v for k, v in environ.items())

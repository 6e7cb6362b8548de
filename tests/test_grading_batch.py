"""``grade-all`` on a small class: one honest, one broken, one hanging submission, two at a time (slow)."""
from __future__ import annotations

import contextlib
import csv

import pytest
from test_grading_attacks import HANG, IMPORTS, LOSS, SOFT, STEP, notebook

from course_lib.grading.__main__ import main
from course_lib.grading.authoring.specs import get_assignment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    notebook(folder / "ada.ipynb", "distillation", IMPORTS, SOFT, LOSS, STEP)
    (folder / "bob").mkdir()
    (folder / "bob" / "my work.ipynb").write_text("{ this is not a notebook")
    notebook(folder / "cy.ipynb", "distillation", IMPORTS, HANG, LOSS)
    out = tmp_path_factory.mktemp("out")
    with open(out / "stdout.txt", "w") as stdout, contextlib.redirect_stdout(stdout):
        code = main(["grade-all", str(folder), "--assignment", "distillation", "--csv", str(out / "grades.csv"),
                     "--jobs", "2", "--no-execute", "--case-timeout", "2", "--exercise-timeout", "6",
                     "--results", str(out / "results")])
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

"""The autograder: generation of exercises, feedback, and grading of good, broken and dishonest notebooks.

Small notebooks are written by the tests (from the distillation master's functions, programmatically),
graded once per module, and inspected by several tests. The real masters are graded once each (slow).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading import check
from course_lib.grading.extract import definition_nodes, defined_names
from course_lib.grading.generate import exercise_notebook, generate, render, strip_solutions
from course_lib.grading.grader import GradingError, grade, read_notebook
from course_lib.grading.spec import compare_values
from course_lib.grading.specs import NAMES, assignment_name_for, get_assignment

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

IMPORTS = "import torch\nimport torch.nn.functional as F\nfrom course_lib.grading import check"
SOFT = '''def soft_targets(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)'''
LOSS = '''def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)'''
STEP = '''def distillation_step(student, teacher, inputs, labels, optimizer, temperature=4.0, alpha=0.9):
    teacher.eval()
    student.train()
    with torch.no_grad():
        t = teacher(inputs)
    loss = distillation_loss(student(inputs), t, labels, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()'''


def write_nb(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# test")] + [new_code_cell(s) for s in sources])
    nb.metadata["course_grading"] = {"assignment": "distillation"}
    nbformat.write(nb, path)
    return path


def by_name(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"]}


def exercise_score(results: dict, name: str) -> float:
    tests = by_name(results)
    return tests[f"{name} (public tests)"]["score"] + tests[f"{name} (hidden tests)"]["score"]


# --- generation ------------------------------------------------------------------------------------

def test_strip_solutions_replaces_block_with_hinted_raise_at_its_indentation():
    src = "def soft_targets(logits, temperature):\n    x = 1\n    ### BEGIN SOLUTION\n    return x\n" \
          "    ### END SOLUTION\n\nprint('kept')"
    out = strip_solutions(src)
    assert "return x" not in out and "x = 1" in out and "print('kept')" in out
    line = [ln for ln in out.splitlines() if "NotImplementedError" in ln][0]
    assert line.startswith("    raise NotImplementedError('soft_targets: divide the logits")
    compile(out, "cell", "exec")


@pytest.mark.parametrize("src", ["    ### BEGIN SOLUTION\n    pass", "pass\n### END SOLUTION"])
def test_unbalanced_markers_are_an_error(src):
    with pytest.raises(ValueError, match="SOLUTION"):
        strip_solutions(src, "x.ipynb, cell 3")


def test_exercise_notebook_clears_outputs_and_keeps_the_rest():
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell("def f():\n    ### BEGIN SOLUTION\n"
                                                                      "    return 1\n    ### END SOLUTION")])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[1].execution_count = 3
    out = exercise_notebook(nb)
    assert out.cells[0].source == "intro"
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert "raise NotImplementedError('f: write this function')" in out.cells[1].source
    assert nb.cells[1].execution_count == 3  # the master is untouched


def test_exercises_are_up_to_date_with_the_solutions():
    masters = sorted(SOLUTIONS.glob("*.ipynb"))
    assert masters, "no solution notebooks"
    for master in masters:
        target = EXERCISES / master.name
        assert target.exists(), f"{target} missing: run `make exercises`"
        assert target.read_text() == render(master), f"{target} is out of date: run `make exercises`"
    assert {p.name for p in EXERCISES.glob("*.ipynb")} == {p.name for p in masters}


def test_generate_writes_then_reports_nothing_to_do(tmp_path):
    src = tmp_path / "solutions"
    src.mkdir()
    write_nb(src / "01_distillation.ipynb", "def soft_targets(logits, temperature):\n    ### BEGIN SOLUTION\n"
                                            "    return logits\n    ### END SOLUTION")
    assert generate(src, tmp_path / "ex", check=True) == [tmp_path / "ex" / "01_distillation.ipynb"]
    assert generate(src, tmp_path / "ex") == [tmp_path / "ex" / "01_distillation.ipynb"]
    assert generate(src, tmp_path / "ex", check=True) == []


def test_committed_masters_have_solution_blocks_and_outputs():
    for master in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(master, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any("### BEGIN SOLUTION" in c.source for c in code), master
        assert all(c.execution_count is not None for c in code), f"{master} is not executed"
        assert assignment_name_for(master, nb.metadata) in NAMES


# --- feedback and comparison --------------------------------------------------------------------------

def test_check_reports_input_output_and_expected(capsys):
    check("soft_targets", lambda logits, temperature: torch.softmax(logits, dim=-1))  # forgot the temperature
    out = capsys.readouterr().out
    assert "1 of 3 public tests passed" in out
    assert "temperature=4.0" in out and "returned tensor([[0.09003, 0.2447, 0.6652]])" in out
    # softmax([1, 2, 3] / 4), worked by hand: exp(.25, .5, .75) / sum = 0.2543, 0.3265, 0.4192
    assert "expected tensor([[0.2543, 0.3265, 0.4192]])" in out


def test_check_on_a_stub_and_on_the_reference(capsys):
    def stub(logits, temperature):
        raise NotImplementedError("soft_targets: hint")
    check("soft_targets", stub)
    from course_lib.distillation import soft_targets as reference
    check("soft_targets", reference)
    out = capsys.readouterr().out
    assert "not written yet" in out
    assert "course_lib's own" in out and "scores it 0" in out


def test_compare_values_accepts_equal_values_and_explains_differences():
    assert compare_values(torch.tensor([True, False]), torch.tensor([1.0, 0.0])) is None
    assert compare_values(0.5, torch.tensor(0.5)) is None
    assert "shape (3,)" in compare_values(torch.zeros(3), torch.zeros(2, 2))
    msg = compare_values(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    assert "1 of 3 values differ" in msg and "index (2,)" in msg and "3 instead of 4" in msg
    assert "keys" in compare_values({1: "0"}, {1: "0", 2: "1"})
    assert compare_values(torch.tensor([float("nan")]), torch.tensor([1.0])) is not None


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_runs_on_all_its_cases(name):
    from course_lib.grading.spec import call_and_observe
    for exercise in get_assignment(name).exercises:
        cases = exercise.public() + exercise.hidden(0)
        assert len(exercise.public()) >= 1 and len(exercise.hidden(0)) >= 3
        for case in cases:
            result = call_and_observe(exercise.reference_fn(), exercise, case)
            assert "value" in result, (exercise.name, case.description, result)
            assert exercise.check_answer(result["value"], result["value"], *case.make()) is None


def test_huffman_answers_are_judged_by_optimality_not_word_for_word():
    from course_lib.grading.specs.deep_compression import compare_codes
    counts = {0: 5, 1: 2, 2: 1, 3: 1}  # optimal total by hand: 5*1 + 2*2 + 1*3 + 1*3 = 15 bits
    reference = {0: "0", 1: "10", 2: "110", 3: "111"}
    assert compare_codes({0: "1", 1: "01", 2: "001", 3: "000"}, reference, (counts,), {}) is None
    assert "prefix" in compare_codes({0: "0", 1: "01", 2: "110", 3: "111"}, reference, (counts,), {})
    assert "18 bits" in compare_codes({0: "00", 1: "01", 2: "10", 3: "11"}, reference, (counts,), {})
    assert "missing [3]" in compare_codes({0: "0", 1: "10", 2: "11"}, reference, (counts,), {})
    assert "non-empty" in compare_codes({7: ""}, {7: "0"}, ({7: 3},), {})


def test_definitions_keep_defs_imports_and_constants_only():
    src = ("import torch\nEPS = 1e-12\nmodel = torch.nn.Linear(2, 2)\ndef f():\n    return EPS\n"
           "import course_lib.grading.spec as S\nS.compare_values = lambda *a: None\n"
           "soft_targets = make_it()\nprint('hi')")
    names = defined_names(definition_nodes(src, {"soft_targets"}))
    assert names == {"torch", "EPS", "f", "S", "soft_targets"}


def test_cells_with_magics_and_syntax_errors():
    from course_lib.grading.extract import cell_codes
    nb = new_notebook(cells=[new_code_cell("%%time\ndef f():\n    return 1"), new_code_cell("%matplotlib inline\nx = 1"),
                             new_code_cell("def g(:\n    pass"), new_markdown_cell("def h(): pass")])
    codes = cell_codes(nb)
    assert [c.index for c in codes] == [0, 1, 2]
    assert defined_names(definition_nodes(codes[0].source, set())) == {"f"}
    assert defined_names(definition_nodes(codes[1].source, set())) == {"x"}
    assert codes[2].error is not None and "SyntaxError" in codes[2].error


# --- grading -------------------------------------------------------------------------------------------

GRADE = dict(cell_timeout=20, total_timeout=120, exercise_timeout=30)


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    path = write_nb(tmp_path_factory.mktemp("solved") / "01_distillation.ipynb", IMPORTS, SOFT, LOSS, STEP,
                    'check("distillation_step", distillation_step)')
    return path, grade(path, **GRADE), grade(path, **GRADE)


def test_correct_functions_score_full_marks_and_results_are_gradescope_shaped(solved):
    _, results, _ = solved
    assert results["score"] == results["max_score"] == get_assignment("distillation").max_score
    assert set(results) >= {"score", "max_score", "execution_time", "output", "tests"}
    for t in results["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert t["status"] == "passed"
        assert t["visibility"] == ("after_published" if "hidden" in t["name"] else "visible")
    json.dumps(results)


def test_grading_twice_gives_the_same_score(solved):
    _, first, second = solved
    assert [t["score"] for t in first["tests"]] == [t["score"] for t in second["tests"]]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Cells reordered, duplicated, broken and dishonest: every way of losing points but one per exercise."""
    broken_loss = LOSS.replace("alpha * temperature ** 2 * kl", "alpha * kl")  # forgot T^2
    tamper = ("import course_lib.grading.spec as S, course_lib.grading.grader as G, course_lib.distillation as D\n"
              "S.compare_values = lambda *a, **k: None\nG.score_exercise = None\n"
              "D.distillation_loss = distillation_loss")
    cheat = ("from course_lib.distillation import distillation_step as _ref\n"
             "def distillation_step(*args, **kwargs):\n    return _ref(*args, **kwargs)")
    body_tamper = SOFT.replace("    return", "    import course_lib.grading.spec as S\n"
                                          "    S.compare_values = lambda *a, **k: None\n    return")
    path = write_nb(tmp_path_factory.mktemp("mixed") / "01_distillation.ipynb",
                    cheat, IMPORTS, "def soft_targets(logits, temperature):\n    return logits",  # replaced below
                    broken_loss, "this is not python (", "raise RuntimeError('a cell that fails')",
                    body_tamper, tamper, 'check("distillation_loss", distillation_loss)')
    return grade(path, **GRADE)


def test_broken_function_gets_partial_marks(mixed):
    tests = by_name(mixed)
    loss = tests["distillation_loss (hidden tests)"]
    assert 0 < loss["score"] < loss["max_score"]  # right when temperature = 1 or alpha = 0, wrong otherwise
    assert "[FAIL]" in loss["output"] and "[pass]" in loss["output"]
    assert 0 < mixed["score"] < mixed["max_score"]


def test_last_definition_wins_and_tampering_changes_nothing(mixed):
    assert exercise_score(mixed, "soft_targets") == get_assignment("distillation").exercise("soft_targets").points


def test_calling_the_reference_scores_zero_with_a_clear_message(mixed):
    assert exercise_score(mixed, "distillation_step") == 0
    out = by_name(mixed)["distillation_step (public tests)"]["output"]
    assert "calls course_lib's reference" in out and "course_lib.distillation.distillation_step" in out


def test_notebook_errors_are_reported_not_fatal(mixed):
    assert "SyntaxError" in mixed["output"] and "RuntimeError: a cell that fails" in mixed["output"]


@pytest.fixture(scope="module")
def hanging(tmp_path_factory):
    hang = ("def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):\n"
            "    while True:\n        pass")
    path = write_nb(tmp_path_factory.mktemp("hang") / "01_distillation.ipynb", IMPORTS, SOFT, hang,
                    'check("distillation_loss", distillation_loss)',
                    "from course_lib.distillation import distillation_step", "print('after the hang')")
    return grade(path, cell_timeout=5, total_timeout=60, exercise_timeout=8)


def test_a_function_that_never_returns_costs_only_its_exercise(hanging):
    assert exercise_score(hanging, "soft_targets") == 3
    assert exercise_score(hanging, "distillation_loss") == 0
    assert "did not finish" in by_name(hanging)["distillation_loss (public tests)"]["output"]
    assert "Cells stopped at the time limit" in hanging["output"]
    assert hanging["execution_time"] < 60


def test_re_exporting_the_reference_scores_zero(hanging):
    assert exercise_score(hanging, "distillation_step") == 0
    assert "is course_lib's reference" in by_name(hanging)["distillation_step (public tests)"]["output"]


def test_missing_function_scores_zero(tmp_path):
    path = write_nb(tmp_path / "01_distillation.ipynb", IMPORTS, SOFT)
    from course_lib.grading.extract import cell_codes
    from course_lib.grading.grader import run_sandboxes, score_exercise, snapshot_course_lib
    spec = get_assignment("distillation")
    cells = [{"index": c.index, "source": c.source} for c in cell_codes(read_notebook(path))]
    reports = run_sandboxes(spec, cells, seed=0, timeout=30, snapshot=snapshot_course_lib(tmp_path / "copy"))
    result = score_exercise(spec.exercise("distillation_loss"), reports["distillation_loss"], seed=0)
    assert result.score == 0 and "no function `distillation_loss`" in result.public_output
    assert score_exercise(spec.exercise("soft_targets"), reports["soft_targets"], seed=0).score == 3


def test_changed_course_lib_sources_are_reported(tmp_path, monkeypatch):
    import course_lib.grading.grader as grader
    digests = iter(["before", "after"])
    monkeypatch.setattr(grader, "source_digest", lambda spec: next(digests))
    monkeypatch.setattr(grader, "execute", lambda *a, **k: grader.Execution())
    results = grade(write_nb(tmp_path / "01_distillation.ipynb", IMPORTS, SOFT), exercise_timeout=30)
    assert "WARNING" in results["output"] and "changed on disk" in results["output"]
    assert exercise_score(results, "soft_targets") == 3


def test_sandbox_imports_course_lib_from_the_copy_taken_before_the_notebook_ran(tmp_path):
    """What the installed package looks like after the notebook ran does not matter: the copy is used."""
    from course_lib.grading.grader import run_sandboxes, score_exercise, snapshot_course_lib
    snapshot = snapshot_course_lib(tmp_path / "copy")
    (snapshot / "course_lib" / "_probe_only_in_the_copy.py").write_text(
        "import torch\ndef f(logits, temperature):\n    return torch.softmax(logits / temperature, dim=-1)\n")
    cells = [{"index": 0, "source": "def soft_targets(logits, temperature):\n"
                                    "    from course_lib._probe_only_in_the_copy import f\n"
                                    "    return f(logits, temperature)"}]
    spec = get_assignment("distillation")
    report = run_sandboxes(spec, cells, seed=0, timeout=30, snapshot=snapshot)["soft_targets"]
    assert score_exercise(spec.exercise("soft_targets"), report, seed=0).score == 3


# --- the command line ----------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_lib.grading", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("content", [None, "not a notebook", '{"cells": 3}', b"\x89PNG\r\n\x1a\n\x00"])
def test_missing_or_garbage_file_is_one_line_on_stderr(tmp_path, content):
    path = tmp_path / "01_distillation.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    proc = cli("grade", str(path))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def test_unknown_assignment_is_one_line(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "homework.ipynb")
    with pytest.raises(GradingError, match="not one of the graded exercises"):
        grade(tmp_path / "homework.ipynb")


def test_check_generated_command_passes_on_the_repository():
    proc = cli("check-generated", str(SOLUTIONS), str(EXERCISES))
    assert proc.returncode == 0, proc.stderr


# --- the real notebooks --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in sorted(SOLUTIONS.glob("*.ipynb"))])
def test_real_solution_scores_full_marks_and_its_exercise_zero(name, tmp_path):
    proc = cli("grade", str(SOLUTIONS / name), "--json", str(tmp_path / "results.json"))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == results["max_score"], proc.stdout
    assert "total" in proc.stdout
    exercise = grade(EXERCISES / name, exercise_timeout=60)
    assert exercise["score"] == 0

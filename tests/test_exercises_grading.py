"""The five exercises graded for real, through the command line (slow).

Done-when checks of issue 17: each master scores full marks and each generated exercise scores 0, and the grader's
listing (its score table) shows at least 6, 6 and 5 graded functions. Then a submission whose functions get
their bad arguments wrong: the sandboxes observe the exceptions, and only the cases that pass a bad argument
cost points, with feedback that says which error was expected.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading.__main__ import main
from course_lib.grading.authoring.specs import get_assignment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = [("distillation", "01_distillation", 6), ("pruning", "02_pruning", 6),
             ("quantization", "03_quantization", 6),
             ("deep_compression", "04_deep_compression", 5),
             ("llm_compression", "05_llm_compression", 6)]
FAST = ["--no-execute", "--practice", "--case-timeout", "3", "--exercise-timeout", "15"]


def grade(path: Path, assignment: str, tmp_path: Path, capsys) -> tuple[dict, str]:
    out = tmp_path / f"{path.stem}.json"
    assert main(["grade", str(path), "--assignment", assignment, "--json", str(out), *FAST]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


@pytest.mark.parametrize("assignment, notebook, at_least", EXERCISES)
def test_the_master_scores_full_marks_and_its_exercise_zero(assignment, notebook, at_least, tmp_path, capsys):
    spec = get_assignment(assignment)
    solved, table = grade(ROOT / "solutions" / f"{notebook}.ipynb", assignment, tmp_path, capsys)
    failed = [t["output"] for t in solved["tests"] if t["score"] != t["max_score"]]
    assert solved["score"] == spec.max_score, failed
    listed = set(re.findall(r"^(\w+) \(public tests\)", table, re.MULTILINE))
    assert listed == {ex.name for ex in spec.exercises} and len(listed) >= at_least
    assert [a["id"] for a in solved["extra_data"]["answers"]] == [q.id for q in spec.questions]
    assert all(a["text"] for a in solved["extra_data"]["answers"])  # the masters hold model answers
    blank, _ = grade(ROOT / "exercises" / f"{notebook}.ipynb", assignment, tmp_path, capsys)
    assert blank["score"] == 0
    assert "is not written yet" in blank["tests"][0]["output"]


# Right values, wrong errors: no check at all (quantize), the wrong type (binarize), a message that does not
# name the argument (quantized_linear).
CARELESS = '''import torch

def qrange(bits, signed=True):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)

def along(p, x, axis):
    p = torch.as_tensor(p)
    if axis is None:
        return p
    shape = [1] * x.dim()
    shape[axis] = -1
    return p.reshape(shape)

def quantize(x, scale, zero_point, bits=8, signed=True, axis=None):
    q_min, q_max = qrange(bits, signed)
    s, z = along(scale, x, axis).float(), along(zero_point, x, axis)
    return torch.clamp(torch.round(x.detach() / s) + z, q_min, q_max).to(torch.int64)

def binarize(weight, per_channel=True):
    if not weight.is_floating_point():
        raise ValueError("weight must be floating-point")
    alpha = weight.abs().mean(dim=tuple(range(1, weight.dim())), keepdim=True) if per_channel else weight.abs().mean()
    signs = torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)
    return alpha * (signs + (weight - weight.detach()) * (weight.detach().abs() <= 1))

def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias, y_scale, y_zero_point):
    if x_q.dtype != torch.int8 or w_q.dtype != torch.int8:
        raise TypeError("codes must be int8")
    if x_q.shape[1] != w_q.shape[1]:
        raise ValueError("shapes do not match")
    acc = (x_q.int() - x_zero_point) @ w_q.int().t()
    w_scale = torch.as_tensor(w_scale, dtype=torch.float64)
    if bias is not None:
        acc = acc + torch.round(bias.double() / (x_scale * w_scale)).int()
    q = torch.round(acc.double() * (x_scale * w_scale / y_scale)) + y_zero_point
    return q.clamp(-128, 127).to(torch.int8)
'''


def test_wrong_errors_cost_exactly_the_bad_argument_cases(tmp_path, capsys):
    path = tmp_path / "careless.ipynb"
    nb = new_notebook(cells=[new_markdown_cell("# careless"), new_code_cell(CARELESS)])
    nb.metadata["course_grading"] = {"assignment": "quantization"}
    nbformat.write(nb, path)
    results, _ = grade(path, "quantization", tmp_path, capsys)
    tests = {t["name"]: t for t in results["tests"]}
    spec = get_assignment("quantization")
    for name, kind, wrong in (("quantize", "public", 1), ("quantize", "hidden", 2), ("binarize", "public", 1),
                              ("binarize", "hidden", 1), ("quantized_linear", "public", 3),
                              ("quantized_linear", "hidden", 3)):
        extra = tests[f"{name} ({kind} tests)"]["extra_data"]
        assert extra["cases"] - extra["passed"] == wrong, (name, kind, tests[f"{name} ({kind} tests)"]["output"])
    public = tests["quantize (public tests)"]["output"]
    assert "instead of raising ValueError whose message names 'scale'" in public
    assert "raised ValueError: weight must be floating-point; expected TypeError" in \
        tests["binarize (public tests)"]["output"]
    assert "the message must name 'x_q'" in tests["quantized_linear (public tests)"]["output"]
    assert tests["compute_qparams (public tests)"]["score"] == 0  # not written: the others are unaffected
    assert results["score"] < spec.max_score

"""The autograder's parts that run in this process: generation, feedback, definitions, the fence, the channel,
scoring, reports and the command line's arguments. Nothing here starts a process or a kernel (those tests
are in test_grading_attacks.py, test_grading_batch.py and test_grading_bundle.py, marked slow)."""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading import check
from course_lib.grading.__main__ import main, options_from, parser
from course_lib.grading.authoring import plain
from course_lib.grading.authoring.calling import call_and_observe
from course_lib.grading.authoring.compare import compare_values
from course_lib.grading.authoring.exercise import Assignment, Question
from course_lib.grading.authoring.generate import exercise_notebook, generate, render, strip_solutions
from course_lib.grading.authoring.plain import Unsupported, to_plain
from course_lib.grading.authoring.questions import Answer, collect_answers
from course_lib.grading.authoring.seeds import derived_seed, hidden_seed, learner_secret, rng_seed
from course_lib.grading.authoring.specs import NAMES, get_assignment
from course_lib.grading.confinement.channel import MAX_DEPTH, ChannelError, Reader, decode, encode, send
from course_lib.grading.confinement.confine import Confinement, Isolation, ProcessLimits, _blocked_dirs, _needed_in
from course_lib.grading.confinement.fence import (
    TRIPWIRE,
    body_tokens,
    fence_source,
    fenced_files,
    fenced_names,
    same_tokens,
    tripwire_names,
)
from course_lib.grading.confinement.options import Memory, Options, TimeLimits
from course_lib.grading.confinement.workspace import Workspace, course_sources, readable_by
from course_lib.grading.deploy.analysis import write_analysis
from course_lib.grading.grade.extract import CellCode, cell_codes, definitions, statements
from course_lib.grading.grade.grader import assignment_for
from course_lib.grading.grade.observations import CaseOutcome, Observations
from course_lib.grading.grade.reading import GradingError, notebook_path
from course_lib.grading.grade.reports import (
    GRADESCOPE_KEYS,
    classroom,
    classroom_output,
    exercise_scores,
    fatal,
    feedback_markdown,
    gradescope,
    score_table,
)
from course_lib.grading.grade.scoring import ExerciseResult, _feedback, cases_of, expected_answers, score_exercise
from course_lib.grading.grade.setup import SEED_ENV, read_secret
from course_lib.grading.grade.status import MESSAGES, Status

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"


@pytest.fixture
def secret(monkeypatch):
    """A grading secret in the environment, as a grading machine has one (without it, ``grade`` stops: exit 3)."""
    monkeypatch.setenv(SEED_ENV, "424242")


def write_nb(path: Path, *sources: str, assignment: str | None = "distillation") -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# test")] + [new_code_cell(s) for s in sources])
    if assignment:
        nb.metadata["course_grading"] = {"assignment": assignment}
    nbformat.write(nb, path)
    return path


# --- generation ------------------------------------------------------------------------------------

def test_strip_solutions_replaces_block_with_hinted_raise_at_its_indentation():
    src = "def soft_targets(logits, temperature):\n    x = 1\n    ### BEGIN SOLUTION\n    return x\n" \
          "    ### END SOLUTION\n\nprint('kept')"
    out = strip_solutions(src)
    assert "return x" not in out and "x = 1" in out and "print('kept')" in out
    line = [ln for ln in out.splitlines() if "NotImplementedError" in ln][0]
    assert line.startswith("    raise NotImplementedError(") and "soft_targets: the softened probabilities" in line
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


def test_committed_masters_have_solution_blocks_outputs_and_their_assignment():
    for master in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(master, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any("### BEGIN SOLUTION" in c.source for c in code), master
        assert all(c.execution_count is not None for c in code), f"{master} is not executed"
        assert nb.metadata["course_grading"]["assignment"] in NAMES


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


def test_check_leaves_the_notebooks_random_state_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    check("soft_targets", lambda logits, temperature: torch.softmax(logits / temperature + 0 * torch.rand(1), -1))
    assert torch.equal(torch.get_rng_state(), before)


def test_compare_values_accepts_equal_values_and_explains_differences():
    assert compare_values(torch.tensor([True, False]), torch.tensor([1.0, 0.0])) is None
    assert compare_values(0.5, torch.tensor(0.5)) is None
    assert "shape (3,)" in compare_values(torch.zeros(3), torch.zeros(2, 2))
    # a shape mismatch shows what the function returned, not only what was expected
    assert compare_values(torch.tensor([1, 2, 3, 4, 5]), torch.tensor([1, 1, 1]), where="the offsets") == (
        "returned tensor([1, 2, 3, 4, 5]) of shape (5,) as the offsets; expected a tensor of shape (3,): "
        "tensor([1, 1, 1])")
    assert "you returned (tensor([0, 1]), tensor([0.5]))" in compare_values(
        (torch.tensor([0, 1]), torch.tensor([0.5])), (torch.tensor([0.5]), torch.tensor([0, 1])))
    msg = compare_values(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    assert "1 of 3 values differ" in msg and "index (2,)" in msg and "3 instead of 4" in msg
    assert "keys" in compare_values({1: "0"}, {1: "0", 2: "1"})
    assert compare_values(torch.tensor([float("nan")]), torch.tensor([1.0])) is not None


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_runs_on_all_its_cases(name):
    spec = get_assignment(name)
    for exercise in spec.exercises:
        cases = cases_of(exercise, spec.name, secret=0)
        assert len(cases["public"]) >= 1 and len(cases["hidden"]) >= 3
        expected = expected_answers(exercise, cases, secret=0)
        for (kind, i), value in expected.items():
            assert exercise.check_answer(value, value, *cases[kind][i].make()) is None


def test_huffman_answers_are_judged_by_optimality_not_word_for_word():
    from course_lib.grading.authoring.specs.deep_compression.coding import compare_codes
    counts = {0: 5, 1: 2, 2: 1, 3: 1}  # optimal total by hand: 5*1 + 2*2 + 1*3 + 1*3 = 15 bits
    reference = {0: "0", 1: "10", 2: "110", 3: "111"}
    assert compare_codes({0: "1", 1: "01", 2: "001", 3: "000"}, reference, (counts,), {}) is None
    assert "prefix" in compare_codes({0: "0", 1: "01", 2: "110", 3: "111"}, reference, (counts,), {})
    assert "18 bits" in compare_codes({0: "00", 1: "01", 2: "10", 3: "11"}, reference, (counts,), {})
    assert "missing [3]" in compare_codes({0: "0", 1: "10", 2: "11"}, reference, (counts,), {})
    assert "non-empty" in compare_codes({7: ""}, {7: "0"}, ({7: 3},), {})


# --- seeds -------------------------------------------------------------------------------------------------

def test_seeds_are_stable_and_the_public_ones_do_not_depend_on_the_secret():
    assert derived_seed("a", 1) == derived_seed("a", 1) != derived_seed("a", 2)
    assert 0 <= derived_seed("x") < 2 ** 31
    assert rng_seed("soft_targets", "public", 0, secret=1) == rng_seed("soft_targets", "public", 0, secret=2)
    assert rng_seed("soft_targets", "hidden", 0, secret=1) != rng_seed("soft_targets", "hidden", 0, secret=2)
    assert hidden_seed(5, "distillation", "soft_targets") != hidden_seed(5, "distillation", "distillation_loss")


def _hidden_inputs(secret: int) -> list:
    """The hidden cases' arguments of every distillation exercise, drawn for ``secret``."""
    spec = get_assignment("distillation")
    return [case.make() for ex in spec.exercises for case in cases_of(ex, spec.name, secret)["hidden"]]


def _tensors(value: object) -> list[torch.Tensor]:
    """The tensors an input holds (a module's: its parameters and buffers), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, torch.nn.Module):
        return list(value.state_dict().values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _same(a: object, b: object) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return len(ta) == len(tb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(ta, tb))


def test_two_learners_get_different_hidden_inputs_and_a_regrade_the_same():
    ada, bob = learner_secret(424242, "ada"), learner_secret(424242, "bob")
    assert ada != bob and learner_secret(424242, " ada ") == ada and learner_secret(1, "ada") != ada
    first, again, other = _hidden_inputs(ada), _hidden_inputs(learner_secret(424242, "ada")), _hidden_inputs(bob)
    assert _same(first, again)
    assert len(first) == len(other) and all(_tensors(a) for a in first)
    assert not any(_same(a, b) for a, b in zip(first, other))  # no hidden input shared
    for bad in ("", "  ", None):
        with pytest.raises(ValueError, match="learner"):
            learner_secret(424242, bad)


def test_a_random_function_gets_the_same_answer_in_check_and_in_the_grader():
    spec = get_assignment("distillation")
    exercise = spec.exercise("soft_targets")

    def noisy(logits, temperature):
        return torch.softmax(logits / temperature, -1) + torch.rand(logits.shape)

    case = exercise.public()[0]
    seed = rng_seed(exercise.name, "public", 0, None)
    first = call_and_observe(noisy, exercise, case, seed=seed)["value"]
    assert torch.equal(first, call_and_observe(noisy, exercise, case, seed=seed)["value"])


# --- definitions ---------------------------------------------------------------------------------------

def test_definitions_keep_what_graded_functions_need_calls_included():
    src = ("import torch\nimport torch.nn.functional as F\nfrom course_lib.quantization import qrange\n"
           "EPS = torch.finfo(torch.float32).eps\ndevice = torch.device('cpu')\nteacher = train_for_an_hour()\n"
           "def helper(x):\n    return x.clamp(min=EPS).to(device)\n"
           "def soft_targets(logits, temperature):\n    return F.softmax(helper(logits) / temperature, -1)\n"
           "@staticmethod\ndef decorated():\n    return qrange(8)\n"
           "import course_lib.grading.authoring.compare as S\nS.compare_values = lambda *a: None\nprint('hi')\n"
           "check('soft_targets', soft_targets)\nfor i in range(3):\n    EPS = i\n")
    kept = definitions([CellCode(0, src)], {"soft_targets"})
    assert [sorted(st.binds) for st in kept] == [["torch"], ["F"], ["EPS"], ["device"], ["helper"], ["soft_targets"]]
    assert [sorted(st.binds) for st in definitions([CellCode(0, src)], {"decorated"})] == [
        ["qrange"], ["decorated"]]
    assert definitions([CellCode(0, src)], {"decorated"})[1].source.startswith("@staticmethod")


def test_a_functions_own_local_names_do_not_pull_in_top_level_statements():
    src = ("def magnitude_mask(weight, sparsity):\n    masks = [weight]\n    return [m for m in masks if model]\n"
           "model = 1\nmasks = magnitude_mask(torch.zeros(3), 0.5)\nclass Helper:\n    masks = 2\n"
           "    def f(self):\n        return masks\n")
    assert [sorted(st.binds) for st in definitions([CellCode(0, src)], {"magnitude_mask"})] == [
        ["magnitude_mask"], ["model"]]
    assert [sorted(st.binds) for st in definitions([CellCode(0, src)], {"Helper"})] == [
        ["magnitude_mask"], ["model"], ["masks"], ["Helper"]]


def test_the_last_binding_wins_and_every_binding_of_a_needed_name_is_kept():
    cells = [CellCode(0, "def f(x):\n    return 1"), CellCode(1, "K = 2"), CellCode(2, "def f(x):\n    return K")]
    kept = definitions(cells, {"f"})
    assert [(st.cell, sorted(st.binds)) for st in kept] == [(0, ["f"]), (1, ["K"]), (2, ["f"])]


def test_cells_with_magics_and_syntax_errors():
    nb = new_notebook(cells=[new_code_cell("%%time\ndef f():\n    return 1"),
                             new_code_cell("%matplotlib inline\nx = 1"), new_code_cell("def g(:\n    pass"),
                             new_markdown_cell("def h(): pass")])
    codes = cell_codes(nb)
    assert [c.number for c in codes] == [1, 2, 3]  # code cells counted from 1, as JupyterLab's [n]
    assert [sorted(st.binds) for st in statements(codes)] == [["f"], ["x"]]
    assert codes[2].error is not None and "SyntaxError" in codes[2].error


# --- the fence -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_fenced_files_keep_every_line_and_lose_every_reference_body(name):
    spec = get_assignment(name)
    for relative, text in fenced_files(spec).items():
        original = (ROOT / "course_lib" / relative).read_text()
        assert len(text.splitlines()) == len(original.splitlines())
        compile(text, str(relative), "exec")
        for ex in spec.exercises:
            if ex.reference_fn().__code__.co_filename.endswith(str(relative)):
                body = body_tokens(__import__("inspect").getsource(ex.reference_fn()))
                assert " ".join(body[:8]) not in " ".join(text.split()), f"{ex.name}'s body survived"
                assert f"trip('{ex.reference_fn().__module__}.{ex.name}')" in text


def test_the_fence_takes_the_helpers_a_reference_uses_but_not_the_allowed_ones():
    import ast
    huffman = (ROOT / "course_lib/compression/huffman.py").read_text()
    fenced = fenced_names(ast.parse(huffman), {"huffman_code"})
    assert {"huffman_code", "huffman_lengths", "canonical_code"} <= fenced and "huffman_encode" not in fenced
    affine = (ROOT / "course_lib/quantization/affine.py").read_text()
    graded = {"compute_qparams", "quantize", "dequantize", "fake_quantize"}
    assert "qrange" in fenced_names(ast.parse(affine), graded)
    assert "qrange" not in fenced_names(ast.parse(affine), graded, {"qrange"})
    fenced = fenced_files(get_assignment("quantization"))
    text = fenced[Path("quantization/affine.py")]
    assert "_FakeQuantizeSTE.forward')" in text and "def qrange" in text
    assert "trip('course_lib.quantization.affine.qrange')" not in text  # the allowed helper keeps its body
    names = tripwire_names(fenced)
    assert "course_lib.quantization.affine.quantize" in names and "course_lib.quantization.affine.qrange" not in names


def test_a_fenced_reference_trips_instead_of_computing():
    source = (ROOT / "course_lib/distillation/__init__.py").read_text()
    fenced = fence_source(source, {"soft_targets"}, "course_lib.distillation")
    namespace = {"__name__": "course_lib.distillation.fenced_copy", "__package__": "course_lib.distillation"}
    exec(compile(fenced, "fenced.py", "exec"), namespace)  # noqa: S102 - the course's own code
    with pytest.raises(RuntimeError, match="fenced off"):
        namespace["soft_targets"](torch.zeros(1, 3), 1.0)
    assert float(namespace["hard_label_loss"](torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]))) > 0


def test_a_one_line_reference_is_fenced_too():
    fenced = fence_source("import x\n@deco\ndef f(a): return (a +\n    1)\ny = 2\n", {"f"}, "m")
    assert fenced.splitlines() == ["import x", "@deco", "def f(a): " + TRIPWIRE.format(qualname="m.f"), "", "y = 2"]


def test_same_tokens_ignores_layout_comments_and_docstring_but_not_names():
    import inspect

    from course_lib.distillation import soft_targets
    src = inspect.getsource(soft_targets)
    reformatted = src.replace('"""', '"""Mine. ', 1).replace("    ", "  ") + "  # mine\n"
    assert same_tokens(reformatted, soft_targets)
    assert not same_tokens(src.replace("temperature", "t"), soft_targets)
    assert not same_tokens("def soft_targets(logits, temperature):\n    return logits", soft_targets)


# --- the channel ---------------------------------------------------------------------------------------

def test_values_cross_the_channel_unchanged():
    value = {"t": [torch.arange(6).reshape(2, 3).to(dtype) for dtype in (torch.float32, torch.int64, torch.bool,
                                                                         torch.bfloat16, torch.float16)],
             1: (None, True, 3, 2.5, "s", float("nan"), float("-inf")), "empty": torch.zeros(0, 4),
             "scalar": torch.tensor(1.5), "odd": Unsupported("Foo")}
    back = decode(json.loads(json.dumps(encode(value))))
    assert set(back) == {"t", 1, "empty", "scalar", "odd"} and back["odd"] == Unsupported("Foo")
    for a, b in zip(back["t"], value["t"]):
        assert a.dtype == b.dtype and torch.equal(a, b) and type(a) is torch.Tensor
    assert back[1][:5] == (None, True, 3, 2.5, "s") and back[1][5] != back[1][5] and back[1][6] == float("-inf")
    assert back["empty"].shape == (0, 4) and back["scalar"].item() == 1.5


def test_a_tensor_subclass_crosses_as_a_plain_tensor():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True
    back = decode(encode(torch.zeros(3).as_subclass(Liar)))
    assert type(back) is torch.Tensor and torch.equal(back, torch.zeros(3))


@pytest.mark.parametrize("data", [{"__tensor__": ["object", [1], ""]},
                                  {"__tensor__": ["float32", [2], base64.b64encode(b"\0" * 4).decode()]},
                                  {"__tensor__": ["float32", [-1], ""]}, {"__pickle__": "x"}, {"a": 1, "b": 2},
                                  {"__dict__": [[True, 1]]}, {"__float__": "1e999"}, {"__tuple__": "abc"}])
def test_decode_refuses_anything_but_plain_data(data):
    with pytest.raises(ChannelError):
        decode(data)


def test_decode_refuses_deep_nesting():
    data: object = 1
    for _ in range(100):
        data = [data]
    with pytest.raises(ChannelError, match="deeply"):
        decode(data)


def test_reader_reassembles_frames_and_refuses_a_long_one_before_reading_it():
    r, w = os.pipe()
    try:
        reader = Reader(r, cap=1000)
        frame = json.dumps({"type": "case", "index": 1}).encode()
        os.write(w, len(frame).to_bytes(8, "big") + frame[:5])
        assert reader.poll(0.1) == []
        os.write(w, frame[5:])
        send(w, {"type": "ready"})
        assert [m["type"] for m in reader.poll(0.1)] == ["case", "ready"]
        os.write(w, (10 ** 12).to_bytes(8, "big"))
        with pytest.raises(ChannelError, match="limit"):
            reader.poll(0.1)
    finally:
        os.close(r)
        os.close(w)


def test_reader_refuses_a_frame_that_is_not_a_json_object():
    r, w = os.pipe()
    try:
        os.write(w, (3).to_bytes(8, "big") + b"[1]")
        with pytest.raises(ChannelError, match="object"):
            Reader(r, cap=100).poll(0.1)
    finally:
        os.close(r)
        os.close(w)


# --- scoring -------------------------------------------------------------------------------------------

def _observations(exercise, cases, expected, wrong=(), statuses=None) -> Observations:
    obs = Observations()
    for (kind, i), value in expected.items():
        status = (statuses or {}).get((kind, i))
        if status is not None:
            obs.cases[(kind, i)] = CaseOutcome(status, detail="10 s")
        elif (kind, i) in wrong:
            obs.cases[(kind, i)] = CaseOutcome(Status.ANSWERED, {"value": value * 0 + 0.5})
        else:
            obs.cases[(kind, i)] = CaseOutcome(Status.ANSWERED, {"value": decode(encode(value))})
    return obs


@pytest.fixture(scope="module")
def soft():
    spec = get_assignment("distillation")
    exercise = spec.exercise("soft_targets")
    cases = cases_of(exercise, spec.name, secret=7)
    return exercise, cases, expected_answers(exercise, cases, secret=7)


def test_scores_are_proportional_to_the_cases_passed_and_say_why(soft):
    exercise, cases, expected = soft
    obs = _observations(exercise, cases, expected, wrong={("hidden", 0)},
                        statuses={("public", 2): Status.TIMEOUT, ("hidden", 5): Status.NOT_RUN})
    result = score_exercise(exercise, obs, cases, expected)
    assert (result.public_passed, result.hidden_passed) == (2, 4)
    assert result.public_score == round(exercise.public_points * 2 / 3, 2)
    assert result.hidden_score == round(exercise.hidden_points * 4 / 6, 2)
    assert "did not finish within 10 s" in result.public_output
    assert "was not run" in result.hidden_output and "[FAIL]" in result.hidden_output


def test_scoring_one_wrong_public_answer_gives_the_hand_computed_result_and_changes_nothing(soft):
    """soft_targets (1 public point, 2 hidden) with the second public case answered 0.5 everywhere: 2 of 3 public
    cases pass (0.67 points), 6 of 6 hidden (2 points); the feedback shows softmax([1, 2, 3] / 4), computed here
    with math.exp; the observations are left as they were, so scoring them again gives the same result."""
    exercise, cases, expected = soft
    assert (exercise.public_points, exercise.hidden_points, len(cases["public"]), len(cases["hidden"])) == (1, 2, 3, 6)
    obs = _observations(exercise, cases, expected, wrong={("public", 1)})
    answers = {key: outcome.result["value"].clone() for key, outcome in obs.cases.items()}
    result = score_exercise(exercise, obs, cases, expected)
    assert (result.public_passed, result.public_total, result.hidden_passed, result.hidden_total) == (2, 3, 6, 6)
    assert (result.public_score, result.hidden_score, result.score) == (0.67, 2.0, 2.67) and not result.flags
    exps = [math.exp(z / 4) for z in (1, 2, 3)]
    softmax = ", ".join(f"{e / sum(exps):.4g}" for e in exps)  # 0.2543, 0.3265, 0.4192
    lines = result.public_output.splitlines()
    assert lines[0] == "soft_targets: 2 of 3 public tests passed."
    assert lines[1] == f"  [pass] {cases['public'][0].description}" and lines[3].startswith("  [pass] ")
    assert lines[2].startswith(f"  [FAIL] {cases['public'][1].description}: your function returned tensor([[0.5, 0.5, "
                               f"0.5]]), expected tensor([[{softmax}]])")
    assert result.hidden_output.splitlines()[0] == "soft_targets: 6 of 6 hidden tests passed."
    assert all(torch.equal(outcome.result["value"], answers[key]) for key, outcome in obs.cases.items())
    assert score_exercise(exercise, obs, cases, expected) == result


def test_calling_the_reference_scores_zero_and_names_it_only_where_safe(soft):
    exercise, cases, expected = soft
    obs = _observations(exercise, cases, expected)
    obs.status, obs.detail, obs.hidden_detail = Status.CALLS_REFERENCE, "a fenced reference", "course_lib.x.f"
    result = score_exercise(exercise, obs, cases, expected)
    assert result.score == 0
    assert "calls course_lib's reference" in result.public_output and "course_lib.x.f" not in result.public_output
    assert "course_lib.x.f" in result.hidden_output


def test_every_status_has_a_message():
    assert set(MESSAGES) == set(Status)
    assert Status.from_sandbox("missing") is Status.MISSING and Status.from_sandbox("forged") is Status.START_CRASHED


def test_time_limits_must_be_positive():
    with pytest.raises(ValueError, match="case_cpu"):
        TimeLimits(case_cpu=0)


def test_each_kind_of_limit_has_its_own_option_and_they_meet_in_a_process_limits():
    options = Options(memory=Memory(data_bytes=3 << 30, address_bytes=9 << 30), file_bytes=5 << 20)
    assert options.process_limits(cpu_seconds=7, open_files=9) == ProcessLimits(
        data_bytes=3 << 30, address_bytes=9 << 30, cpu_seconds=7, file_bytes=5 << 20, open_files=9, nproc=None)
    assert TimeLimits(start=1, definitions=2, exercise=3, case_cpu=4).sandbox_cpu == 1 + 2 + 3 + 4 + 1
    with pytest.raises(ValueError, match="data_bytes must be a positive number of bytes, got 0"):
        Memory(data_bytes=0)
    with pytest.raises(TypeError, match="address_bytes must be a positive number of bytes, got str"):
        Memory(address_bytes="8G")
    with pytest.raises(ValueError, match="file_bytes"):
        Options(file_bytes=-1)


def test_the_command_lines_limits_reach_their_own_options():
    args = parser().parse_args(["grade", "x.ipynb", "--assignment", "pruning", "--case-timeout", "2",
                                "--exercise-timeout", "9", "--memory", "1.5"])
    options = options_from(args)
    assert (options.time.case_cpu, options.time.case_wall, options.time.exercise) == (2, 4, 9)
    assert options.memory == Memory(data_bytes=3 << 29, address_bytes=Memory().address_bytes)


def test_the_deepest_observation_crosses_the_channel_and_a_deeper_forged_one_does_not():
    value: object = 1.0
    for _ in range(3 * plain.MAX_DEPTH):
        value = [value]
    observed = {"value": to_plain(value)}  # as a sandbox sends it: cut below MAX_DEPTH levels of lists
    got = decode(encode(observed))["value"]
    for _ in range(plain.MAX_DEPTH + 1):
        got = got[0]
    assert got == Unsupported("deeply nested data")
    forged: object = 1.0
    for _ in range(MAX_DEPTH + 2):
        forged = [forged]
    with pytest.raises(ChannelError, match="deeply"):
        decode(forged)


# --- reports -------------------------------------------------------------------------------------------

def _results(soft) -> dict:
    exercise, cases, expected = soft
    result = score_exercise(exercise, _observations(exercise, cases, expected), cases, expected)
    spec = get_assignment("distillation")
    return gradescope(spec, [result], [], ["note"], 12.6, {"isolation": {"summative": True}})


def test_results_follow_gradescopes_specification(soft):
    results = _results(soft)
    assert set(results) <= GRADESCOPE_KEYS
    assert isinstance(results["execution_time"], int) and results["execution_time"] == 13
    assert results["extra_data"]["max_score"] == get_assignment("distillation").max_score
    for t in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert t["visibility"] == ("after_published" if "hidden" in t["name"] else "visible")
    assert exercise_scores(results) == {"soft_targets": 3.0}
    json.dumps(results)


def test_a_fatal_error_is_still_a_results_file():
    results = fatal("no notebook", 3.2)
    assert set(results) <= GRADESCOPE_KEYS and results["score"] == 0 and "no notebook" in results["output"]
    assert classroom(results)["status"] == "error"


def test_classroom_result_is_what_the_reporter_reads(soft):
    results = _results(soft)
    line = classroom_output(results)
    assert line.startswith("result=")
    decoded = json.loads(base64.b64decode(line.removeprefix("result=")))
    assert decoded["max_score"] == get_assignment("distillation").max_score
    assert sum(t["score"] for t in decoded["tests"]) == results["score"]
    assert all(t["status"] in ("pass", "fail") for t in decoded["tests"])
    assert "[pass]" not in [t for t in decoded["tests"] if "hidden" in t["name"]][0]["message"]


def _class_results() -> dict[str, dict]:
    """Three learners' results.json for one exercise of three public and two hidden cases, outcomes by hand."""
    spec = get_assignment("distillation")
    exercise = spec.exercise("soft_targets")
    public = [("sums to 1", None), ("T = 1", None), ("large logits", None)]
    learners = {
        "ada": (public, [("hidden 1", None), ("hidden 2", None)], 3.0),
        "bob": ([public[0], ("T = 1", "returned 0.5 instead of 0.7"), ("large logits", "returned nan")],
                [("hidden 1", "returned nan"), ("hidden 2", None)], 1.0),
        "cy": ([public[0], ("T = 1", "returned 0.5 instead of 0.7"), ("large logits", "returned 0.1")],
               [("hidden 1", "returned 1"), ("hidden 2", None)], 1.0),
    }
    out = {}
    for learner, (pub, hid, score) in learners.items():
        result = ExerciseResult("soft_targets", score, 3.0, 0.0, 0.0, sum(m is None for _, m in pub), 3,
                                sum(m is None for _, m in hid), 2, _feedback(exercise, pub, "public"),
                                _feedback(exercise, hid, "hidden"))
        answers = [Answer("why-t2", "Why T^2?", 2.0, f"{learner}'s reason")] if learner != "cy" else []
        out[learner] = gradescope(spec, [result], answers, [], 1.0, {"learner": learner})
    return out


def test_the_item_analysis_counts_failures_per_case_and_scores_per_function(tmp_path):
    folder = write_analysis(tmp_path / "analysis", _class_results(), ["soft_targets"], ["why-t2"])
    with open(folder / "cases.csv") as f:
        cases = {(r["kind"], int(r["case"])): r for r in csv.DictReader(f)}
    assert len(cases) == 5
    assert cases[("public", 1)]["failed"] == "0" and cases[("public", 1)]["most_common_failure"] == ""
    assert cases[("public", 2)]["share_failed"] == "0.67"  # bob and cy of three
    assert cases[("public", 2)]["most_common_failure"] == "returned 0.5 instead of 0.7"
    assert cases[("public", 3)]["learners_with_it"] == "1" and cases[("hidden", 1)]["failed"] == "2"
    with open(folder / "functions.csv") as f:
        scores = {r["score"]: int(r["learners"]) for r in csv.DictReader(f)}
    assert scores == {"1": 2, "3": 1}  # ada 3 points, bob and cy 1
    answers = (folder / "answers" / "why-t2.md").read_text()
    assert "## ada\n\nada's reason" in answers and "## cy\n\n(no answer)" in answers


def test_a_learners_feedback_file_is_readable_markdown():
    text = feedback_markdown(_class_results()["bob"], "bob")
    assert text.startswith("# Feedback for bob") and "**Score: 1 of " in text
    assert "## soft_targets (public tests): 1 / 3" in text and "your function returned nan" in text
    assert "isolation" not in text and "flags" not in text


# --- the notebook and the assignment -------------------------------------------------------------------

def test_the_instructor_names_the_assignment_and_metadata_cannot_change_it(tmp_path):
    nb = nbformat.read(write_nb(tmp_path / "04_deep_compression.ipynb", "x = 1"), as_version=4)
    assert assignment_for(nb, "distillation").name == "distillation"  # the file name does not matter
    nb.metadata["course_grading"]["assignment"] = "deep_compression"
    with pytest.raises(GradingError, match="marked as assignment 'deep_compression'"):
        assignment_for(nb, "distillation")
    with pytest.raises(GradingError, match="unknown assignment"):
        assignment_for(nb, "homework")


def test_a_submission_folder_must_hold_one_notebook(tmp_path):
    with pytest.raises(GradingError, match="found 0"):
        notebook_path(tmp_path)
    write_nb(tmp_path / "a.ipynb", "x = 1")
    assert notebook_path(tmp_path) == tmp_path / "a.ipynb"
    write_nb(tmp_path / "b.ipynb", "x = 1")
    with pytest.raises(GradingError, match="found 2"):
        notebook_path(tmp_path)


def test_the_seed_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    (tmp_path / "seed").write_text("1234\n")
    assert read_secret(tmp_path / "seed") == 1234
    monkeypatch.setenv("COURSE_GRADING_SEED", "99")
    assert read_secret(None) == 99
    (tmp_path / "seed").write_text("secret words")
    with pytest.raises(GradingError, match="integer"):
        read_secret(tmp_path / "seed")


def test_written_answers_are_collected_by_metadata_wherever_they_are():
    spec = Assignment("demo", number=9, title="Demo", exercises=(),
                      questions=(Question("why-t2", "Why T^2?", 2), Question("other", "?")))
    answer = new_markdown_cell("Because the gradients scale as 1/T^2.")
    answer.metadata["course_grading"] = {"answer": "why-t2"}
    more = new_markdown_cell("And the soft targets' magnitude.")
    more.metadata["course_grading"] = {"answer": "why-t2"}
    stray = new_markdown_cell("not an answer")
    stray.metadata["course_grading"] = {"answer": "unknown-question"}
    nb = new_notebook(cells=[more.copy(), new_code_cell("x = 1"), stray])
    nb.cells = [answer, nb.cells[1], more, stray]
    answers = collect_answers(nb, spec)
    assert [a.id for a in answers] == ["why-t2", "other"]
    assert answers[0].text == "Because the gradients scale as 1/T^2.\n\nAnd the soft targets' magnitude."
    assert answers[0].points == 2 and answers[1].text == ""


def test_the_score_table_and_feedback_say_whether_each_answer_was_collected(soft):
    exercise, cases, expected = soft
    result = score_exercise(exercise, _observations(exercise, cases, expected), cases, expected)
    answers = [Answer("a", "Why?", 0.0, "Because.", "the answer cell still holds its placeholder; ..."),
               Answer("b", "How?", 0.0, "")]
    results = gradescope(get_assignment("distillation"), [result], answers, ["cell 3: NameError: x"], 1.0, {})
    rows = {line.split("  ")[0]: line for line in score_table(results).splitlines()}
    assert "answered (!)" in rows["question a (graded by hand)"] and "no answer" in rows["question b (graded by hand)"]
    assert "1 of 2 answered (no answer to b)" in results["output"] and "Warning, question a" in results["output"]
    assert "JupyterLab shows as [n]" in results["output"]  # what "cell 3" counts
    assert "## question b (graded by hand): 0 / 0\n\n~~~~text\nNo answer." in feedback_markdown(results, "ann")


def test_an_error_names_the_cell_and_line_the_grader_compiled_it_from():
    from course_lib.grading.authoring.calling import raised_at
    namespace: dict = {}
    exec(compile("def f():\n    return 1 / 0", "<cell 7>", "exec"), namespace)  # noqa: S102 - a learner's cell
    with pytest.raises(ZeroDivisionError) as info:
        namespace["f"]()
    assert raised_at(info.value) == " (cell 7, line 2)" and raised_at(ValueError()) == ""


# --- isolation helpers (no process started) ----------------------------------------------------------------

@pytest.mark.parametrize("isolation, file_system, unhidden", [
    (Isolation(network=True, mounts=True, root=True, proc=True), "fresh root", "nothing but"),
    (Isolation(network=True, mounts=True, notes=["fresh root refused (EPERM)"]), "covered", "copy of the masters"),
    (Isolation(), "host", "solutions included")])
def test_the_report_says_what_the_file_system_could_not_hide(isolation, file_system, unhidden):
    """The fallbacks are honest: without a fresh root the grading is never summative, and the report says what
    learner code could read."""
    workspace = Workspace()
    try:
        held = workspace.guarantees(isolation, [SOLUTIONS / "03_quantization.ipynb"], None)
    finally:
        workspace.cleanup()
    assert held["file_system"] == file_system and unhidden in held["not_hidden"]
    assert held["summative"] == (file_system == "fresh root" and os.geteuid() == 0)
    assert held.get("notes", "") == "; ".join(isolation.notes)


@pytest.fixture
def open_dir():
    """A folder in /tmp that any user may enter (pytest's own are private to their owner)."""
    import shutil
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="grading-test-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_readable_by_follows_the_mode_bits(open_dir):
    secret = open_dir / "inner" / "seed"
    secret.parent.mkdir()
    secret.write_text("1")
    secret.chmod(0o644)
    secret.parent.chmod(0o755)
    assert readable_by(secret, 4242, 4242)
    secret.chmod(0o600)
    assert not readable_by(secret, 4242, 4242)
    secret.chmod(0o644)
    secret.parent.chmod(0o700)
    assert not readable_by(secret, 4242, 4242)


def test_the_checkout_the_grader_runs_from_is_hidden():
    assert ROOT in course_sources() or ROOT / "course_lib" in course_sources()


def test_confinement_round_trips_and_finds_what_blocks_a_user(open_dir):
    spec = Confinement(cwd="/tmp", limits=ProcessLimits(cpu_seconds=3), uid=5, hide=("/a",), reach=("/b",))
    assert Confinement.from_json(spec.to_json()) == spec
    locked = open_dir / "locked"
    (locked / "env" / "bin").mkdir(parents=True)
    locked.chmod(0o700)
    assert _blocked_dirs((str(locked / "env" / "bin"),), 4242, 4242) == {str(locked): {"env"}}
    assert _needed_in(str(open_dir), (str(locked / "env"), "/elsewhere")) == {"locked"}


# --- the command line, in this process -------------------------------------------------------------------

def test_grade_without_an_assignment_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["grade", str(tmp_path / "x.ipynb")])
    assert e.value.code == 2 and "--assignment" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--case-timeout=0", "--exercise-timeout=-1", "--memory=0"])
def test_bad_limits_are_argument_errors(tmp_path, option, capsys):
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path / "x.ipynb"), "--assignment", "distillation", option])
    assert "positive" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, "not a notebook", '{"cells": 3}', b"\x89PNG\r\n\x1a\n\x00"])
def test_a_missing_or_garbage_file_is_one_line_and_a_zero_results_file(tmp_path, content, capsys, secret):
    path = tmp_path / "01_distillation.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    out = tmp_path / "results" / "results.json"
    assert main(["grade", str(path), "--assignment", "distillation", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and str(path) in err
    results = json.loads(out.read_text())
    assert results["score"] == 0 and str(path) in results["output"] and set(results) <= GRADESCOPE_KEYS
    assert "Not graded" in out.with_suffix(".md").read_text()  # the learner's feedback, beside results.json


def test_a_notebook_of_another_assignment_is_refused_with_a_results_file(tmp_path, capsys, secret):
    path = write_nb(tmp_path / "01_distillation.ipynb", "x = 1", assignment="deep_compression")
    out, github = tmp_path / "results.json", tmp_path / "github_output"
    code = main(["grade", str(path), "--assignment", "distillation", "--json", str(out),
                 "--classroom-output", str(github)])
    assert code == 2 and "marked as assignment 'deep_compression'" in capsys.readouterr().err
    assert json.loads(out.read_text())["score"] == 0
    assert json.loads(base64.b64decode(github.read_text().strip().removeprefix("result=")))["status"] == "error"


def test_the_classroom_example_is_the_generated_workflow(capsys):
    assert main(["classroom-workflow", "--assignment", "distillation"]) == 0
    generated = capsys.readouterr().out
    assert (ROOT / "examples" / "github-classroom-distillation.yml").read_text() == generated
    import course_lib
    assert f"git+{course_lib.repository_url()}@v{course_lib.__version__}" in generated
    assert "runners: grade" in generated and "GRADE_RESULTS" in generated and "--assignment distillation" in generated
    assert main(["classroom-workflow", "--assignment", "nope"]) == 2


def test_the_gradescope_bundle_holds_the_scripts_the_wheel_and_a_root_only_seed(tmp_path, capsys):
    import course_lib
    wheel = tmp_path / f"course_lib-{course_lib.__version__}-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    (tmp_path / "seed").write_text("424242\n")
    out = tmp_path / "bundle.zip"
    assert main(["gradescope-bundle", "--assignment", "pruning", "--out", str(out), "--wheel", str(wheel),
                 "--seed-file", str(tmp_path / "seed")]) == 0
    with zipfile.ZipFile(out) as zf:
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
        assert modes == {"setup.sh": 0o755, "run_autograder": 0o755, wheel.name: 0o644, "seed": 0o600}
        assert zf.read("seed") == b"424242\n"
        run = zf.read("run_autograder").decode()
        setup = zf.read("setup.sh").decode()
    assert "--assignment pruning" in run and "--seed-file" in run and "results/results.json" in run
    assert wheel.name in setup and "chmod -R go-rwx" in setup and "torch==" in setup
    assert main(["gradescope-bundle", "--assignment", "pruning", "--out", str(out), "--wheel",
                 str(tmp_path / "seed")]) == 2


def test_grade_all_on_an_empty_folder_writes_a_header_and_a_summary(tmp_path, capsys, secret):
    (tmp_path / "subs").mkdir()
    assert main(["grade-all", str(tmp_path / "subs"), "--assignment", "pruning", "--csv",
                 str(tmp_path / "g.csv")]) == 0
    assert "graded 0 of 0 submissions of pruning" in capsys.readouterr().out
    assert main(["grade-all", str(tmp_path / "missing"), "--assignment", "pruning", "--csv",
                 str(tmp_path / "g.csv")]) == 2


def test_submissions_are_files_or_folders_named_after_the_learner(tmp_path):
    from course_lib.grading.deploy.batch import submissions
    (tmp_path / "ann.ipynb").write_text("{}")
    (tmp_path / "ann").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert [s.learner for s in submissions(tmp_path)] == ["ann", "ann (ann.ipynb)"]


def test_written_answers_reach_results_json_and_the_csv(soft):
    from course_lib.grading.deploy.batch import Submission, row
    exercise, cases, expected = soft
    result = score_exercise(exercise, _observations(exercise, cases, expected), cases, expected)
    answers = [Answer("why-t2", "Why T^2?", 2.0, "Gradients scale as 1/T^2.")]
    results = gradescope(get_assignment("distillation"), [result], answers, [], 1.0, {})
    question = {t["name"]: t for t in results["tests"]}["question why-t2 (graded by hand, 2 points)"]
    assert question["max_score"] == 0 and "Gradients scale as 1/T^2." in question["output"]
    assert question["output"].startswith("Answered.") and "1 of 1 answered" in results["output"]
    assert results["score"] == result.score
    csv_row = row(Submission("ann", Path("ann.ipynb")), results, ["soft_targets"], ["why-t2"])
    assert csv_row["answer why-t2"] == "Gradients scale as 1/T^2." and csv_row["soft_targets"] == result.score

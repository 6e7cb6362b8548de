"""The exercises as a learner meets them: bad-argument cases, dtype-strict answers, hints on request, written
questions, and public cases that catch the typical wrong answers (the trial of issue 17, kept as tests).

Each wrong answer below is a mistake a learner who has read the chapter makes; it must fail at least one
*public* case (what ``check`` shows in the notebook), with feedback that says what differs. Nothing here starts a
process: the grader's own runs are in ``test_exercises_grading.py`` (slow).
"""
from __future__ import annotations

import copy
import heapq
import itertools
import re
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from course_lib.grading.authoring.calling import call_and_observe, compare_raised, is_raised
from course_lib.grading.authoring.compare import compare_values
from course_lib.grading.authoring.exercise import Case, Exercise
from course_lib.grading.authoring.generate import exercise_notebook, strip_solutions
from course_lib.grading.authoring.plain import from_plain
from course_lib.grading.authoring.questions import ANSWER_PLACEHOLDER, answer_id, collect_answers
from course_lib.grading.authoring.seeds import rng_seed
from course_lib.grading.authoring.specs import NAMES, find_exercise, get_assignment
from course_lib.grading.checks import check, hint
from course_lib.training import evaluate

ROOT = Path(__file__).resolve().parents[1]
AT_LEAST = {"distillation": 6, "pruning": 6, "quantization": 6, "deep_compression": 5}


def public_failures(name: str, fn) -> list[str]:
    """The feedback of every public case ``fn`` fails, judged as ``check`` judges it."""
    _, exercise = find_exercise(name)
    reference = exercise.reference_fn()
    failures = []
    for i, case in enumerate(exercise.public()):
        seed = rng_seed(exercise.name, "public", i, None)
        got = call_and_observe(fn, exercise, case, seed=seed)
        expected = call_and_observe(reference, exercise, case, seed=seed)
        if "error" in got:
            failures.append(f"{case.description}: raised {got['error']}")
            continue
        msg = exercise.check_answer(from_plain(got["value"]), from_plain(expected["value"]), *case.make())
        if msg:
            failures.append(f"{case.description}: {msg}")
    return failures


# --- the exercises' size, their cases and their references -------------------------------------------------

@pytest.mark.parametrize("name", sorted(AT_LEAST))
def test_each_exercise_grades_enough_functions_with_hints(name):
    spec = get_assignment(name)
    assert len(spec.exercises) >= AT_LEAST[name]
    for ex in spec.exercises:
        assert len(ex.hidden(0)) >= 3 and ex.public()
    with_steps = [ex.name for ex in spec.exercises if len(ex.hints) >= 2]
    assert len(with_steps) >= AT_LEAST[name], f"{name}: step-by-step hints only for {with_steps}"
    assert 2 <= len(spec.questions) <= 3


@pytest.mark.parametrize("name", NAMES)
def test_every_bad_argument_case_raises_in_the_reference_and_names_the_argument(name):
    spec = get_assignment(name)
    for ex in spec.exercises:
        for kind, cases in (("public", ex.public()), ("hidden", ex.hidden(0))):
            for i, case in enumerate(cases):
                answer = call_and_observe(ex.reference_fn(), ex, case, seed=rng_seed(ex.name, kind, i, 0))
                assert "error" not in answer, (ex.name, case.description, answer)
                if case.raises is None:
                    assert not is_raised(answer["value"]), (ex.name, case.description)
                    continue
                assert is_raised(answer["value"]), f"{ex.name}: the reference returned on '{case.description}'"
                assert case.raises.lower() in answer["value"]["message"].lower(), (ex.name, case.description)
                stated = re.search(r"must raise (\w+)", case.description)
                assert stated, f"{ex.name}: '{case.description}' does not say what it must raise"
                assert stated.group(1) == answer["value"]["__raised__"], (ex.name, case.description, answer)


@pytest.mark.parametrize("name", sorted(AT_LEAST))
def test_the_stated_errors_have_public_and_hidden_cases(name):
    for ex in get_assignment(name).exercises:
        public = [c.raises for c in ex.public() if c.raises]
        hidden = [c.raises for c in ex.hidden(0) if c.raises]
        assert bool(public) == bool(hidden), f"{ex.name}: errors checked in public {public}, hidden {hidden}"


# --- the exception is the answer ---------------------------------------------------------------------------

def _exercise() -> Exercise:
    return Exercise("sqrt", "math", lambda: [], lambda seed: [], hint="h")


BAD = Case("x=-1 (must raise ValueError naming x)", lambda: ((-1.0,), {}), raises="x")


def _judge(fn) -> str | None:
    exercise = _exercise()
    expected = call_and_observe(lambda x: (_ for _ in ()).throw(ValueError("x must be >= 0, got -1")), exercise, BAD)
    got = call_and_observe(fn, exercise, BAD)
    if "error" in got:
        return got["error"]
    return exercise.check_answer(got["value"], expected["value"], *BAD.make())


class Negative(ValueError):
    pass


def _raise(error: Exception):
    def fn(x):
        raise error
    return fn


def test_raising_the_right_type_with_a_message_naming_the_argument_passes():
    assert _judge(_raise(ValueError("x must be >= 0, got -1.0"))) is None
    assert _judge(_raise(Negative("X is negative"))) is None  # a subclass, and the case of the name does not matter


@pytest.mark.parametrize("fn, words", [
    (_raise(TypeError("x must be a float")), ["raised TypeError: x must be a float", "expected ValueError"]),
    (_raise(ValueError("bad value")), ["raised ValueError: bad value", "must name 'x'"]),
    (lambda x: x ** 0.5, ["returned", "instead of raising ValueError whose message names 'x'"]),
    (_raise(RuntimeError("selected index k out of range")), ["raised RuntimeError"]),
])
def test_a_wrong_reaction_to_a_bad_argument_says_what_was_expected(fn, words):
    msg = _judge(fn)
    assert msg is not None and all(w in msg for w in words), msg


def test_a_stub_is_not_written_yet_and_forged_answers_are_judged_by_the_grader_side():
    assert "NotImplementedError" in _judge(_raise(NotImplementedError("f: hint")))
    expected = {"__raised__": "ValueError", "types": ["ValueError", "Exception"], "message": "x bad", "mentions": "x"}
    assert compare_raised({"__raised__": "ValueError", "types": "ValueError", "message": 3}, expected) is not None
    assert compare_raised([1, 2], expected) == "did not raise ValueError whose message names 'x'"
    # the word to mention comes from the expected answer only, never from the learner's observation
    forged = {"__raised__": "ValueError", "types": ["ValueError"], "message": "nothing useful", "mentions": "nothing"}
    assert "must name 'x'" in compare_raised(forged, expected)


def test_odd_objects_and_exceptions_are_reported_not_raised():
    class Unreadable(ValueError):
        def __str__(self):
            raise RuntimeError("no")

    class Odd(torch.Tensor):
        def clone(self, *args, **kwargs):
            raise RuntimeError("no")

    assert "must name 'x'" in _judge(_raise(Unreadable()))
    assert "instead of raising" in _judge(lambda x: torch.zeros(2).as_subclass(Odd))


def test_dtypes_are_compared_only_where_asked():
    codes = torch.tensor([1, 2, 3])
    assert compare_values(codes.float(), codes) is None
    msg = compare_values(codes.float(), codes, dtypes=True)
    assert "dtype torch.float32" in msg and "expected dtype torch.int64" in msg
    assert "item 1" in compare_values((torch.tensor(0.5), codes.float()), (torch.tensor(0.5), codes), dtypes=True)


# --- hints, stubs and written answers ----------------------------------------------------------------------

def test_hint_prints_the_next_step_each_call_then_stays_on_the_last(capsys):
    from course_lib.grading import checks
    checks._shown.clear()
    steps = find_exercise("kmeans_codebook")[1].hints
    for i in range(len(steps) + 1):
        hint("kmeans_codebook")
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in out] == [f"kmeans_codebook, hint {min(i, len(steps))} of {len(steps)}"
                                                     for i in range(1, len(steps) + 2)]
    assert "again" in out[0] and "last hint" in out[-1]
    hint("kmeans_codebook", step=1)
    assert steps[0] in capsys.readouterr().out


def test_hint_refuses_unknown_names_and_steps_and_falls_back_to_the_stub(capsys):
    with pytest.raises(ValueError, match="no exercise is called"):
        hint("kmeans")
    with pytest.raises(ValueError, match="step must be an integer from 1"):
        hint("quantize", step=0)
    hint("taylor_importance")
    assert "no hints beyond" in capsys.readouterr().out


def test_the_stub_says_what_to_compute_and_where_the_hints_are():
    out = strip_solutions("def quantize(x, scale, zero_point):\n    ### BEGIN SOLUTION\n    return x\n"
                          "    ### END SOLUTION")
    assert "quantize: the int64 codes of x" in out and "hint('quantize') shows how" in out


@pytest.mark.parametrize("name", NAMES)
def test_questions_have_answer_cells_whose_model_answers_stay_in_the_master(name):
    spec = get_assignment(name)
    master = nbformat.read(ROOT / "solutions" / f"{spec.notebook}.ipynb", as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / f"{spec.notebook}.ipynb", as_version=4)
    for nb, placeholder in ((master, False), (exercise, True)):
        answers = {answer_id(c): c.source for c in nb.cells if c.cell_type == "markdown" and answer_id(c)}
        assert set(answers) == {q.id for q in spec.questions}
        assert all((text == ANSWER_PLACEHOLDER) == placeholder for text in answers.values())
    # an answer cell left as generated is collected as no answer; the master's model answers are collected
    assert all(a.text == "" for a in collect_answers(exercise, spec))
    assert all(a.text for a in collect_answers(master, spec))


OWN = ("distillation", "pruning", "quantization", "deep_compression")  # exercise 05 keeps its own wording checks


@pytest.mark.parametrize("name", OWN)
def test_the_graders_question_is_the_notebooks_word_for_word(name):
    spec = get_assignment(name)
    cells = nbformat.read(ROOT / "solutions" / f"{spec.notebook}.ipynb", as_version=4).cells
    asked = {}
    for before, cell in zip(cells, cells[1:]):
        if cell.cell_type == "markdown" and answer_id(cell):  # the question is the paragraph after its bold label
            asked[answer_id(cell)] = " ".join(re.split(r"\*\*[^*]+\.\*\* ", before.source)[-1].split())
    assert asked == {q.id: " ".join(q.prompt.split()) for q in spec.questions}


def test_text_typed_below_an_unedited_answer_cell_is_collected_with_a_warning():
    spec = get_assignment("deep_compression")
    nb = nbformat.read(ROOT / "exercises" / f"{spec.notebook}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if answer_id(c) == "zeros")
    nb.cells.insert(first + 1, nbformat.v4.new_markdown_cell("The sparse streams were smaller."))
    nb.cells[[answer_id(c) for c in nb.cells].index("sum")].source = "Each weight adds its own term."
    answers = {a.id: a for a in collect_answers(nb, spec)}
    assert answers["zeros"].text == "The sparse streams were smaller." and "placeholder" in answers["zeros"].warning
    assert (answers["sum"].status, answers["sum"].warning) == ("answered", "")
    assert (answers["bytes"].status, answers["bytes"].text) == ("no answer", "")


@pytest.mark.parametrize("name", OWN)
def test_hint_code_that_creates_a_tensor_names_its_dtype(name):
    creating = re.compile(r"torch\.(zeros|ones|full|empty|linspace|arange)\(([^()]|\([^()]*\))*\)")
    for ex in get_assignment(name).exercises:
        for step in ex.hints:
            for call in creating.finditer(step):
                assert "dtype" in call.group(0), (ex.name, call.group(0))


def test_generation_blanks_answer_cells():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("A model answer.",
                                                                      metadata={"course_grading": {"answer": "q"}})])
    assert exercise_notebook(nb).cells[0].source == ANSWER_PLACEHOLDER
    assert nb.cells[0].source == "A model answer."


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_imports_check_and_hint_and_checks_every_function(name):
    nb = nbformat.read(ROOT / "exercises" / f"{get_assignment(name).notebook}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import check, hint" in code
    for ex in get_assignment(name).exercises:
        assert f'check("{ex.name}", {ex.name})' in code
        assert f"{ex.name}: {ex.hint}" in code  # the stub's message


def test_the_book_has_no_solutions_page_and_lists_every_graded_function():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert "solutions/" not in yaml.safe_dump(toc)
    table = (ROOT / "book" / "exercises" / "index.md").read_text()
    for name in NAMES:
        for ex in get_assignment(name).exercises:
            assert f"`{ex.name}`" in table, f"book/exercises/index.md does not list {ex.name}"


def test_the_instructors_table_matches_the_assignments():
    text = (ROOT / "book" / "instructors" / "index.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in NAMES:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(NAMES)
    for name in NAMES:
        spec = get_assignment(name)
        assert rows[name] == [spec.notebook, str(len(spec.exercises)), f"{spec.max_score:g}",
                              str(len(spec.questions))], name


def test_the_assignments_are_the_spec_packages_in_the_order_of_their_notebooks():
    """Each package of specs is one assignment, numbered as its notebook: NAMES lists them in that order, and
    solutions/ and exercises/ hold exactly their notebooks."""
    packages = sorted(p.name for p in (ROOT / "course_lib/grading/authoring/specs").iterdir()
                      if (p / "__init__.py").is_file())
    assert sorted(NAMES) == packages
    masters = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    assert [get_assignment(name).notebook for name in NAMES] == masters
    assert sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb")) == masters


# --- the trial: typical wrong answers fail a public case -----------------------------------------------------

def _soft(logits, temperature, *, dim=-1, scale=True, stable=True, dtype=None):
    z = logits / temperature if scale else logits
    if not stable:  # exp by hand: overflows for large logits
        return z.exp() / z.exp().sum(dim=dim, keepdim=True)
    p = torch.softmax(z, dim=dim)
    return p.to(dtype) if dtype is not None else p


@pytest.mark.parametrize("mistake", [{"dim": 0}, {"scale": False}, {"stable": False}, {"dtype": torch.float32}])
def test_typical_soft_target_mistakes_fail_a_public_case(mistake):
    assert public_failures("soft_targets", lambda *a: _soft(*a, **mistake))
    assert public_failures("soft_targets", _soft) == []


UNLABELED = -1


def _label_term(student_logits, labels, divide="batch"):
    ce = F.cross_entropy(student_logits, labels, ignore_index=UNLABELED, reduction="sum")
    return ce / (len(labels) if divide == "batch" else (labels != UNLABELED).sum().clamp(min=1))


def _kd(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9, *, direction="teacher to student",
        batch="mean", t_squared=True, soft_ce=False, divide="batch", detach=True, log="log_softmax",
        validate=True):
    if validate and (not 0 <= alpha <= 1 or not temperature > 0):
        raise ValueError("alpha must be in [0, 1] and temperature > 0")
    teacher_logits = teacher_logits.detach() if detach else teacher_logits
    if log == "log_softmax":
        log_q, log_p = (F.log_softmax(z / temperature, -1) for z in (student_logits, teacher_logits))
    else:  # log of a softmax that underflowed to 0 is -inf
        log_q, log_p = (torch.softmax(z / temperature, -1).log() for z in (student_logits, teacher_logits))
    if direction == "student to teacher":
        log_p, log_q = log_q, log_p
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    kl = kl.mean() if batch == "mean" else kl.sum()
    hard = _label_term(student_logits / temperature if soft_ce else student_logits, labels, divide)
    return alpha * (temperature ** 2 if t_squared else 1) * kl + (1 - alpha) * hard


@pytest.mark.parametrize("mistake", [{"direction": "student to teacher"}, {"batch": "sum"}, {"t_squared": False},
                                     {"soft_ce": True}, {"divide": "labeled"}, {"detach": False},
                                     {"log": "log of softmax"}, {"validate": False}])
def test_typical_distillation_loss_mistakes_fail_a_public_case(mistake):
    failures = public_failures("distillation_loss", lambda *a, **k: _kd(*a, **k, **mistake))
    assert failures
    if "detach" in mistake:
        assert any("whether a gradient reaches teacher_logits" in f for f in failures), failures
    assert public_failures("distillation_loss", _kd) == []


def _hard(student_logits, teacher_logits, labels, alpha=0.9, *, teacher_term="all", divide="batch", validate=True):
    if validate and not 0 <= alpha <= 1:
        raise ValueError("alpha must be in [0, 1]")
    decisions = teacher_logits.detach().argmax(-1)
    if teacher_term == "unlabeled only":
        decisions = torch.where(labels == UNLABELED, decisions, torch.full_like(decisions, UNLABELED))
        teacher = _label_term(student_logits, decisions)
    else:
        teacher = F.cross_entropy(student_logits, decisions)
    return alpha * teacher + (1 - alpha) * _label_term(student_logits, labels, divide)


@pytest.mark.parametrize("mistake", [{"teacher_term": "unlabeled only"}, {"divide": "labeled"}, {"validate": False}])
def test_typical_hard_label_loss_mistakes_fail_a_public_case(mistake):
    assert public_failures("hard_label_loss", lambda *a, **k: _hard(*a, **k, **mistake))
    assert public_failures("hard_label_loss", _hard) == []


def _distil_step(student, teacher, inputs, labels, optimizer, temperature=4.0, alpha=0.9, *, teacher_eval=True,
                 student_train=True, no_grad=True, detach=True, zero=True, item=True):
    if teacher_eval:
        teacher.eval()
    if student_train:
        student.train()
    with torch.set_grad_enabled(not no_grad):
        teacher_logits = teacher(inputs)
    loss = _kd(student(inputs), teacher_logits, labels, temperature, alpha, detach=detach)
    if zero:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item() if item else loss


# without torch.no_grad() and with a loss that does not detach the teacher's logits, the teacher is trained
@pytest.mark.parametrize("mistake", [{"teacher_eval": False}, {"student_train": False},
                                     {"no_grad": False, "detach": False}, {"zero": False}, {"item": False}])
def test_typical_distillation_step_mistakes_fail_a_public_case(mistake):
    failures = public_failures("distillation_step", lambda *a, **k: _distil_step(*a, **k, **mistake))
    assert failures
    if mistake == {"zero": False}:  # stale gradients: the case says the optimizer holds some from an earlier step
        assert all("gradients from an earlier step" in f for f in failures), failures
    assert public_failures("distillation_step", _distil_step) == []


def test_stale_gradients_have_a_hidden_case_too():
    _, exercise = find_exercise("distillation_step")
    assert any("gradients from an earlier step" in c.description for c in exercise.hidden(0))


HINTED_STEP = '''def distillation_step(student, teacher, inputs, labels, optimizer, temperature=4.0, alpha=0.9):
    teacher.eval()
    student.train()
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    loss = distillation_loss(student(inputs), teacher_logits, labels, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
'''


def test_a_step_written_naturally_from_the_hints_is_not_flagged_as_a_copy():
    """The trial's learner followed the hints to the letter and was flagged: the hints no longer dictate the code,
    and the most natural code they lead to is not the reference token for token."""
    from course_lib.distillation import distillation_step
    from course_lib.grading.confinement.fence import same_tokens
    assert not same_tokens(HINTED_STEP, distillation_step)
    hints = " ".join(find_exercise("distillation_step")[1].hints)
    for code in ("teacher.eval()", "student.train()", "optimizer.zero_grad()", "loss.backward()", "with torch.no_grad",
                 "loss.item()", "distillation_loss("):
        assert code not in hints, code
    loss_hints = find_exercise("distillation_loss")[1].hints
    assert "F.kl_div(" not in loss_hints[2] and "len(labels)" not in loss_hints[3]


def test_the_functions_that_call_earlier_ones_say_so_when_a_check_fails(capsys):
    def wrong_step(*args, **kwargs):
        return _distil_step(*args, **kwargs) + 1.0
    check("distillation_step", wrong_step)
    out = capsys.readouterr().out
    assert "distillation_step calls your distillation_loss: make sure it passes its own checks first" in out
    # the learner's float is shown as a number, not as tensor(...)
    assert re.search(r"returned \d\.\d+ as the returned loss, expected \d\.\d+", out) and "tensor(" not in out, out
    check("distillation_step", _distil_step)
    assert "Note:" not in capsys.readouterr().out
    assert "distillation_loss and distillation_step" in find_exercise("distill_steps")[1].relies_on_note()


def _steps(student, teacher, loader, optimizer, steps, temperature=4.0, alpha=0.9, *, passes="new", validate=True):
    if validate and steps < 1:
        raise ValueError("steps must be at least 1")
    batches = itertools.cycle(loader) if passes == "cycle" else None
    losses = []
    while len(losses) < steps:
        for inputs, labels in (batches if batches is not None else loader):
            losses.append(_distil_step(student, teacher, inputs, labels, optimizer, temperature, alpha))
            if len(losses) == steps:
                break
        if passes == "one":
            break
    return losses


@pytest.mark.parametrize("mistake", [{"passes": "cycle"}, {"passes": "one"}, {"validate": False}])
def test_typical_distill_steps_mistakes_fail_a_public_case(mistake):
    assert public_failures("distill_steps", lambda *a, **k: _steps(*a, **k, **mistake))
    assert public_failures("distill_steps", _steps) == []


def _sweep(student, teacher, train_loader, val_loader, test_loader, temperatures, *, steps, alpha=0.9, lr=1e-3,
           seed=0, choose_on="val", reseed=True, fresh=True, ties="lowest", validate=True, test_each=False):
    if validate and not temperatures:
        raise ValueError("temperatures must not be empty")
    accuracy, scores, students = {}, {}, {}
    for t in temperatures:
        if reseed:
            torch.manual_seed(seed)
        candidate = copy.deepcopy(student) if fresh else student
        _steps(candidate, teacher, train_loader, torch.optim.Adam(candidate.parameters(), lr=lr), steps, t, alpha)
        accuracy[t] = evaluate(candidate, val_loader)
        scores[t] = accuracy[t] if choose_on == "val" else evaluate(candidate, test_loader)
        if test_each:  # chooses on validation, but evaluates every temperature's student on test too
            evaluate(candidate, test_loader)
        students[t] = copy.deepcopy(candidate)
    order = sorted(temperatures, reverse=ties != "lowest")
    best = max(order, key=lambda t: scores[t])
    return best, accuracy, evaluate(students[best], test_loader)


@pytest.mark.parametrize("mistake", [{"choose_on": "test"}, {"reseed": False}, {"fresh": False},
                                     {"ties": "highest"}, {"validate": False}, {"test_each": True}])
def test_typical_temperature_sweep_mistakes_fail_a_public_case(mistake):
    failures = public_failures("temperature_sweep", lambda *a, **k: _sweep(*a, **k, **mistake))
    assert failures
    if mistake.get("choose_on") == "test":
        assert any("the chosen temperature" in f for f in failures), failures
    if mistake.get("test_each"):
        assert failures == [f for f in failures if "counts its passes" in f], failures
        assert "returned 4 as the number of passes over test_loader, expected 1" in failures[0], failures
    assert public_failures("temperature_sweep", _sweep) == []


def _mask(weight, sparsity, *, magnitude=torch.abs, count=round, keep_threshold=False, validate=True):
    if validate and not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    mask = torch.ones_like(weight)
    k = count(sparsity * weight.numel())
    if k:
        scores = magnitude(weight.detach()).reshape(-1)
        if keep_threshold:  # keeps every weight >= the k-th smallest: one too many
            return (magnitude(weight) >= scores.kthvalue(k).values).to(weight.dtype)
        mask.view(-1)[torch.topk(scores, k, largest=False).indices] = 0
    return mask


def _per_tensor_global(weights, sparsity):
    return [_mask(w, sparsity) for w in weights]


PRUNING_MISTAKES = {
    "magnitude_mask": [lambda w, s: _mask(w, s, magnitude=lambda t: t),  # forgot |w|
                       lambda w, s: _mask(w, s, keep_threshold=True),  # off-by-one threshold
                       lambda w, s: _mask(w, s, count=int),  # truncates round(s n)
                       lambda w, s: _mask(w, s, validate=False)],  # no ValueError
    "global_magnitude_masks": [_per_tensor_global],
}


@pytest.mark.parametrize("name, index", [(n, i) for n, fs in PRUNING_MISTAKES.items() for i in range(len(fs))])
def test_typical_mask_mistakes_fail_a_public_case(name, index):
    assert public_failures(name, PRUNING_MISTAKES[name][index])


def _step(model, masks, inputs, labels, optimizer, *, train=True, zero=True, where="after", validate=True):
    params = dict(model.named_parameters())
    if validate:
        for key, mask in masks.items():
            if key not in params or mask.shape != params[key].shape:
                raise ValueError(f"masks: bad entry {key!r}")
    if train:
        model.train()
    if where == "before":  # masks the weights before the forward pass only
        with torch.no_grad():
            for key, mask in masks.items():
                params[key].mul_(mask)
    loss = F.cross_entropy(model(inputs), labels)
    if zero:
        optimizer.zero_grad()
    loss.backward()
    if where == "gradient":  # masks the gradients: momentum and weight decay still move the weights
        for key, mask in masks.items():
            params[key].grad.mul_(mask)
    optimizer.step()
    if where == "after":
        with torch.no_grad():
            for key, mask in masks.items():
                params[key].mul_(mask)
    return loss.item()


@pytest.mark.parametrize("mistake", [{"where": "before"}, {"where": "gradient"}, {"where": "nowhere"},
                                     {"train": False}, {"zero": False}, {"validate": False}])
def test_typical_masked_step_mistakes_fail_a_public_case(mistake):
    failures = public_failures("masked_step", lambda *a: _step(*a, **mistake))
    assert failures
    if mistake.get("where") in ("before", "gradient", "nowhere"):
        assert any("the number of pruned weights that are not zero after the step" in f for f in failures)


def test_the_right_masked_step_passes_and_so_does_a_fresh_optimizer_state():
    assert public_failures("masked_step", _step) == []


def _scan(model, loader, sparsities, *, restore=True, together=False):
    if not sparsities:
        raise ValueError("sparsities must not be empty")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    saved = {n: m.weight.detach().clone() for n, m in layers.items()}
    result = {}
    for name, layer in layers.items():
        values = []
        for s in sparsities:
            with torch.no_grad():
                for other in (layers.values() if together else [layer]):
                    other.weight.mul_(_mask(other.weight, s))
            values.append(evaluate(model, loader))
            if restore:
                with torch.no_grad():
                    for n, m in layers.items():
                        m.weight.copy_(saved[n])
        result[name] = values
    return result


@pytest.mark.parametrize("mistake", [{"restore": False}, {"together": True}])
def test_typical_sensitivity_mistakes_fail_a_public_case(mistake):
    failures = public_failures("layer_sensitivity", lambda *a, **k: _scan(*a, **k, **mistake))
    assert failures and not any("unexpected keyword" in f for f in failures), failures
    assert public_failures("layer_sensitivity", _scan) == []


def _keep(scores, sparsity, *, order="sorted", validate=True):
    kept = scores.numel() - round(sparsity * scores.numel())
    if validate and (not 0 <= sparsity < 1 or kept < 1):
        raise ValueError("sparsity leaves no channel")
    top = torch.topk(scores, kept)
    if order == "removed":
        return torch.topk(scores, scores.numel() - kept, largest=False).indices.sort().values
    return top.indices.sort().values if order == "sorted" else top.indices


@pytest.mark.parametrize("mistake", [{"order": "score"}, {"order": "removed"}, {"validate": False}])
def test_typical_channel_selection_mistakes_fail_a_public_case(mistake):
    assert public_failures("channels_to_keep", lambda *a: _keep(*a, **mistake))


def _surgery(conv, bn, nxt, keep, *, bn_stats=True, bn_slice=True, next_axis=1, in_place=False, validate=True):
    if validate and (keep.numel() == 0 or keep.min() < 0 or keep.max() >= conv.out_channels
                     or keep.unique().numel() != keep.numel()):
        raise ValueError("keep: bad channel indices")
    new = copy.deepcopy((conv, bn, nxt)) if not in_place else (conv, bn, nxt)
    c, b, n = new
    with torch.no_grad():
        c.weight = nn.Parameter(conv.weight[keep].clone())
        c.out_channels = len(keep)
        if conv.bias is not None:
            c.bias = nn.Parameter(conv.bias[keep].clone())
        if bn_slice:
            b.weight, b.bias = nn.Parameter(bn.weight[keep].clone()), nn.Parameter(bn.bias[keep].clone())
            if bn_stats:
                b.running_mean, b.running_var = bn.running_mean[keep].clone(), bn.running_var[keep].clone()
            else:
                b.running_mean, b.running_var = torch.zeros(len(keep)), torch.ones(len(keep))
            b.num_features = len(keep)
        n.weight = nn.Parameter(nxt.weight[:, keep].clone() if next_axis == 1 else nxt.weight[keep].clone())
        n.in_channels = len(keep)
    return c, b, n


@pytest.mark.parametrize("mistake", [{"bn_stats": False}, {"bn_slice": False}, {"next_axis": 0},
                                     {"in_place": True}, {"validate": False}])
def test_typical_surgery_mistakes_fail_a_public_case_with_feedback(mistake):
    failures = public_failures("remove_channels", lambda *a: _surgery(*a, **mistake))
    assert failures
    if mistake.get("bn_slice") is False or mistake.get("next_axis") == 0:
        assert any("cannot run one after the other" in f for f in failures), failures


def test_a_correct_surgery_by_other_means_passes():
    assert public_failures("remove_channels", _surgery) == []


def _qrange(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def _along(p, x, axis):
    p = torch.as_tensor(p)
    if axis is None:
        return p
    shape = [1] * x.dim()
    shape[axis] = -1
    return p.reshape(shape)


def _quantize(x, scale, zero_point, bits=8, signed=True, axis=None, *, rounding=torch.round, clamp=True,
              dtype=torch.int64, validate=True, always_signed=False):
    q_min, q_max = _qrange(bits, True if always_signed else signed)
    s, z = _along(scale, x, axis).float(), _along(zero_point, x, axis)
    if validate and (s <= 0).any():
        raise ValueError("scale must be positive")
    codes = rounding(x.detach() / s) + z
    return (codes.clamp(q_min, q_max) if clamp else codes).to(dtype)


QUANTIZE_MISTAKES = [{"rounding": torch.floor}, {"rounding": lambda t: torch.floor(t + 0.5)}, {"clamp": False},
                     {"dtype": torch.float32}, {"validate": False}, {"always_signed": True}]


@pytest.mark.parametrize("mistake", QUANTIZE_MISTAKES)
def test_each_quantize_mistake_fails_its_own_public_case(mistake):
    """Issue 17's trial: a quantize that floors, never clamps or returns floats failed only for the floor."""
    failures = public_failures("quantize", lambda *a, **k: _quantize(*a, **k, **mistake))
    assert failures
    if mistake.get("dtype") is torch.float32:
        assert all("dtype torch.float32" in f for f in failures[:4])


def test_the_clamping_case_clamps_at_both_ends():
    case = find_exercise("quantize")[1].public()[1]
    assert "clamps" in case.description
    args, kwargs = case.make()
    x, scale, zero_point = args
    unclamped = torch.round(x / scale) + zero_point
    assert unclamped.min() < 0 and unclamped.max() > 15


def _fake(x, scale, zero_point, bits=8, signed=True, axis=None, *, ste="inside", validate=True):
    q_min, q_max = _qrange(bits, signed)
    s, z = _along(scale, x, axis).float(), _along(zero_point, x, axis)
    x_hat = (_quantize(x, scale, zero_point, bits, signed, axis, validate=validate) - z).float() * s
    if ste == "none":
        return x_hat
    raw = x.detach() / s + z if ste == "before rounding" else torch.round(x.detach() / s) + z
    inside = (raw >= q_min) & (raw <= q_max) if ste != "everywhere" else torch.ones_like(raw, dtype=torch.bool)
    return x_hat + (x - x.detach()) * inside


@pytest.mark.parametrize("mistake", [{"ste": "none"}, {"ste": "everywhere"}, {"ste": "before rounding"},
                                     {"validate": False}])
def test_typical_fake_quantize_mistakes_fail_a_public_case(mistake):
    assert public_failures("fake_quantize", lambda *a, **k: _fake(*a, **k, **mistake))
    assert public_failures("fake_quantize", _fake) == []


def _binarize(weight, per_channel=True, *, sign=lambda w: torch.where(w >= 0, 1.0, -1.0), detach_alpha=False,
              window=True, dims="rows"):
    if not weight.is_floating_point():
        raise TypeError("weight must be a floating-point tensor")
    reduce = tuple(range(1, weight.dim())) if dims == "rows" else (0,)
    alpha = weight.abs().mean(dim=reduce, keepdim=True) if per_channel else weight.abs().mean()
    if detach_alpha:
        alpha = alpha.detach()
    inside = (weight.detach().abs() <= 1) if window else torch.ones_like(weight, dtype=torch.bool)
    return alpha * (sign(weight).to(weight.dtype) + (weight - weight.detach()) * inside)


@pytest.mark.parametrize("mistake", [{"sign": torch.sign}, {"detach_alpha": True}, {"window": False},
                                     {"dims": "columns"}])
def test_typical_binarize_mistakes_fail_a_public_case(mistake):
    assert public_failures("binarize", lambda *a, **k: _binarize(*a, **k, **mistake))
    assert public_failures("binarize", _binarize) == []


def _linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias, y_scale, y_zero_point, *, acc=torch.int32,
            rounding=torch.round, use_zero=True, clamp=True, out=torch.int8, validate=True):
    if validate:
        for name, t in (("x_q", x_q), ("w_q", w_q)):
            if t.dtype != torch.int8:
                raise TypeError(f"{name} must be int8")
        if x_q.shape[1] != w_q.shape[1]:
            raise ValueError("x_q has the wrong number of features")
    a = (x_q.to(acc) - (x_zero_point if use_zero else 0)) @ w_q.to(acc).t()
    w_scale = torch.as_tensor(w_scale, dtype=torch.float64)
    if bias is not None:
        a = a + torch.round(bias.double() / (x_scale * w_scale)).to(acc)
    y = rounding(a.double() * (x_scale * w_scale / y_scale)) + y_zero_point
    return (y.clamp(-128, 127) if clamp else y).to(out)


@pytest.mark.parametrize("mistake", [{"acc": torch.int8}, {"rounding": torch.floor}, {"use_zero": False},
                                     {"clamp": False}, {"out": torch.int32}, {"validate": False}])
def test_typical_integer_layer_mistakes_fail_a_public_case(mistake):
    assert public_failures("quantized_linear", lambda *a: _linear(*a, **mistake))
    assert public_failures("quantized_linear", _linear) == []


def _kmeans(weight, bits, iters=50, skip_zeros=False, *, order="update first", empty="keep", span="non-zero"):
    if not 1 <= bits <= 16:
        raise ValueError("bits must be in [1, 16]")
    flat = weight.detach().reshape(-1).double()
    chosen = flat != 0 if skip_zeros else torch.ones_like(flat, dtype=torch.bool)
    values = flat[chosen]
    k = 2 ** bits - (1 if skip_zeros else 0)
    ends = values if span == "non-zero" else flat  # "all": the zeros widen the initial range
    c = torch.linspace(ends.min().item(), ends.max().item(), k, dtype=torch.float64)

    def assign(c):
        return (values[:, None] - c[None, :]).abs().argmin(1)

    def update(a, c):
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, a, values)
        counts = torch.bincount(a, minlength=k)
        fallback = c if empty == "keep" else torch.full_like(c, float("nan"))
        return torch.where(counts > 0, sums / counts.clamp(min=1), fallback)

    a = assign(c)
    for _ in range(iters):
        if order == "update first":
            c = update(a, c)
            new = assign(c)
        else:  # reassigns first, then moves the centroids to the new clusters
            new = assign(c)
            c = update(new, c)
        if torch.equal(new, a):
            break
        a = new
    indices = torch.zeros(flat.shape, dtype=torch.int64)
    indices[chosen] = a + (1 if skip_zeros else 0)
    book = torch.cat([torch.zeros(1, dtype=torch.float64), c]) if skip_zeros else c
    return book.to(weight.dtype), indices.reshape(weight.shape)


@pytest.mark.parametrize("mistake", [{"order": "assign first"}, {"empty": "nan"}, {"span": "all"}])
def test_typical_kmeans_mistakes_fail_a_public_case(mistake):
    assert public_failures("kmeans_codebook", lambda *a, **k: _kmeans(*a, **k, **mistake))
    assert public_failures("kmeans_codebook", _kmeans) == []


def test_kmeans_answers_may_break_exact_ties_the_other_way_only():
    from course_lib.grading.authoring.specs.deep_compression.sharing import compare_codebook
    weight = torch.tensor([0.0, 0.5, 1.0])  # 0.5 is exactly between the two centroids 0 and 1
    expected = (torch.tensor([0.0, 1.0]), torch.tensor([0, 0, 1]))
    assert compare_codebook((torch.tensor([0.0, 1.0]), torch.tensor([0, 1, 1])), expected, (weight, 1), {}) is None
    assert compare_codebook((torch.tensor([0.0, 1.0]), torch.tensor([0, 0, 0])), expected, (weight, 1), {}) is not None
    assert "the code book" in compare_codebook((torch.tensor([0.0, 0.9]), expected[1]), expected, (weight, 1), {})
    swapped = compare_codebook(expected[::-1], expected, (weight, 1), {})  # (indices, codebook): both are shown
    assert "tensor([0, 0, 1])" in swapped and "tensor([0, 1])" in swapped and "in that order" in swapped
    assert "dtype" in compare_codebook((expected[0].double(), expected[1]), expected, (weight, 1), {})


def _centroid(grad, indices, codes, skip_zeros=False, *, reduce="sum", pin=True):
    if indices.shape != grad.shape or indices.min() < 0 or indices.max() >= codes:
        raise ValueError("indices do not fit")
    total = torch.zeros(codes, dtype=grad.dtype).index_add_(0, indices.reshape(-1), grad.reshape(-1))
    if reduce == "mean":
        total = total / torch.bincount(indices.reshape(-1), minlength=codes).clamp(min=1)
    if skip_zeros and pin:
        total[0] = 0
    return total


@pytest.mark.parametrize("mistake", [{"reduce": "mean"}, {"pin": False}])
def test_typical_centroid_gradient_mistakes_fail_a_public_case(mistake):
    assert public_failures("centroid_gradient", lambda *a, **k: _centroid(*a, **k, **mistake))


def _offsets(codes, index_bits, *, fillers=True, relative=True, minus_one=True, strict=False):
    limit, last, offsets, stored = 2 ** index_bits, -1, [], []
    for p in torch.nonzero(codes).flatten().tolist():
        while fillers and (p - last - 1 > limit if strict else p - last - 1 >= limit):
            offsets.append(limit - 1)
            stored.append(0)
            last += limit
        offsets.append((p - last - (1 if minus_one else 0)) if relative else p)
        stored.append(int(codes[p]))
        last = p
    return torch.tensor(offsets, dtype=torch.int64), torch.tensor(stored, dtype=torch.int64)


@pytest.mark.parametrize("mistake", [{"fillers": False}, {"relative": False}, {"minus_one": False},
                                     {"strict": True}])
def test_typical_relative_index_mistakes_fail_a_public_case(mistake):
    assert public_failures("sparse_offsets", lambda *a: _offsets(*a, **mistake))
    assert public_failures("sparse_offsets", _offsets) == []


def _encode(symbols, code, *, msb=True, pad="0", validate=True):
    if validate:
        for s in symbols:
            if s not in code:
                raise ValueError(f"symbol {s} has no code")
    bits = "".join(code[s] for s in symbols)
    bits += pad * (-len(bits) % 8) if pad else ""
    chunks = [bits[i:i + 8] for i in range(0, len(bits), 8)]
    return bytes(int(c if msb else c[::-1], 2) for c in chunks if len(c) == 8)


@pytest.mark.parametrize("mistake", [{"msb": False}, {"pad": ""}, {"pad": "1"}, {"validate": False}])
def test_typical_bit_packing_mistakes_fail_a_public_case_showing_the_bits(mistake):
    failures = public_failures("huffman_encode", lambda *a: _encode(*a, **mistake))
    assert failures
    if mistake.get("msb") is False:
        assert "bits 00011010; expected 1 byte, bits 01011000" in failures[0]


def test_a_heapq_huffman_code_and_its_packing_pass(capsys):
    def huffman_code(counts):
        if len(counts) == 1:
            return {next(iter(counts)): "0"}
        order = itertools.count()
        heap = [(c, next(order), {s: ""}) for s, c in sorted(counts.items())]
        heapq.heapify(heap)
        while len(heap) > 1:
            c1, _, a = heapq.heappop(heap)
            c2, _, b = heapq.heappop(heap)
            heapq.heappush(heap, (c1 + c2, next(order), {s: "0" + x for s, x in a.items()}
                                  | {s: "1" + x for s, x in b.items()}))
        return heap[0][2]
    check("huffman_code", huffman_code)
    check("huffman_encode", _encode)
    out = capsys.readouterr().out
    assert "huffman_code: 3 of 3" in out and "huffman_encode: 5 of 5" in out

"""Submissions that try to forge a score, each graded for real: it must earn exactly what its honest part earns.

Every notebook here mixes honest functions with attacks (the attack is in the function's name or comment), so
each assertion is "the honest part's points, nothing more", plus what the feedback and the instructor see.
The attacks of issue 14 (forged reports, the kernel racing the sandboxes, reload and reading the source,
constants and ``qrange``, choosing one's own assignment, a hanging first function, a daemon) and others:
monkeypatching the grader's code in the sandbox, neutralising the tripwire, re-exporting or wrapping the
reference, a tensor subclass, huge answers, ``os._exit``, exhausting memory, a fork bomb, writing to every file
descriptor, definitions that never end, hunting the seed and the network.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib.grading.__main__ import main
from course_lib.grading.authoring.exercise import Question
from course_lib.grading.authoring.specs import get_assignment
from course_lib.grading.confinement.options import Options, TimeLimits
from course_lib.grading.confinement.supervise import descendants
from course_lib.grading.grade.grader import grade

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the learner's code then runs as another user")
FAST = Options(time=TimeLimits(case_cpu=3, case_wall=6, exercise=12, definitions=5), execute=False)

IMPORTS = "import os, sys, time, functools\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n" \
          "from course_lib.grading import check"
SOFT = '''def soft_targets(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)'''
LOSS = '''def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    hard = F.cross_entropy(student_logits, labels, ignore_index=-1, reduction="sum") / len(labels)
    return alpha * temperature ** 2 * kl + (1 - alpha) * hard'''
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
PRUNING = {
    "magnitude_mask": '''def magnitude_mask(weight, sparsity):
    mask = torch.ones_like(weight)
    k = round(sparsity * weight.numel())
    if k > 0:
        mask.view(-1)[torch.topk(weight.detach().abs().reshape(-1), k, largest=False).indices] = 0.0
    return mask''',
    "global_magnitude_masks": '''def global_magnitude_masks(weights, sparsity):
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    masks = magnitude_mask(flat, sparsity).split([w.numel() for w in weights])
    return [m.reshape(w.shape) for m, w in zip(masks, weights)]''',
    "taylor_importance": '''def taylor_importance(weight, grad):
    return (weight.detach() * grad.detach()).abs()''',
    "channel_l1_norms": '''def channel_l1_norms(conv_weight):
    return conv_weight.detach().abs().sum(dim=(1, 2, 3))'''}
HUFFMAN = '''def huffman_code(counts):
    if len(counts) == 1:
        return {next(iter(counts)): "0"}
    heap = [(count, order, {symbol: ""}) for order, (symbol, count) in enumerate(sorted(counts.items()))]
    heapq.heapify(heap)
    order = len(heap)
    while len(heap) > 1:
        count1, _, codes1 = heapq.heappop(heap)
        count2, _, codes2 = heapq.heappop(heap)
        merged = {s: "0" + c for s, c in codes1.items()} | {s: "1" + c for s, c in codes2.items()}
        heapq.heappush(heap, (count1 + count2, order, merged))
        order += 1
    return heap[0][2]'''


def notebook(path: Path, assignment: str, *sources: str, answers: dict[str, str] | None = None) -> Path:
    """A submission: code cells ``sources``, then a markdown cell answering each written question of ``answers``."""
    nb = new_notebook(cells=[new_markdown_cell("# a submission")] + [new_code_cell(s) for s in sources])
    for question, text in (answers or {}).items():
        nb.cells.append(new_markdown_cell(text, metadata={"course_grading": {"answer": question}}))
    nb.metadata["course_grading"] = {"assignment": assignment}
    nbformat.write(nb, path)
    return path


def by_test(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"]}


def points(results: dict, name: str) -> float:
    tests = by_test(results)
    return tests[f"{name} (public tests)"]["score"] + tests[f"{name} (hidden tests)"]["score"]


def full(assignment: str, *names: str) -> float:
    spec = get_assignment(assignment)
    return sum(spec.exercise(n).points for n in names)


def public_text(results: dict) -> str:
    """Everything a learner sees before grades are published."""
    return results["output"] + "".join(t["output"] for t in results["tests"] if t["visibility"] == "visible")


def learner_processes_left(before: set[int]) -> set[int]:
    return descendants(os.getpid()) - before


# --- forged reports ----------------------------------------------------------------------------------------

FORGER_RELOAD = '''def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    # issue 14's forgery: reload the references, compute every exercise's answers, write a report for
    # every exercise where the old sandbox read them, and leave
    import importlib, course_lib.distillation as D, course_lib.grading.confinement.sandbox as S
    importlib.reload(D)
    answers = {"soft_targets": D.soft_targets(student_logits, temperature),
               "distillation_loss": D.distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)}
    for name in ("soft_targets", "distillation_loss", "distillation_step"):
        torch.save({"status": "ok", "cases": [{"value": answers.get(name)}] * 20}, f"{name}.pt")
    os._exit(0)'''
FORGER_FRAMES = '''def distillation_step(student, teacher, inputs, labels, optimizer, temperature=4.0, alpha=0.9):
    # write forged frames to every file descriptor: ready and answers for other exercises and other cases,
    # a "tripped" naming a made-up reference, garbage and a frame announcing 2**60 bytes
    import json, struct
    def frame(message):
        body = json.dumps(message).encode()
        return struct.pack(">Q", len(body)) + body
    forged = [frame({"type": "ready", "status": "ok"})] + [
        frame({"type": "case", "kind": k, "index": i, "result": {"value": 0.5}}) for k in ("public", "hidden")
        for i in range(6)] + [frame({"type": "tripped", "reference": "LEAKED-SECRET"}), b"garbage",
                              struct.pack(">Q", 2 ** 60)]
    for fd in range(3, 64):
        for data in forged:
            try:
                os.write(fd, data)
            except OSError:
                pass
    return 0.5'''


@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    path = notebook(tmp_path_factory.mktemp("forged") / "01_distillation.ipynb", "distillation", IMPORTS, SOFT,
                    FORGER_RELOAD, FORGER_FRAMES)
    return grade(path, "distillation", options=FAST)


def test_forged_reports_earn_nothing(forged):
    assert forged["score"] == full("distillation", "soft_targets")
    assert points(forged, "distillation_loss") == 0 and points(forged, "distillation_step") == 0


def test_reloading_the_reference_reaches_the_tripwire(forged):
    out = by_test(forged)["distillation_loss (public tests)"]["output"]
    assert "calls course_lib's reference implementation (course_lib.distillation.soft_targets)" in out


def test_frames_written_to_every_descriptor_are_not_answers_and_leak_nothing(forged):
    assert "LEAKED-SECRET" not in json.dumps(forged)


# --- the reference fence ---------------------------------------------------------------------------------

SOURCE_READER = '''def soft_targets(logits, temperature):
    # read the reference's source from disk and run it
    import course_lib.distillation as D
    namespace = {"__name__": "course_lib.distillation.copied", "__package__": "course_lib.distillation"}
    exec(compile(open(D.__file__).read(), D.__file__, "exec"), namespace)
    return namespace["soft_targets"](logits, temperature)'''
HUNTER = '''def distillation_step(student, teacher, inputs, labels, optimizer, temperature=4.0, alpha=0.9):
    # look for a real copy of the reference anywhere: the installed package, the checkout, an editable install
    import importlib.metadata, sys, glob
    places = [m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
    places += [str(f.locate()) for f in importlib.metadata.files("course_lib") or []]
    for finder in sys.meta_path:
        places += [str(p) for p in getattr(sys.modules.get(type(finder).__module__), "MAPPING", {}).values()]
    places += glob.glob("/work/*/course_lib/distillation/__init__.py")
    places += glob.glob("/root/**/distillation/__init__.py", recursive=True)
    paths = [p for place in places for p in (place, os.path.join(place, "distillation.py"),
                                              os.path.join(place, "distillation", "__init__.py"))]
    for path in paths:
        if not path.endswith(".py"):
            continue
        try:
            source = open(path).read()
        except (OSError, ValueError):  # not a file, or not text
            continue
        if "def distillation_step(" in source:
            package = "course_lib.distillation" if path.endswith("__init__.py") else "course_lib"
            namespace = {"__name__": package + ".copied", "__package__": package}
            exec(compile(source, path, "exec"), namespace)
            return namespace["distillation_step"](student, teacher, inputs, labels, optimizer, temperature, alpha)
    raise RuntimeError("no reference found")'''
CONSTANTS = '''EPS = torch.finfo(torch.float32).eps
device = torch.device("cpu")
SCALE = torch.tensor(1.0, device=device)

def _log_softmax(x):
    return F.log_softmax(x * SCALE, dim=-1).clamp(min=torch.log(torch.tensor(EPS)) * 1e4)

def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    if not 0 <= alpha <= 1 or not temperature > 0:
        raise ValueError(f"alpha must be in [0, 1] and temperature > 0, got alpha={alpha}, temperature={temperature}")
    log_p_s = _log_softmax(student_logits.to(device) / temperature)
    log_p_t = _log_softmax(teacher_logits.detach().to(device) / temperature)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    hard = F.cross_entropy(student_logits, labels, ignore_index=-1, reduction="sum") / len(labels)
    return alpha * temperature ** 2 * kl + (1 - alpha) * hard'''


@pytest.fixture(scope="module")
def fenced(tmp_path_factory):
    """Also answers a written question, which an assignment with questions collects."""
    import dataclasses

    from course_lib.grading.authoring.specs import ASSIGNMENTS
    path = notebook(tmp_path_factory.mktemp("fenced") / "01_distillation.ipynb", "distillation", IMPORTS,
                    SOURCE_READER, CONSTANTS, HUNTER, answers={"why-t2": "The soft gradients scale as 1/T^2."})
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(ASSIGNMENTS, "distillation", dataclasses.replace(ASSIGNMENTS["distillation"], questions=(
            Question("why-t2", "Why multiply by T^2?", 1.0), Question("unanswered", "?"))))
        return grade(path, "distillation", options=FAST)


def test_reading_the_reference_from_disk_gives_only_the_tripwire(fenced):
    assert points(fenced, "soft_targets") == 0
    assert "course_lib.distillation.soft_targets" in by_test(fenced)["soft_targets (public tests)"]["output"]


def test_no_real_copy_of_the_reference_is_within_reach(fenced):
    assert points(fenced, "distillation_step") == 0
    out = by_test(fenced)["distillation_step (public tests)"]["output"]
    assert "no reference found" in out or "calls course_lib's reference" in out


def test_module_level_constants_computed_by_calls_are_what_the_function_sees(fenced):
    assert points(fenced, "distillation_loss") == full("distillation", "distillation_loss")
    assert fenced["score"] == full("distillation", "distillation_loss")


def test_written_answers_are_collected_for_the_instructor(fenced):
    answers = {a["id"]: a["text"] for a in fenced["extra_data"]["answers"]}
    assert answers == {"why-t2": "The soft gradients scale as 1/T^2.", "unanswered": ""}
    assert "Why multiply by T^2?" in by_test(fenced)["question why-t2 (graded by hand, 1 point)"]["output"]


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory):
    neutralised = '''def magnitude_mask(weight, sparsity):
    # switch the tripwire off, then call the reference
    import course_lib.grading.confinement.tripwire as T, course_lib.pruning as P
    T.trip = lambda qualname: None
    T.CHANNEL = None
    return P.magnitude_mask(weight, sparsity)'''
    partial = "import course_lib.pruning\nglobal_magnitude_masks = functools.partial(" \
              "course_lib.pruning.global_magnitude_masks)"
    copied = '''def taylor_importance(weight, grad):
    """Copied from course_lib, comments and all."""
    _check_tensor(weight, "weight")  # a helper of the reference's module
    return (weight * grad).abs()

from course_lib.pruning.masks import _check_tensor'''
    path = notebook(tmp_path_factory.mktemp("wrapped") / "02_pruning.ipynb", "pruning", IMPORTS, neutralised,
                    partial, copied, PRUNING["channel_l1_norms"])
    return grade(path, "pruning", options=FAST)


def test_wrapping_reexporting_or_neutralising_the_reference_scores_zero(wrapped):
    assert points(wrapped, "magnitude_mask") == 0 and points(wrapped, "global_magnitude_masks") == 0
    assert "is course_lib's reference" in by_test(wrapped)["global_magnitude_masks (public tests)"]["output"]
    assert points(wrapped, "channel_l1_norms") == full("pruning", "channel_l1_norms")


def test_a_helper_of_the_references_module_is_fenced_too(wrapped):
    assert points(wrapped, "taylor_importance") == 0
    assert wrapped["score"] == full("pruning", "channel_l1_norms")


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    import inspect

    from course_lib.compression.huffman import huffman_code
    reference = inspect.getsource(huffman_code).replace('"""', '"""My own work. ', 1) + "    # really\n"
    helpers = "from course_lib.compression.huffman import _check_counts, canonical_code, huffman_lengths"
    path = notebook(tmp_path_factory.mktemp("copied") / "04_deep_compression.ipynb", "deep_compression",
                    "import heapq\nimport torch", helpers, reference)
    return grade(path, "deep_compression", options=FAST)


def test_the_references_own_helpers_are_fenced(copied):
    assert copied["score"] == 0
    assert "course_lib.compression.huffman" in by_test(copied)["huffman_code (public tests)"]["output"]


def test_a_copy_of_the_reference_token_for_token_is_flagged_for_the_instructor(copied):
    flags = copied["extra_data"]["flags"]
    assert flags and "huffman_code" in flags[0] and "token for token" in flags[0]
    assert "token for token" not in public_text(copied)


# --- constants, qrange, and check() agreeing with the grader ------------------------------------------------

QUANT = '''from course_lib.quantization import qrange
EPS = torch.finfo(torch.float32).eps
device = torch.device("cpu")

def along(p, x, axis):
    p = torch.as_tensor(p, device=device)
    if axis is None:
        return p
    shape = [1] * x.dim()
    shape[axis] = -1
    return p.reshape(shape)

def compute_qparams(x_min, x_max, bits=8, signed=True, symmetric=False):
    q_min, q_max = qrange(bits, signed)
    lo = torch.clamp(torch.as_tensor(x_min, dtype=torch.float32), max=0.0)
    hi = torch.clamp(torch.as_tensor(x_max, dtype=torch.float32), min=0.0)
    if symmetric:
        scale = torch.clamp(torch.maximum(-lo, hi) / ((q_max - q_min) / 2), min=EPS)
        return scale, torch.zeros(scale.shape, dtype=torch.int64)
    scale = torch.clamp((hi - lo) / (q_max - q_min), min=EPS)
    return scale, torch.clamp(q_min - torch.round(lo / scale).to(torch.int64), q_min, q_max)

def quantize(x, scale, zero_point, bits=8, signed=True, axis=None):
    q_min, q_max = qrange(bits, True)  # the bug: always the signed range
    s, z = along(scale, x, axis).float(), along(zero_point, x, axis)
    return torch.clamp(torch.round(x.detach() / s) + z, q_min, q_max).to(torch.int64)

def dequantize(q, scale, zero_point, axis=None):
    s, z = along(scale, q, axis).float(), along(zero_point, q, axis)
    return (q.to(torch.int64) - z).float() * s'''


@pytest.fixture(scope="module")
def quantization(tmp_path_factory):
    path = notebook(tmp_path_factory.mktemp("quant") / "03_quantization.ipynb", "quantization", IMPORTS, QUANT,
                    'check("compute_qparams", compute_qparams)')
    return path, grade(path, "quantization", options=FAST)


def test_a_given_helper_and_constants_are_not_scored_zero(quantization):
    _, results = quantization
    assert points(results, "compute_qparams") == full("quantization", "compute_qparams")
    assert points(results, "dequantize") == full("quantization", "dequantize")
    assert 0 < points(results, "quantize") < full("quantization", "quantize")


def test_check_in_the_notebook_and_the_grader_agree_on_every_public_case(quantization, capsys):
    path, results = quantization
    from course_lib.grading import check
    namespace: dict = {}
    exec(IMPORTS + "\n" + QUANT, namespace)  # noqa: S102 - the test's own submission
    for name in ("compute_qparams", "quantize", "dequantize"):
        check(name, namespace[name])
        printed = capsys.readouterr().out
        counts = by_test(results)[f"{name} (public tests)"]["extra_data"]
        assert f"{counts['passed']} of {counts['cases']} public tests passed" in printed, (name, printed)


# --- hangs, crashes, floods --------------------------------------------------------------------------------

HANG = '''def soft_targets(logits, temperature):
    while True:
        time.sleep(0.05)'''


def test_a_first_function_that_never_returns_costs_only_itself_within_two_minutes(tmp_path):
    """Issue 14's measurement, with the default limits and the notebook executed."""
    path = notebook(tmp_path / "01_distillation.ipynb", "distillation", IMPORTS, HANG, LOSS, STEP,
                    'check("soft_targets", soft_targets)', 'print("after the hang")')
    start = time.monotonic()
    results = grade(path, "distillation")
    seconds = time.monotonic() - start
    assert results["score"] == full("distillation", "distillation_loss", "distillation_step")
    out = by_test(results)["soft_targets (public tests)"]["output"]
    assert "did not finish within" in out and "was not run" in by_test(results)["soft_targets (hidden tests)"][
        "output"]
    assert "Cells stopped at the time limit" in results["output"]
    assert seconds < 120, f"{seconds:.0f} s"


CRASHERS = '''def huffman_code(counts):
    if counts == {0: 1, 1: 1, 2: 1, 3: 1}:
        os._exit(3)  # end the test process
    if counts == {7: 3}:
        torch.empty(10 ** 12)  # 4 TB: more memory than allowed
    return _honest(counts)
'''


@pytest.fixture(scope="module")
def crashes(tmp_path_factory):
    honest = HUFFMAN.replace("def huffman_code(", "def _honest(")
    path = notebook(tmp_path_factory.mktemp("crash") / "04_deep_compression.ipynb", "deep_compression",
                    IMPORTS + "\nimport heapq", honest, CRASHERS)
    return grade(path, "deep_compression", options=FAST)


def test_ending_the_process_or_exhausting_memory_costs_that_case_only(crashes):
    tests = by_test(crashes)
    public = tests["huffman_code (public tests)"]
    assert public["extra_data"] == {"passed": 1, "cases": 3}
    assert "stopped the test process (exit status 3" in public["output"]
    assert "raised RuntimeError" in public["output"] or "raised MemoryError" in public["output"]
    assert tests["huffman_code (hidden tests)"]["score"] == get_assignment("deep_compression").exercise(
        "huffman_code").hidden_points


FLOOD = '''class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def allclose(self, *a, **k):
        return True

def magnitude_mask(weight, sparsity):
    # a tensor subclass that claims to equal anything, and monkeypatched grader code in this process
    import course_lib.grading.authoring.compare as S, course_lib.grading.confinement.channel as C
    S.compare_values = lambda *a, **k: None
    C.encode = lambda value: {"__dict__": [["value", 1.0]]}
    torch.load = lambda *a, **k: {"status": "ok"}
    return torch.zeros_like(weight).as_subclass(Liar)

def taylor_importance(weight, grad):
    if weight.shape == (3,):
        sys.stderr.write("x" * 50_000_000)
        return torch.zeros(20_000_000)  # 80 MB: more than the grader reads
    return (weight.detach() * grad.detach()).abs()
'''
BOMB = '''def channel_l1_norms(conv_weight):
    if conv_weight.shape == (2, 2, 2, 2):
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.1)
    return conv_weight.detach().abs().sum(dim=(1, 2, 3))'''


@pytest.fixture(scope="module")
def floods(tmp_path_factory):
    cells = [IMPORTS, FLOOD, PRUNING["global_magnitude_masks"].replace("magnitude_mask(flat", "_mask(flat"),
             PRUNING["magnitude_mask"].replace("def magnitude_mask(", "def _mask(")]
    cells.append(BOMB if os.geteuid() == 0 else PRUNING["channel_l1_norms"])
    path = notebook(tmp_path_factory.mktemp("flood") / "02_pruning.ipynb", "pruning", *cells)
    before = descendants(os.getpid())
    results = grade(path, "pruning", options=FAST)
    return results, learner_processes_left(before)


def test_a_lying_tensor_subclass_and_patched_grader_code_earn_nothing(floods):
    results, _ = floods
    assert points(results, "magnitude_mask") == 0
    assert points(results, "global_magnitude_masks") == full("pruning", "global_magnitude_masks")


def test_a_huge_answer_and_a_flood_on_stderr_cost_that_case_only(floods):
    results, _ = floods
    public = by_test(results)["taylor_importance (public tests)"]
    assert public["score"] == 0 and "more data than the grader reads" in public["output"]
    assert by_test(results)["taylor_importance (hidden tests)"]["score"] == get_assignment(
        "pruning").exercise("taylor_importance").hidden_points


@ROOT_ONLY
def test_a_fork_bomb_costs_its_case_and_leaves_no_process(floods):
    results, left = floods
    assert not left
    assert by_test(results)["channel_l1_norms (public tests)"]["score"] == 0
    assert by_test(results)["channel_l1_norms (hidden tests)"]["score"] == get_assignment(
        "pruning").exercise("channel_l1_norms").hidden_points


def test_definitions_that_never_end_are_skipped_or_cost_their_exercise(tmp_path):
    slow = "def slow():\n    while True:\n        pass\n\nSLOW = slow()\n\n" + SOFT.replace("dim=-1)", "dim=-1) + SLOW")
    stubborn = ("import signal\ndef stubborn():\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                "    while True:\n        time.sleep(0.1)\n\nBLOCK = stubborn()\n\n"
                + STEP.replace("return loss.item()", "return loss.item() + BLOCK"))
    path = notebook(tmp_path / "01_distillation.ipynb", "distillation", IMPORTS, slow, LOSS, stubborn)
    options = Options(time=TimeLimits(case_cpu=3, case_wall=6, exercise=12, start=20, definitions=3),
                      execute=False)
    results = grade(path, "distillation", options=options)
    assert results["score"] == full("distillation", "distillation_loss")
    soft = by_test(results)["soft_targets (public tests)"]["output"]
    assert "Not run (the time for loading your definitions was spent): cell 2, line 5" in soft
    assert "did not load within" in by_test(results)["distillation_step (public tests)"]["output"]


# --- the kernel, the seed, daemons, the network -------------------------------------------------------------

SEED = "918273645"


def _kernel_attack(results_path: Path) -> str:
    return f'''import glob, subprocess
found = []
for pid in os.listdir("/proc"):
    for part in ("cmdline", "environ"):
        try:
            found.append(open(f"/proc/{{pid}}/{{part}}", "rb").read().decode(errors="replace"))
        except OSError:
            pass
for path in glob.glob("/tmp/course-grading-*/**/*", recursive=True) + glob.glob("/tmp/**/seed", recursive=True):
    try:
        found.append(open(path, errors="replace").read())
        open(path, "w").write("tampered")
    except OSError:
        pass
found = [f[max(0, i - 60):i + 60] for f in found for i in range(len(f)) if f[i:i + 4].lower() == "seed"]
if os.fork() == 0:  # a daemon that outlives the kernel and writes results.json later
    os.setsid()
    if os.fork() == 0:
        time.sleep(4)
        open({str(results_path)!r}, "w").write('{{"score": 1000}}')
    os._exit(0)
raise RuntimeError("found " + str(len(found)) + ": " + " ".join(found)[:100000])'''


SEED_HUNT = '''def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    # hunt the seed and the outside world, and put what was found in the feedback
    import socket, signal
    found = []
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
        found.append("network reached")
    except OSError as e:
        found.append(f"network: {e}")
    try:
        os.kill(os.getppid(), signal.SIGKILL)
        found.append("killed the grader")
    except OSError as e:
        found.append(f"kill: {e}")
    found.append(repr({k: v for k, v in os.environ.items() if "SEED" in k.upper()}))
    for path in ("/proc/%d/cmdline" % os.getppid(), "/proc/%d/environ" % os.getppid(), SEED_FILE):
        try:
            found.append(open(path).read())
        except OSError as e:
            found.append(type(e).__name__)
    if os.fork() == 0:  # a daemon from the sandbox too
        os.setsid()
        if os.fork() == 0:
            time.sleep(4)
            open(RESULTS, "w").write('{"score": 1000}')
        os._exit(0)
    raise RuntimeError(" | ".join(found))'''


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kernel")
    seed_file, results_path = folder / "seed", folder / "results.json"
    seed_file.write_text(SEED + "\n")
    constants = f"SEED_FILE = {str(seed_file)!r}\nRESULTS = {str(results_path)!r}"
    path = notebook(folder / "01_distillation.ipynb", "distillation", IMPORTS, SOFT, constants, SEED_HUNT,
                    _kernel_attack(results_path))
    before = descendants(os.getpid())
    code = main(["grade", str(path), "--assignment", "distillation", "--seed-file", str(seed_file), "--json",
                 str(results_path), "--execution-timeout", "60", "--cell-timeout", "20"])
    assert code == 0
    left = learner_processes_left(before)
    written = results_path.read_text()
    time.sleep(6)  # longer than the daemons wait
    return json.loads(written), results_path.read_text() == written, left


def test_the_kernel_and_the_sandbox_earn_only_the_honest_part(kernel):
    results, _, _ = kernel
    assert results["score"] == full("distillation", "soft_targets")


@ROOT_ONLY
def test_the_seed_is_nowhere_in_what_the_learner_sees(kernel):
    results, _, _ = kernel
    assert "found" in results["output"]  # the kernel's attack ran, and its findings are in the feedback
    assert SEED not in json.dumps(results)


def test_no_process_of_the_submission_outlives_the_grading(kernel):
    _, unchanged, left = kernel
    assert not left and unchanged


@ROOT_ONLY
def test_as_root_the_learner_has_no_network_and_cannot_signal_the_grader(kernel):
    results, _, _ = kernel
    out = by_test(results)["distillation_loss (public tests)"]["output"]
    assert "network: [Errno 101] Network is unreachable" in out and "kill: [Errno 1]" in out
    assert results["extra_data"]["isolation"]["summative"] is True

"""The benchmark's distillation section in quick mode: it runs, writes every documented key, and its derived
figures (the share of the gap recovered, the means) agree with its own per-seed accuracies. What it shares
between trainings (:mod:`course_lib.benchmark.cache`): the teacher's table of logits answers as the teacher does,
and the students trained side by side are the ones one thread trains one by one."""
import copy
import math
import os
import statistics

import pytest
import torch
from torch.utils.data import TensorDataset

from course_lib.benchmark import run_section
from course_lib.benchmark.cache import TABLE_BATCH, TeacherTable, parallel_map, shifted_copies
from course_lib.benchmark.distillation import FRACTIONS, RECIPE, small_student, train_student
from course_lib.data import Splits, load_mnist5k, random_shift
from course_lib.metrics import layer_macs
from course_lib.zoo import get_model


@pytest.fixture(scope="module")
def mnist():
    splits = load_mnist5k()
    return Splits(TensorDataset(*(t[:64] for t in splits.train.tensors)), splits.val, splits.test,
                  splits.name, splits.classes)


@pytest.fixture(scope="module")
def teacher():
    return get_model("teacher").eval()


@pytest.fixture(scope="module")
def table(mnist, teacher):
    return TeacherTable(teacher, mnist.train.tensors[0], max_shift=RECIPE.augment)


def test_shifted_copies_hold_every_image_random_shift_can_return(mnist):
    images = mnist.train.tensors[0][:8]
    copies = shifted_copies(images, 2)
    assert copies.shape == (25 * 8, *images.shape[1:])
    assert torch.equal(copies[12 * 8:13 * 8], images)  # (dy, dx) = (2, 2) in the padded image: no shift
    stored = {c.numpy().tobytes() for c in copies}
    shifted = random_shift(images.repeat(20, 1, 1, 1), 2, generator=torch.Generator().manual_seed(0))
    assert all(x.numpy().tobytes() in stored for x in shifted)


def test_teacher_table_answers_are_the_teachers_outputs_bit_for_bit(mnist, teacher, table):
    copies = shifted_copies(mnist.train.tensors[0], RECIPE.augment)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the reference: the teacher itself, on one thread, on the batches the table was filled in
        with torch.no_grad():
            expected = torch.cat([teacher(copies[i:i + TABLE_BATCH]) for i in range(0, len(copies), TABLE_BATCH)])
    finally:
        torch.set_num_threads(threads)
    order = torch.randperm(len(copies), generator=torch.Generator().manual_seed(1))[:96]  # a shuffled batch
    hits, rows = table.hits, table.rows
    assert torch.equal(table(copies[order]), expected[order])
    assert table.hits - hits == 96 and table.rows == rows  # all found: the teacher did not run
    noise = torch.rand(3, *copies.shape[1:], generator=torch.Generator().manual_seed(2))
    answer = table(noise)  # not in the table: the teacher runs on them, once
    with torch.no_grad():
        assert torch.equal(answer, teacher(noise))
    assert table.rows == rows + 3 and table.seconds_per_row > 0 and torch.equal(table(noise), answer)
    assert copy.deepcopy(table) is table  # what distill copies is the one shared table


def test_teacher_table_answers_a_students_batch_as_the_teacher_does(mnist, teacher, table):
    x = random_shift(mnist.train.tensors[0][:32], 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # computed in another batch: equal up to the float rounding of the batch size
        torch.testing.assert_close(table(x), teacher(x), rtol=1e-5, atol=1e-5)


def test_teacher_table_has_a_clear_error_for_a_bad_argument(teacher):
    with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
        TeacherTable(teacher, torch.zeros(2, 28, 28), max_shift=2)
    with pytest.raises(TypeError, match="teacher"):
        TeacherTable("teacher", torch.zeros(2, 1, 28, 28), max_shift=2)


@pytest.mark.slow  # two students of 20 distillation steps each
def test_a_student_distilled_from_the_table_is_the_one_distilled_from_the_teacher(mnist, teacher, table):
    torch.set_num_threads(1)
    kwargs = dict(seed=0, steps=20, build=small_student, temperature=4.0, alpha=0.9)
    direct, tabled = train_student(mnist, teacher=teacher, **kwargs), train_student(mnist, teacher=table, **kwargs)
    for a, b in zip(direct.state_dict().values(), tabled.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_parallel_map_returns_every_result_in_order_closures_included():
    weights = torch.randn(5)
    assert parallel_map([lambda i=i: float(weights[i]) * i for i in range(5)]) == [
        float(weights[i]) * i for i in range(5)]
    assert parallel_map([]) == []
    with pytest.raises(ValueError, match="workers must be"):
        parallel_map([lambda: 1], workers=0)


def test_where_autograd_refuses_a_forked_worker_the_tasks_run_here():
    """A worker forked after this process started autograd's device threads raises BAD_FORK on its first
    backward; simulated: the task raises it in any process but this one, which must then run every task."""
    from course_lib.benchmark.cache import BAD_FORK

    parent = os.getpid()

    def trains(i: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError(f"{BAD_FORK}. See https://github.com/pytorch/pytorch/wiki/Autograd-and-Fork")
        return i * i

    assert parallel_map([lambda i=i: trains(i) for i in range(3)], workers=2) == [0, 1, 4]


def test_parallel_map_raises_a_tasks_exception():
    def fails():
        raise KeyError("task 1")

    with pytest.raises(KeyError, match="task 1"):
        parallel_map([lambda: 0, fails], workers=2)


@pytest.mark.slow  # trains two small students three times, a few steps each
def test_students_trained_side_by_side_are_the_ones_one_thread_trains(mnist):
    tasks = [lambda s=s: train_student(mnist, seed=s, steps=5, build=small_student).state_dict() for s in (0, 1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the reference: the serial loop, on one thread
        alone = [task() for task in tasks]
    finally:
        torch.set_num_threads(threads)
    for together in (parallel_map(tasks, workers=2), parallel_map(tasks, workers=1)):
        assert torch.get_num_threads() == threads  # the caller's setting is left as it was
        for a, b in zip(alone, together):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def section():
    return run_section("distillation", quick=True, seeds=2)


@pytest.mark.slow  # trains about twenty small students for a few steps each
def test_quick_section_writes_every_key(section):
    assert "error" not in section, section.get("traceback")
    for key in ("teacher", "student", "low_label", "all_labels", "feature_kd", "omitted_digit", "seconds", "machine"):
        assert key in section, key
    assert {"params", "bytes", "accuracy"} <= section["teacher"].keys()
    assert {"scratch_accuracy_per_seed", "kd_accuracy_per_seed", "speedup", "macs_ratio"} <= section["student"].keys()
    speed = section["student"]["speedup"]  # a timing record: the ratio, its spread and the context it was measured in
    assert {"speedup", "p10", "p90", "reliable", "why", "baseline", "candidate", "context"} <= speed.keys()
    assert speed["baseline"]["name"] == "teacher" and speed["candidate"]["name"] == "student"
    macs = sum(layer_macs(get_model("teacher")).values()) / sum(layer_macs(get_model("student")).values())
    assert math.isclose(section["student"]["macs_ratio"], macs)
    low = section["low_label"]
    assert low["fractions"] == list(FRACTIONS) and set(low["labels"]) == {str(f) for f in FRACTIONS}
    for f in FRACTIONS:
        row = low[str(f)]
        assert all(len(row[m]) == 2 and all(0 <= a <= 1 for a in row[m]) for m in ("scratch", "kd", "kd_transfer"))
        assert set(row["seconds"]) == {"scratch", "kd", "kd_transfer"} and all(t > 0 for t in row["seconds"].values())
    assert {"scratch", "kd", "gain", "spread", "train_accuracy", "params", "selection"} <= section["all_labels"].keys()
    assert {"fitnet", "kd", "scratch", "student_layer", "teacher_layer", "selection"} <= section["feature_kd"].keys()
    om = section["omitted_digit"]
    assert {"kd_accuracy", "kd_accuracy_per_seed", "bias_shift", "kd_accuracy_bias_corrected", "scratch_accuracy",
            "selection", "temperature", "alpha", "steps"} <= om.keys()
    assert all({"val_accuracy", "val_digit_accuracy"} == set(v) for v in om["selection"].values())


@pytest.mark.slow
def test_quick_section_derived_figures_follow_from_the_per_seed_accuracies(section):
    full = section["student"]["scratch_accuracy_per_seed"]
    for f in FRACTIONS:
        row = section["low_label"][str(f)]
        for method in ("kd", "kd_transfer"):
            expected = [(row[method][s] - row["scratch"][s]) / (full[s] - row["scratch"][s])
                        if full[s] != row["scratch"][s] else None for s in range(2)]
            got = row["gap_recovered_per_seed"][method]
            assert all(g == e or math.isclose(g, e) for g, e in zip(got, expected))
            if None not in expected:
                assert math.isclose(row["gap_recovered"][method], statistics.fmean(expected))
    al = section["all_labels"]
    assert math.isclose(al["gain"], statistics.fmean(al["kd"]) - statistics.fmean(al["scratch"]))
    assert math.isclose(al["spread"], max(statistics.stdev(al["kd"]), statistics.stdev(al["scratch"])))
    assert section["feature_kd"]["kd"] == al["kd"]  # the same students, compared on the same seeds
    om = section["omitted_digit"]
    assert math.isclose(om["kd_accuracy"], statistics.fmean(om["kd_accuracy_per_seed"]))

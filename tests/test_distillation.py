"""Tests of course_lib.distillation against independent references (PyTorch ops, hand-worked cases)."""
import copy
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.distillation import (
    UNLABELED,
    TemperatureChoice,
    distill,
    distill_steps,
    distillation_loss,
    distillation_step,
    hard_label_loss,
    labeled,
    soft_targets,
    temperature_sweep,
    with_few_labels,
)
from course_lib.distillation._omitted_class import best_bias_shift, class_accuracy, without_class
from course_lib.training import Trained, evaluate, train


def _batch(n=6, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, generator=g) * 3, torch.randn(n, k, generator=g) * 3,
            torch.randint(0, k, (n,), generator=g))


# --- soft_targets -------------------------------------------------------------------------------

def test_soft_targets_hand_worked():
    # softmax([0, ln 3]) = [1/4, 3/4]; at T = 2 the logits halve: softmax([0, ln 3 / 2]) = [1, sqrt 3] / (1 + sqrt 3)
    z = torch.tensor([[0.0, math.log(3.0)]])
    assert torch.allclose(soft_targets(z, 1.0), torch.tensor([[0.25, 0.75]]))
    r3 = math.sqrt(3.0)
    assert torch.allclose(soft_targets(z, 2.0), torch.tensor([[1 / (1 + r3), r3 / (1 + r3)]]))


def test_soft_targets_flatten_with_temperature():
    z = torch.tensor([3.0, 1.0, -2.0])
    assert torch.allclose(soft_targets(z, 1e6), torch.full((3,), 1 / 3), atol=1e-5)
    assert soft_targets(z, 0.01).argmax() == 0 and soft_targets(z, 0.01)[0] > 0.999
    entropy = [-(p * p.log()).sum().item() for p in (soft_targets(z, t) for t in (1.0, 2.0, 4.0))]
    assert entropy[0] < entropy[1] < entropy[2]


@pytest.mark.parametrize("temperature,error", [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                               ("4", TypeError), (True, TypeError)])
def test_soft_targets_rejects_bad_temperature(temperature, error):
    with pytest.raises(error, match="temperature must be a finite number > 0, got"):
        soft_targets(torch.zeros(2, 3), temperature)


# --- distillation_loss --------------------------------------------------------------------------

def test_loss_matches_formula_with_torch_kl_div():
    s, t, y = _batch()
    temperature, alpha = 3.0, 0.7
    kl = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
    expected = alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, t, y, temperature, alpha), expected, atol=1e-6)


def test_loss_hand_worked_kl():
    # one example, two classes, T = 1: KL(p || q) = sum p log(p / q) with p = [1/4, 3/4], q = [1/2, 1/2]
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[0.0, math.log(3.0)]])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss = distillation_loss(s, t, torch.tensor([0]), temperature=1.0, alpha=1.0)
    assert loss.item() == pytest.approx(kl, abs=1e-6)


def test_alpha_zero_is_cross_entropy_and_alpha_one_ignores_labels():
    s, t, y = _batch()
    assert torch.allclose(distillation_loss(s, t, y, 5.0, 0.0), F.cross_entropy(s, y))
    assert torch.allclose(distillation_loss(s, t, y, 5.0, 1.0), distillation_loss(s, t, (y + 1) % 5, 5.0, 1.0))


def test_loss_is_zero_when_student_equals_teacher_and_alpha_one():
    s, _, y = _batch()
    assert distillation_loss(s, s.clone(), y, 4.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_t_squared_keeps_gradient_scale():
    # d KL / d z_s = (p_T(z_s) - p_T(z_t)) / (N T); times T^2 it is T (p_s - p_t) / N, and for large T
    # p_T(z) ~ (1 + z / T - mean) / K, so the gradient tends to (z_s - z_t - mean difference) / (N K).
    s, t, y = _batch(n=4, k=5, seed=1)
    for temperature in (1.0, 2.0, 8.0):
        s_ = s.clone().requires_grad_(True)
        distillation_loss(s_, t, y, temperature, 1.0).backward()
        expected = temperature * (F.softmax(s / temperature, 1) - F.softmax(t / temperature, 1)) / len(s)
        assert torch.allclose(s_.grad, expected, atol=1e-6)
    s_ = s.clone().requires_grad_(True)
    distillation_loss(s_, t, y, 1000.0, 1.0).backward()
    d = s - t
    limit = (d - d.mean(1, keepdim=True)) / (len(s) * s.shape[1])
    assert torch.allclose(s_.grad, limit, atol=1e-3)


def test_no_gradient_reaches_teacher_logits():
    s, t, y = _batch()
    s.requires_grad_(True)
    t.requires_grad_(True)
    distillation_loss(s, t, y).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, name", [
    (dict(temperature=0.0), "temperature"), (dict(temperature=-2.0), "temperature"),
    (dict(alpha=-0.1), "alpha"), (dict(alpha=1.5), "alpha"), (dict(alpha=float("nan")), "alpha"),
])
def test_loss_rejects_bad_hyperparameters(kwargs, name):
    s, t, y = _batch()
    with pytest.raises(ValueError, match=name):
        distillation_loss(s, t, y, **kwargs)


def test_loss_rejects_mismatched_shapes():
    s, t, y = _batch()
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, t[:, :4], y)
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(s, t, y[:3])
    with pytest.raises(ValueError, match="student_logits"):
        distillation_loss(s[0], t[0], y[:1])


# --- hard_label_loss ----------------------------------------------------------------------------

def test_hard_label_loss_is_cross_entropy_on_teacher_argmax():
    s, t, y = _batch()
    assert torch.allclose(hard_label_loss(s, t, y, alpha=1.0), F.cross_entropy(s, t.argmax(1)))
    mixed = 0.6 * F.cross_entropy(s, t.argmax(1)) + 0.4 * F.cross_entropy(s, y)
    assert torch.allclose(hard_label_loss(s, t, y, alpha=0.6), mixed)
    # the teacher's confidence does not matter, only its decision
    assert torch.allclose(hard_label_loss(s, t * 10, y), hard_label_loss(s, t, y))


def test_hard_label_loss_errors():
    s, t, y = _batch()
    with pytest.raises(ValueError, match="alpha"):
        hard_label_loss(s, t, y, alpha=2.0)
    with pytest.raises(ValueError, match="labels"):
        hard_label_loss(s, t, y[:-1])


# --- distillation_step and distill --------------------------------------------------------------

def _models(seed=0):
    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    student = nn.Sequential(nn.Linear(8, 3))
    return teacher, student


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _identical(model, snapshot):
    return all(torch.equal(v, snapshot[k]) for k, v in model.state_dict().items())


def test_distillation_step_matches_manual_step():
    teacher, student = _models()
    reference = nn.Sequential(nn.Linear(8, 3))
    reference.load_state_dict(student.state_dict())
    x, y = torch.randn(10, 8), torch.randint(0, 3, (10,))
    teacher_before = _snapshot(teacher)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    loss = distillation_step(student, teacher, x, y, opt, temperature=2.0, alpha=0.5)
    # manual reference with PyTorch's own ops: teacher in eval mode (dropout off, BN running stats)
    teacher.eval()
    with torch.no_grad():
        t = teacher(x)
    s = reference(x)
    manual = 0.5 * 4.0 * F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean") \
        + 0.5 * F.cross_entropy(s, y)
    manual.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    assert isinstance(loss, float) and loss == pytest.approx(manual.item(), rel=1e-5)
    for p, q in zip(student.parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert _identical(teacher, teacher_before) and not teacher.training and student.training


def test_distillation_step_clears_stale_gradients_and_checks_its_models():
    teacher, student = _models()
    fresh = nn.Sequential(nn.Linear(8, 3))
    fresh.load_state_dict(student.state_dict())
    x, y = torch.randn(10, 8), torch.randint(0, 3, (10,))
    for p in student.parameters():  # gradients left from an earlier step must not enter this one
        p.grad = torch.randn(p.shape)
    distillation_step(student, teacher, x, y, torch.optim.SGD(student.parameters(), lr=0.1))
    distillation_step(fresh, teacher, x, y, torch.optim.SGD(fresh.parameters(), lr=0.1))
    assert all(torch.equal(p, q) for p, q in zip(student.parameters(), fresh.parameters()))
    with pytest.raises(TypeError, match="teacher"):
        distillation_step(student, lambda inputs: inputs, x, y, torch.optim.SGD(student.parameters(), lr=0.1))


def _blobs(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 8, generator=g) * 2
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorDataset(centres[y] + torch.randn(n, 8, generator=g), y)


def test_distill_returns_a_distilled_copy_and_leaves_both_models_untouched():
    data = _blobs()
    loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    teacher, student = _models()
    train(teacher, loader, 5, lr=1e-2, progress=False, device="cpu")
    teacher.zero_grad(set_to_none=True)
    teacher_before, student_before = _snapshot(teacher), _snapshot(student)
    teacher.train()  # distill runs a copy of it in eval mode; the argument keeps its mode
    before = evaluate(student, DataLoader(data, batch_size=100))
    for hard in (False, True):
        result = distill(student, teacher, loader, epochs=3, hard=hard, lr=1e-2, progress=False, device="cpu")
        assert isinstance(result, Trained) and len(result.history.loss) == 3 and not result.model.training
        assert _identical(teacher, teacher_before) and teacher.training
        assert _identical(student, student_before)
        assert all(p.grad is None for p in teacher.parameters())
        assert evaluate(result.model, DataLoader(data, batch_size=100)) > max(before, 0.8)


def test_distill_errors():
    teacher, student = _models()
    loader = DataLoader(_blobs(20), batch_size=10)
    with pytest.raises(ValueError, match="temperature"):
        distill(student, teacher, loader, epochs=1, temperature=0)
    with pytest.raises(ValueError, match=r"alpha must be a finite number in \[0, 1\] \(the weight of the soft term\)"):
        distill(student, teacher, loader, epochs=1, alpha=-1)
    with pytest.raises(TypeError, match="hard must be True or False, got 'yes'"):
        distill(student, teacher, loader, epochs=1, hard="yes")
    with pytest.raises(ValueError, match="loss_fn"):
        distill(student, teacher, loader, epochs=1, loss_fn=lambda m, x, y: 0)
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        distill(student, "teacher", loader, epochs=1)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        distill(student, teacher, loader, epochs=True)


# --- omitted-class helpers (an identity "model" makes the logits the inputs themselves) -----------

def test_without_class_and_class_accuracy_hand_worked():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, 1])
    data = TensorDataset(logits, labels)
    kept = without_class(data, 2)
    assert kept.tensors[1].tolist() == [0, 1] and torch.equal(kept.tensors[0], logits[[0, 3]])
    assert class_accuracy(nn.Identity(), data, 2) == pytest.approx(0.5)  # one of the two 2s is predicted 2
    assert class_accuracy(nn.Identity(), data, 1) == 0.0
    with pytest.raises(ValueError, match="label"):
        without_class(data, 7)
    with pytest.raises(ValueError, match="label"):
        class_accuracy(nn.Identity(), data, 7)


def test_best_bias_shift_finds_smallest_shift_that_recovers_the_class():
    # class 1 is under-rated by 1.2 logits on its own examples; the others win by 3
    logits = torch.tensor([[0.0, -1.2, -5.0]] * 4 + [[3.0, 0.0, -5.0]] * 4 + [[-5.0, -5.0, 0.0]] * 2)
    labels = torch.tensor([1] * 4 + [0] * 4 + [2] * 2)
    loader = DataLoader(TensorDataset(logits, labels), batch_size=3)
    assert best_bias_shift(nn.Identity(), loader, 1) == 1.5   # first of 0, 0.5, ... above 1.2, below 3
    assert best_bias_shift(nn.Identity(), loader, 1, shifts=(0.0, 2.0, 1.3)) == 2.0
    assert best_bias_shift(nn.Identity(), loader, 2) == 0.0
    with pytest.raises(ValueError, match="shifts"):
        best_bias_shift(nn.Identity(), loader, 1, shifts=())


# --- unlabeled examples (a transfer set) ---------------------------------------------------------

def test_unlabeled_examples_get_the_soft_term_only():
    s, t, y = _batch(n=6)
    y_few = y.clone()
    y_few[[1, 3, 4]] = UNLABELED
    temperature, alpha = 2.0, 0.3
    kl = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
    # the cross-entropy of the three labeled examples, summed, divided by the batch size (6)
    ce = sum(-F.log_softmax(s[i], 0)[y[i]] for i in (0, 2, 5)) / 6
    expected = alpha * temperature ** 2 * kl + (1 - alpha) * ce
    assert torch.allclose(distillation_loss(s, t, y_few, temperature, alpha), expected, atol=1e-6)
    hard = 0.4 * F.cross_entropy(s, t.argmax(1)) + 0.6 * ce
    assert torch.allclose(hard_label_loss(s, t, y_few, alpha=0.4), hard, atol=1e-6)
    none = torch.full_like(y, UNLABELED)  # a batch without labels: the soft term alone, no NaN
    assert torch.allclose(distillation_loss(s, t, none, temperature, alpha), alpha * temperature ** 2 * kl, atol=1e-6)


def test_with_few_labels_is_stratified_seeded_and_shares_the_images():
    labels = torch.arange(10).repeat_interleave(torch.tensor([30, 30, 30, 30, 30, 30, 30, 30, 30, 60]))
    images = torch.randn(len(labels), 1, 2, 2)
    data = TensorDataset(images, labels)
    few = with_few_labels(data, 0.1, seed=3)
    kept = few.tensors[1] != UNLABELED
    assert kept.sum() == round(0.1 * 330) == 33
    assert torch.equal(few.tensors[1][kept], labels[kept]) and few.tensors[0] is images
    counts = torch.bincount(labels[kept], minlength=10)
    assert counts[:9].tolist() == [3] * 9 and counts[9] == 6  # proportional to the class counts
    assert torch.equal(with_few_labels(data, 0.1, seed=3).tensors[1], few.tensors[1])
    assert not torch.equal(with_few_labels(data, 0.1, seed=4).tensors[1], few.tensors[1])
    sub = labeled(few)
    assert torch.equal(sub.tensors[0], images[kept]) and torch.equal(sub.tensors[1], labels[kept])
    assert torch.equal(with_few_labels(data, 1.0, seed=0).tensors[1], labels)


@pytest.mark.parametrize("fraction,error,words", [(0.0, ValueError, "fraction must be a finite number in (0, 1]"),
                                                  (1.5, ValueError, "fraction"), ("0.1", TypeError, "fraction"),
                                                  (0.001, ValueError, "keeps no label")])
def test_with_few_labels_errors(fraction, error, words):
    data = TensorDataset(torch.zeros(100, 1), torch.arange(100) % 10)
    with pytest.raises(error, match=re.escape(words)):
        with_few_labels(data, fraction, seed=0)


def test_few_label_helpers_reject_other_datasets():
    with pytest.raises(TypeError, match="dataset must be a TensorDataset"):
        with_few_labels([(torch.zeros(1), 0)], 0.5, seed=0)
    data = TensorDataset(torch.zeros(4, 1), torch.tensor([0, 1, UNLABELED, 1]))
    with pytest.raises(ValueError, match="already has unlabeled"):
        with_few_labels(data, 0.5, seed=0)
    with pytest.raises(ValueError, match="no labeled example"):
        labeled(TensorDataset(torch.zeros(2, 1), torch.full((2,), UNLABELED)))


def test_distill_learns_from_an_unlabeled_transfer_set():
    # 3 labels out of 300 are not enough to learn the blobs from the labels; the teacher's targets are
    images, labels = _blobs(600).tensors
    data, test = TensorDataset(images[:300], labels[:300]), DataLoader(TensorDataset(images[300:], labels[300:]))
    loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    teacher, student = _models()
    train(teacher, loader, 5, lr=1e-2, progress=False, device="cpu")
    few = with_few_labels(data, 0.01, seed=0)
    transfer = DataLoader(few, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    result = distill(student, teacher, transfer, epochs=5, alpha=0.9, lr=1e-2, progress=False, device="cpu")
    assert evaluate(teacher, test) > 0.9 and evaluate(result.model, test) > 0.9


# --- the few-label experiment's loops ----------------------------------------------------------------

class Counting:
    """A loader that counts its passes (``iter`` calls) and records the labels of the batches it deals."""

    def __init__(self, loader):
        self.loader, self.passes, self.dealt = loader, 0, []

    def __iter__(self):
        self.passes += 1
        for inputs, labels in self.loader:
            self.dealt.append(labels.clone())
            yield inputs, labels

    def __len__(self):
        return len(self.loader)


def _loop_data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    labels[torch.rand(n, generator=g) < 0.3] = UNLABELED
    return TensorDataset(torch.randn(n, 8, generator=g), labels)


def test_distill_steps_is_exactly_that_many_steps_over_new_passes_of_the_loader():
    data = _loop_data()  # 20 examples in batches of 8, 8 and 4
    teacher, student = _models()
    manual = copy.deepcopy(student)
    optimizer, manual_optimizer = (torch.optim.Adam(m.parameters(), lr=0.01) for m in (student, manual))
    loader = Counting(DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3)))
    teacher_before = _snapshot(teacher)
    losses = distill_steps(student, teacher, loader, optimizer, 7, temperature=2.0, alpha=0.6)
    assert loader.passes == 3 and len(loader.dealt) == 7  # 3 + 3 + 1 batches: the third pass stops after one
    first, second = torch.cat(loader.dealt[:3]), torch.cat(loader.dealt[3:6])
    assert sorted(first.tolist()) == sorted(second.tolist()) == sorted(data.tensors[1].tolist())
    # the same seven batches, replayed with seven manual calls of distillation_step
    replay = DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3))
    batches = [b for _ in range(3) for b in replay][:7]
    assert all(torch.equal(b[1], dealt) for b, dealt in zip(batches, loader.dealt))
    expected = [distillation_step(manual, teacher, x, y, manual_optimizer, 2.0, 0.6) for x, y in batches]
    assert losses == expected and all(isinstance(v, float) for v in losses)
    assert all(torch.equal(p, q) for p, q in zip(student.parameters(), manual.parameters()))
    assert _identical(teacher, teacher_before)


def test_distill_steps_stops_within_a_pass_and_alpha_zero_is_cross_entropy():
    data = _loop_data()
    teacher, student = _models()
    loader = Counting(DataLoader(data, batch_size=8))
    reference = copy.deepcopy(student)
    losses = distill_steps(student, teacher, loader, torch.optim.SGD(student.parameters(), lr=0.1), 2, alpha=0.0)
    assert loader.passes == 1 and len(losses) == 2
    x, y = data.tensors[0][:8], data.tensors[1][:8]
    labeled_ce = F.cross_entropy(reference(x), y, ignore_index=UNLABELED, reduction="sum") / 8
    assert losses[0] == pytest.approx(labeled_ce.item(), rel=1e-6)


@pytest.mark.parametrize("steps, error, match", [(0, ValueError, "steps"), (-3, ValueError, "steps"),
                                                 (2.0, TypeError, "steps")])
def test_distill_steps_refuses_bad_steps(steps, error, match):
    teacher, student = _models()
    with pytest.raises(error, match=match):
        distill_steps(student, teacher, DataLoader(_loop_data(), batch_size=8),
                      torch.optim.SGD(student.parameters(), lr=0.1), steps)


def test_distill_steps_refuses_an_empty_loader():
    teacher, student = _models()
    empty = DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.int64)), batch_size=8)
    with pytest.raises(ValueError, match="loader must yield at least one batch, got an empty DataLoader"):
        distill_steps(student, teacher, empty, torch.optim.SGD(student.parameters(), lr=0.1), 3)


def _sweep_data(seed=0):
    data = _blobs(240, seed)
    images, labels = data.tensors
    train_set = TensorDataset(images[:120], labels[:120])
    return (DataLoader(train_set, batch_size=32, shuffle=True),
            Counting(DataLoader(TensorDataset(images[120:180], labels[120:180]), batch_size=30)),
            Counting(DataLoader(TensorDataset(images[180:], labels[180:]), batch_size=30)))


def test_temperature_sweep_chooses_on_validation_and_evaluates_the_test_split_once():
    teacher, student = _models()
    train_loader, val_loader, test_loader = _sweep_data()
    before = _snapshot(student)
    temperatures = [4.0, 1.0, 10.0]
    choice = temperature_sweep(student, teacher, train_loader, val_loader, test_loader, temperatures, steps=6,
                               alpha=0.9, lr=0.05, seed=5)
    assert isinstance(choice, TemperatureChoice) and _identical(student, before)
    assert val_loader.passes == 3 and test_loader.passes == 1
    # an independent replay: reseed, copy, Adam, that many manual steps, validation accuracy
    replayed, models = {}, {}
    for t in temperatures:
        torch.manual_seed(5)
        model = copy.deepcopy(student)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        batches = [b for _ in range(2) for b in train_loader][:6]  # 4 batches a pass
        for x, y in batches:
            distillation_step(model, teacher, x, y, optimizer, t, 0.9)
        replayed[t], models[t] = evaluate(model, val_loader.loader), model
    assert choice.val_accuracy == replayed
    best = max(sorted(temperatures), key=lambda t: replayed[t])  # the first maximum of increasing T: the lowest
    assert choice.temperature == best
    assert choice.test_accuracy == evaluate(models[best], test_loader.loader)


def test_temperature_sweep_breaks_ties_towards_the_lowest_temperature():
    teacher, student = _models()
    train_loader, val_loader, test_loader = _sweep_data(1)
    # alpha = 0: the temperature changes nothing, and every run starts from the same weights and random state
    choice = temperature_sweep(student, teacher, train_loader, val_loader, test_loader, [8.0, 2.0, 4.0], steps=4,
                               alpha=0.0, lr=0.05, seed=0)
    assert len(set(choice.val_accuracy.values())) == 1 and choice.temperature == 2.0
    assert list(choice.val_accuracy) == [8.0, 2.0, 4.0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"temperatures": []}, ValueError, "temperatures must list at least one"),
    ({"temperatures": "4"}, TypeError, "temperatures must be a list"),
    ({"temperatures": [2.0, -1.0]}, ValueError, "each of temperatures"),
    ({"steps": 0}, ValueError, "steps"),
    ({"lr": 0.0}, ValueError, "lr"),
])
def test_temperature_sweep_refuses_bad_arguments_before_training(kwargs, error, match):
    teacher, student = _models()
    train_loader, val_loader, test_loader = _sweep_data()
    arguments = {"temperatures": [1.0, 4.0], "steps": 3} | kwargs
    with pytest.raises(error, match=match):
        temperature_sweep(student, teacher, train_loader, val_loader, test_loader, arguments.pop("temperatures"),
                          **arguments)
    assert val_loader.passes == 0

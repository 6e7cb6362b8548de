"""Tests of course_lib.llm's pruning scores, N:M masks and language-model distillation loss, against hand-worked
cases, a brute-force sort per group, torch.nn.functional.kl_div and a float64 computation written out."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.llm import lm_distillation_loss, magnitude_scores, nm_mask, wanda_scores

# --- scores and masks ---------------------------------------------------------------------------------


def test_scores_by_hand():
    w = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert magnitude_scores(w).tolist() == [[1.0, 2.0], [3.0, 0.5]]
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # channel norms: 2 and 1
    assert wanda_scores(w, x.norm(dim=0)).tolist() == [[2.0, 2.0], [6.0, 0.5]]


def test_nm_mask_by_hand_with_ties_kept_at_the_lower_index():
    scores = torch.tensor([[1.0, 3.0, 2.0, 0.0, 5.0, 5.0, 1.0, 5.0]])
    assert nm_mask(scores, 2, 4).int().tolist() == [[0, 1, 1, 0, 1, 1, 0, 0]]
    assert nm_mask(torch.zeros(1, 4), 1, 4).int().tolist() == [[1, 0, 0, 0]]
    assert not nm_mask(scores, 0, 4).any() and nm_mask(scores, 4, 4).all()


@pytest.mark.parametrize("n, m", [(2, 4), (4, 8), (1, 2), (8, 16)])
def test_nm_mask_matches_a_brute_force_sort_per_group(n, m):
    g = torch.Generator().manual_seed(m)
    scores = torch.randint(0, 5, (6, 32), generator=g).float()  # many ties
    mask = nm_mask(scores, n, m)
    for r, row in enumerate(scores.tolist()):
        for start in range(0, 32, m):
            keep = sorted(range(start, start + m), key=lambda j: (-row[j], j))[:n]
            assert [j for j in range(start, start + m) if mask[r, j]] == sorted(keep)
    assert (mask.reshape(6, -1, m).sum(-1) == n).all()


def test_nm_mask_over_a_whole_row_is_wandas_per_output_unstructured_mask():
    scores = torch.rand(4, 10, generator=torch.Generator().manual_seed(0))
    mask = nm_mask(scores, 5, 10)
    for row, keep in zip(scores, mask):
        assert keep.sum() == 5 and row[keep].min() > row[~keep].max()


@pytest.mark.parametrize("call, error, match", [
    (lambda: nm_mask(torch.rand(2, 6), 2, 4), ValueError, r"m must divide the number of columns of scores \(6\)"),
    (lambda: nm_mask(torch.rand(2, 8), 5, 4), ValueError, r"n \(for m = 4\) must be an integer in \[0, 4\]"),
    (lambda: nm_mask(torch.rand(2, 8), 2, 4.0), TypeError, "m must be an integer"),
    (lambda: wanda_scores(torch.rand(2, 8), torch.rand(4)), ValueError, r"act_norm must be a \(8,\) tensor"),
    (lambda: wanda_scores(torch.rand(2, 8), -torch.rand(8)), ValueError, "act_norm must be a"),
    (lambda: magnitude_scores(torch.rand(8)), ValueError, "weight must be a non-empty 2-d"),
])
def test_pruning_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- lm_distillation_loss -----------------------------------------------------------------------------

def _logits(seed=0, shape=(2, 5, 7)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 2, torch.randn(*shape, generator=g) * 2


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_matches_kl_div_in_both_directions_with_ignored_positions(temperature):
    student, teacher = _logits()
    targets = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    targets[0, :2] = -100
    targets[1, 4] = -100
    log_q, log_p = F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1)
    keep = targets != -100
    forward = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)[keep].mean() * temperature ** 2
    reverse = F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)[keep].mean() * temperature ** 2
    assert torch.allclose(lm_distillation_loss(student, teacher, temperature, "forward", targets), forward)
    assert torch.allclose(lm_distillation_loss(student, teacher, temperature, "reverse", targets), reverse)
    assert not torch.allclose(forward, reverse)


def test_float64_by_hand():
    student = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    teacher = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
    t = 2.0

    def softmax(row):
        e = [math.exp(v / t) for v in row]
        return [v / sum(e) for v in e]

    forward = reverse = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        q, p = softmax(s_row), softmax(t_row)
        forward += sum(pk * math.log(pk / qk) for pk, qk in zip(p, q)) / 2 * t * t
        reverse += sum(qk * math.log(qk / pk) for pk, qk in zip(p, q)) / 2 * t * t
    assert lm_distillation_loss(student, teacher, t).item() == pytest.approx(forward, rel=1e-12)
    assert lm_distillation_loss(student, teacher, t, "reverse").item() == pytest.approx(reverse, rel=1e-12)
    assert lm_distillation_loss(student, teacher, t).dtype == torch.float64


def test_gradient_reaches_the_student_only_and_equal_logits_give_zero():
    student, teacher = (t.requires_grad_() for t in _logits(2))
    lm_distillation_loss(student, teacher, 2.0, "reverse").backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None
    assert lm_distillation_loss(teacher.detach(), teacher.detach(), 3.0).item() == pytest.approx(0.0, abs=1e-6)
    all_ignored = torch.full((2, 5), -1, dtype=torch.int64)
    assert lm_distillation_loss(*_logits(), targets=all_ignored, ignore_index=-1).item() == 0.0


@pytest.mark.parametrize("kwargs, error, match", [
    ({"direction": "both"}, ValueError, "direction must be one of 'forward', 'reverse'"),
    ({"temperature": 0.0}, ValueError, "temperature must be a finite number > 0"),
    ({"teacher_logits": torch.zeros(2, 5, 6)}, ValueError, "teacher_logits must have the shape of student_logits"),
    ({"targets": torch.zeros(2, 5)}, TypeError, r"targets must be an integer tensor of shape \(2, 5\)"),
    ({"targets": torch.zeros(2, 4, dtype=torch.int64)}, ValueError, "targets must be an integer tensor"),
])
def test_distillation_errors(kwargs, error, match):
    student, teacher = _logits()
    args = {"student_logits": student, "teacher_logits": teacher} | kwargs
    with pytest.raises(error, match=match):
        lm_distillation_loss(**args)

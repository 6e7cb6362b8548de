"""course_lib.training.recalibrate_batchnorm (shared by every technique; pruning needs it first): running
statistics against the batch means and unbiased variances
computed by hand, against torch.optim.swa_utils.update_bn, masks kept, the argument untouched, and errors."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, TensorDataset

from course_lib import pruning
from course_lib._validation import weight_parametrization
from course_lib.models import LeNet300100
from course_lib.pruning.unstructured import Mask
from course_lib.training import recalibrate_batchnorm


class Small(nn.Module):
    """Conv-BN2d-ReLU, then Linear-Dropout-BN1d-ReLU-Linear: two BatchNorms, one after a dropout."""

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv, self.bn2d = nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.fc, self.drop, self.bn1d = nn.Linear(3 * 4 * 4, 5), nn.Dropout(dropout), nn.BatchNorm1d(5)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        x = F.relu(self.bn2d(self.conv(x))).flatten(1)
        return self.out(F.relu(self.bn1d(self.drop(self.fc(x)))))


def _trained_looking(model, seed=0):
    """Give the BatchNorms non-trivial affine parameters and stale running statistics (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (model.bn2d, model.bn1d):
            bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=g))
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g))
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 2.0)
            bn.num_batches_tracked.fill_(1000)
    return model.eval()


def _batches(sizes=(8, 8, 5), seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 1, 4, 4, generator=g) * 2 + 1, torch.randint(0, 2, (n,), generator=g)) for n in sizes]


def _by_hand(model, batches):
    """Per BatchNorm: the mean over batches of each batch's per-channel mean and unbiased variance of its input,
    the input computed by hand with every BatchNorm normalizing by the batch's own (biased) statistics and
    dropout off."""
    def bn(x, layer, dims):
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + layer.eps)
        return y * layer.weight.view(shape) + layer.bias.view(shape), mean, x.var(dims, unbiased=True)

    stats = {"bn2d": [], "bn1d": []}
    with torch.no_grad():
        for x, _ in batches:
            h = model.conv(x)
            y, m, v = bn(h, model.bn2d, (0, 2, 3))
            stats["bn2d"].append((m, v))
            h = model.fc(F.relu(y).flatten(1))
            _, m, v = bn(h, model.bn1d, (0,))
            stats["bn1d"].append((m, v))
    return {name: (torch.stack([m for m, _ in s]).mean(0), torch.stack([v for _, v in s]).mean(0))
            for name, s in stats.items()}


def test_running_statistics_are_the_mean_over_batches_of_batch_mean_and_unbiased_variance():
    model = _trained_looking(Small())
    batches = _batches()
    recal = recalibrate_batchnorm(model, batches, batches=len(batches))
    expected = _by_hand(model, batches)
    for name, (mean, var) in expected.items():
        layer = getattr(recal, name)
        torch.testing.assert_close(layer.running_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(layer.running_var, var, rtol=1e-5, atol=1e-6)
        assert int(layer.num_batches_tracked) == len(batches)


def test_equals_update_bn_when_no_dropout_precedes_a_batchnorm():
    model = _trained_looking(Small(dropout=0.0))
    batches = _batches()
    reference = copy.deepcopy(model)
    update_bn([x for x, _ in batches], reference)  # PyTorch's own recalibration (for SWA), whole model in train mode
    recal = recalibrate_batchnorm(model, batches, batches=3)
    for name in ("bn2d", "bn1d"):
        torch.testing.assert_close(getattr(recal, name).running_mean, getattr(reference, name).running_mean)
        torch.testing.assert_close(getattr(recal, name).running_var, getattr(reference, name).running_var)


def test_dropout_stays_off_while_the_statistics_are_collected():
    with_dropout = _trained_looking(Small(dropout=0.9))
    without = copy.deepcopy(with_dropout)
    without.drop.p = 0.0
    batches = _batches()
    a = recalibrate_batchnorm(with_dropout, batches, batches=3)
    b = recalibrate_batchnorm(without, batches, batches=3)
    assert torch.equal(a.bn1d.running_var, b.bn1d.running_var)
    assert not a.drop.training


def test_returns_an_eval_copy_and_changes_only_the_statistics():
    model = _trained_looking(Small())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.bn1d.momentum = 0.3
    recal = recalibrate_batchnorm(model, _batches(), batches=2)
    assert recal is not model and not recal.training and not any(m.training for m in recal.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the argument is untouched
    assert model.bn1d.momentum == 0.3 and recal.bn1d.momentum == 0.3 and recal.bn2d.momentum == 0.1
    for k, v in recal.state_dict().items():
        stat = k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        assert stat or torch.equal(v, before[k]), k
        assert not stat or not torch.equal(v, before[k]), k


def test_uses_at_most_the_requested_batches_and_accepts_bare_tensors():
    model = _trained_looking(Small())
    batches = _batches(sizes=(8, 8, 8, 8))
    two = recalibrate_batchnorm(model, batches, batches=2)
    reference = _by_hand(model, batches[:2])
    torch.testing.assert_close(two.bn1d.running_var, reference["bn1d"][1], rtol=1e-5, atol=1e-6)
    bare = recalibrate_batchnorm(model, [x for x, _ in batches], batches=2)
    assert torch.equal(bare.bn2d.running_mean, two.bn2d.running_mean)
    many = recalibrate_batchnorm(model, batches, batches=100)  # the loader runs out first: all 4
    assert int(many.bn2d.num_batches_tracked) == 4


def test_a_pruned_model_keeps_its_masks_and_is_recalibrated_with_them():
    model = _trained_looking(Small(dropout=0.0))
    pruned = pruning.magnitude_prune(model, sparsity=0.6)
    batches = _batches()
    recal = recalibrate_batchnorm(pruned, batches, batches=3)
    assert all(weight_parametrization(m, Mask) is not None for m in (recal.fc, recal.conv))
    assert torch.equal(recal.fc.weight, pruned.fc.weight)
    expected = _by_hand(pruning.make_permanent(pruned), batches)
    torch.testing.assert_close(recal.bn1d.running_var, expected["bn1d"][1], rtol=1e-5, atol=1e-6)


def test_with_a_dataloader_on_the_course_teacher_shape():
    from course_lib.models import build_model

    model = build_model("teacher").eval()
    data = TensorDataset(torch.rand(20, 1, 28, 28), torch.zeros(20, dtype=torch.long))
    recal = recalibrate_batchnorm(model, DataLoader(data, batch_size=10), batches=2)
    assert int(recal.classifier[2].num_batches_tracked) == 2


def test_errors():
    model = _trained_looking(Small())
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        recalibrate_batchnorm("model", _batches(), batches=1)
    with pytest.raises(TypeError, match="batches"):
        recalibrate_batchnorm(model, _batches(), batches=1.5)
    with pytest.raises(ValueError, match="batches"):
        recalibrate_batchnorm(model, _batches(), batches=0)
    with pytest.raises(ValueError, match="BatchNorm layer that tracks running statistics.*LeNet300100"):
        recalibrate_batchnorm(LeNet300100(), _batches(), batches=1)
    with pytest.raises(ValueError, match="loader must yield at least one batch, got an empty list"):
        recalibrate_batchnorm(model, [], batches=1)
    with pytest.raises(TypeError, match=r"loader must be an iterable of batches such as a DataLoader, got None"):
        recalibrate_batchnorm(model, None, batches=1)

"""Tests of FitNets' hint distillation (course_lib.distillation.features) against independent references:
slices of nn.Sequential, hand-worked losses, the analytic gradient and PyTorch's own ops."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.distillation import HintRegressor, hint_loss, hint_train, intermediate
from course_lib.models import ConvNet


def _convnet(widths=(4, 8), hidden=8, seed=0):
    torch.manual_seed(seed)
    return ConvNet(widths, hidden, image_size=8)


def test_intermediate_is_the_output_of_the_named_layer():
    model = _convnet().eval()
    x = torch.randn(3, 1, 8, 8)
    # the reference: run the Sequential's first blocks by hand
    assert torch.allclose(intermediate(model, "features.3", x), model.features[:4](x))
    assert torch.allclose(intermediate(model, "features", x), model.features(x))
    assert torch.allclose(intermediate(model, "classifier.1", x), model.classifier[:2](model.features(x)))


def test_intermediate_stops_the_forward_pass_and_lets_gradients_through():
    model = _convnet().train()
    later_bn = model.features[5]
    before = later_bn.running_mean.clone()
    x = torch.randn(4, 1, 8, 8)
    out = intermediate(model, "features.3", x)
    assert torch.equal(later_bn.running_mean, before)  # the layers after the hint did not run
    out.sum().backward()
    assert model.features[0].weight.grad is not None and model.features[4].weight.grad is None
    assert not model.features[3]._forward_hooks  # the hook is removed


def test_intermediate_errors():
    model = _convnet()
    with pytest.raises(ValueError, match="layer must name submodules of the model"):
        intermediate(model, "features.99", torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="layer must be the name of a submodule"):
        intermediate(model, 3, torch.zeros(1, 1, 8, 8))
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(2, 2), nn.ReLU()  # spare is registered, never called

        def forward(self, x):
            return self.used(x)

    with pytest.raises(ValueError, match="layer 'spare' did not run"):
        intermediate(Unused(), "spare", torch.zeros(1, 2))


def test_hint_regressor_kernel_follows_fitnets_rule():
    r = HintRegressor((8, 7, 7), (32, 4, 4))
    assert isinstance(r.map, nn.Conv2d) and r.map.kernel_size == (4, 4) and r.map.padding == (0, 0)
    out = r(torch.randn(2, 8, 7, 7))
    assert out.shape == (2, 32, 4, 4) and (out >= 0).all()
    same = HintRegressor((16, 7, 7), (64, 7, 7), relu=False)
    assert same.map.kernel_size == (1, 1)
    x = torch.randn(2, 16, 7, 7)
    assert torch.allclose(same(x), F.conv2d(x, same.map.weight, same.map.bias))
    flat = HintRegressor((5,), (3,))
    assert isinstance(flat.map, nn.Linear) and flat(torch.randn(4, 5)).shape == (4, 3)


@pytest.mark.parametrize("guided,hint,words", [((8, 4, 4), (8, 7, 7), "at least as large"),
                                               ((8, 4, 5), (8, 4, 4), "square"),
                                               ((8, 4, 4), (8,), "both"), ((0,), (3,), "positive integers")])
def test_hint_regressor_errors(guided, hint, words):
    with pytest.raises(ValueError, match=words):
        HintRegressor(guided, hint)


@pytest.mark.parametrize("guided, hint", [((8.0,), (3,)), ((True,), (3,)), ((8, 4, 4), (8, "4", 4))])
def test_hint_regressor_rejects_shapes_of_the_wrong_type_with_a_type_error(guided, hint):
    """Before: a float or bool in a shape raised ValueError."""
    with pytest.raises(TypeError, match="guided_shape and hint_shape must hold integers"):
        HintRegressor(guided, hint)


def test_hint_loss_hand_worked():
    # two examples: differences (1, 2) and (0, -2): 0.5 * (1 + 4) and 0.5 * 4, mean over 2 examples = 2.25
    regressed = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    hint = torch.tensor([[0.0, 0.0], [3.0, 2.0]])
    assert hint_loss(regressed, hint).item() == pytest.approx(2.25)
    # against PyTorch's mse_loss: sum / (2 N)
    a, b = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    assert torch.allclose(hint_loss(a, b), F.mse_loss(a, b, reduction="sum") / (2 * 5))


def test_hint_loss_gradient_is_the_difference_over_n():
    regressed = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    hint = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    hint_loss(regressed, hint).backward()
    assert torch.allclose(regressed.grad, (regressed - hint).detach() / 4)
    assert hint.grad is None  # the teacher's hint is a target
    assert torch.autograd.gradcheck(lambda r: hint_loss(r, hint.detach()), (regressed.detach().requires_grad_(),))


def test_hint_loss_errors():
    with pytest.raises(ValueError, match="hint must have the shape"):
        hint_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="regressed must be a floating-point tensor"):
        hint_loss(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g))


def test_hint_train_trains_only_up_to_the_guided_layer():
    teacher, student = _convnet((8, 16), 16, seed=1).eval(), _convnet(seed=2)
    teacher_before, student_before = copy.deepcopy(teacher.state_dict()), copy.deepcopy(student.state_dict())
    loader = DataLoader(_data(), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    result = hint_train(student, teacher, loader, student_layer="features.3", teacher_layer="features.3",
                        epochs=8, lr=1e-2, progress=False, device="cpu")
    after = result.model.state_dict()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in student_before.items())
    changed = {k for k in after if not torch.equal(after[k], student_before[k])}
    assert changed and all(k.startswith(("features.0.", "features.1.")) for k in changed), changed
    assert "features.0.weight" in changed and not result.model.training
    assert result.history.loss[-1] < result.history.loss[0]


def test_hint_train_errors():
    teacher, student = _convnet((8, 16), 16), _convnet()
    loader = DataLoader(_data(8), batch_size=4)
    with pytest.raises(ValueError, match="student_layer must name submodules of the student"):
        hint_train(student, teacher, loader, student_layer="nope", teacher_layer="features.3", epochs=1)
    with pytest.raises(ValueError, match="teacher_layer must name submodules of the teacher"):
        hint_train(student, teacher, loader, student_layer="features.3", teacher_layer="nope", epochs=1)
    with pytest.raises(ValueError, match="loss_fn"):
        hint_train(student, teacher, loader, student_layer="features.3", teacher_layer="features.3", epochs=1,
                   loss_fn=None)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        hint_train(student, teacher, loader, student_layer="features.3", teacher_layer="features.3", epochs=1.5)
    # before: an empty loader stopped hint_train with a bare StopIteration while it probed the shapes
    with pytest.raises(ValueError, match="loader must yield at least one batch, got an empty DataLoader"):
        hint_train(student, teacher, DataLoader(_data(0), batch_size=4), student_layer="features.3",
                   teacher_layer="features.3", epochs=1)

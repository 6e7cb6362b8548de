"""course_lib.models: shapes for each data set, parameter counts from the layer formulas, errors."""
import pytest
import torch

from course_lib.models import ConvNet, LeNet5, LeNet300100, build_model


def conv(c_in, c_out, k, bias):
    return c_out * c_in * k * k + (c_out if bias else 0)


def linear(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.parametrize("dataset,shape", [("mnist5k", (1, 28, 28)), ("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
@pytest.mark.parametrize("name", ["teacher", "student"])
def test_cnn_pair_works_for_its_input(name, dataset, shape):
    model = build_model(name, dataset).eval()
    assert model(torch.rand(2, *shape)).shape == (2, 10)


def test_parameter_counts_follow_the_layer_formulas():
    def bn(c):
        return 2 * c

    def hidden(n_in, n):  # bias-free Linear, then BatchNorm1d
        return n_in * n + bn(n)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    teacher = (conv(1, 32, 3, False) + bn(32) + conv(32, 64, 3, False) + bn(64) + hidden(64 * 7 * 7, 256)
               + linear(256, 10))
    student = conv(1, 8, 3, False) + bn(8) + conv(8, 16, 3, False) + bn(16) + hidden(16 * 7 * 7, 32) + linear(32, 10)
    assert count(build_model("teacher")) == teacher
    assert count(build_model("student")) == student
    assert count(build_model("teacher")) >= 20 * count(build_model("student"))
    # CIFAR-10: 3 input channels and 8x8 feature maps after two pools (the article's 64*16*16 was wrong)
    assert count(build_model("teacher", "cifar10")) == (teacher + conv(3, 32, 3, False) - conv(1, 32, 3, False)
                                                        + 64 * (64 - 49) * 256)
    assert count(LeNet300100()) == linear(784, 300) + linear(300, 100) + linear(100, 10)
    assert count(LeNet5()) == conv(1, 20, 5, True) + conv(20, 50, 5, True) + linear(800, 500) + linear(500, 10)


def test_lenets_on_mnist_shapes():
    x = torch.rand(3, 1, 28, 28)
    assert build_model("lenet300")(x).shape == (3, 10)
    assert build_model("lenet5")(x).shape == (3, 10)


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        build_model("teacher", "svhn")
    with pytest.raises(ValueError, match="28x28"):
        build_model("lenet5", "cifar10")
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, 28, 28\), got \(2, 3, 32, 32\)"):
        build_model("teacher")(torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize("widths", [(8,), (8, 16), (8, 16, 32)])
def test_convnet_classifier_matches_its_pools(widths):
    # one width gets one 2x2 pool, two or more get two: the classifier must be sized for what the features give
    model = ConvNet(widths, 16)
    pools = sum(isinstance(m, torch.nn.MaxPool2d) for m in model.features)
    assert pools == min(len(widths), 2)
    side = 28 // 2 ** pools
    assert model.classifier[1].in_features == widths[-1] * side * side
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"widths": ()}, ValueError, "widths must hold at least one integer >= 1, got none"),
    ({"widths": (0,)}, ValueError, "widths entry must be an integer >= 1, got 0"),
    ({"widths": (8, True)}, TypeError, r"widths entry must be an integer >= 1, got True \(bool\)"),
    ({"widths": 8}, TypeError, r"widths must be a tuple of integers >= 1, got 8 \(int\)"),
    ({"hidden": "32"}, TypeError, r"hidden must be an integer >= 1, got '32' \(str\)"),
    ({"hidden": 0}, ValueError, "hidden must be an integer >= 1, got 0"),
    ({"dropout": 1.0}, ValueError, r"dropout must be a finite number in \[0, 1\)"),
])
def test_convnet_rejects_bad_arguments_with_the_package_errors(kwargs, error, message):
    """Before: a bool width raised ValueError, a string hidden failed inside nn.Linear."""
    with pytest.raises(error, match=message):
        ConvNet(**{"widths": (8,), "hidden": 16, **kwargs})

"""course_lib.metrics: counts against formulas, MACs against torch's FlopCounterMode and by hand, serialized size
against a real file. Latency is course_lib.timing's (tests/test_timing.py)."""
import copy

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib import metrics
from course_lib.models import build_model
from course_lib.pruning import magnitude_prune, prune_channels


def test_counts():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert metrics.count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))  # buffers are not parameters
    assert metrics.count_parameters(model) == 2 * 9 + 2 + 2


def test_random_images_have_the_shape_the_model_expects():
    class Sized(nn.Module):
        in_channels, image_size = 3, 16

        def forward(self, x):
            return x

    assert metrics.random_images(Sized(), 4).shape == (4, 3, 16, 16)
    assert metrics.random_images(nn.Sequential(nn.Conv2d(2, 4, 3))).shape == (1, 2, 28, 28)
    assert metrics.random_images(nn.Linear(784, 10), 2).shape == (2, 1, 28, 28)
    assert torch.equal(metrics.random_images(nn.ReLU(), seed=3), metrics.random_images(nn.ReLU(), seed=3))


def test_model_size_is_the_size_of_the_saved_file(tmp_path):
    model = nn.Linear(100, 50)
    # torch.save names the zip records after the file ("archive" for an in-memory buffer)
    torch.save(model.state_dict(), tmp_path / "archive.pt")
    assert metrics.model_size_bytes(model) == (tmp_path / "archive.pt").stat().st_size
    assert metrics.model_size_bytes(model) > 4 * (100 * 50 + 50)


def _flop_counter_macs(model, x):
    """Per-layer MACs from PyTorch's own counter, on a copy in eval mode: half its FLOPs (one multiply and one add
    per MAC), for one input. FlopCounterMode names each module by its path after the root's class name."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        copy.deepcopy(model).eval()(x[:1])
    flops, root = counter.get_flop_counts(), type(model).__name__
    return {name: sum(flops[f"{root}.{name}"].values()) // 2 for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d))}


@pytest.mark.parametrize("name", ["teacher", "lenet5", "lenet300"])
def test_layer_macs_equal_half_of_torch_flop_counter(name):
    model = build_model(name).eval()
    x = metrics.random_images(model)
    assert metrics.layer_macs(model) == _flop_counter_macs(model, x)


def test_layer_macs_of_the_teacher_by_hand_and_after_channel_pruning():
    teacher = build_model("teacher").eval()
    by_hand = {"features.0": 32 * 1 * 9 * 28 * 28, "features.4": 64 * 32 * 9 * 14 * 14,
               "classifier.1": 64 * 7 * 7 * 256, "classifier.5": 256 * 10}
    assert metrics.layer_macs(teacher) == by_hand
    assert metrics.layer_macs(teacher, torch.rand(5, 1, 28, 28)) == by_hand  # per input, whatever the batch
    slim = metrics.layer_macs(prune_channels(teacher, sparsity=0.5))
    assert slim["features.0"] * 2 == by_hand["features.0"]        # input is the image: (1 - r)
    assert slim["features.4"] * 4 == by_hand["features.4"]        # both sides cut: (1 - r)^2
    assert slim["classifier.1"] * 2 == by_hand["classifier.1"]    # its input columns: (1 - r)
    assert slim["classifier.5"] == by_hand["classifier.5"]


def test_layer_macs_counts_zeros_strides_groups_and_restores_modes():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, groups=2), nn.BatchNorm2d(8), nn.Flatten(),
                          nn.Linear(8 * 3 * 3, 5))
    model.train()
    model[1].eval()
    pruned = magnitude_prune(model, sparsity=0.9)
    expected = {"0": 8 * 2 * 9 * 3 * 3, "3": 72 * 5}
    assert metrics.layer_macs(model, torch.rand(2, 4, 7, 7)) == expected
    assert metrics.layer_macs(pruned, torch.rand(1, 4, 7, 7)) == expected  # zeros cost as much in a dense kernel
    assert expected == _flop_counter_macs(model, torch.rand(1, 4, 7, 7))
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
    with pytest.raises(TypeError, match="model"):
        metrics.layer_macs("net")
    with pytest.raises(TypeError, match="example_input"):
        metrics.layer_macs(model, [1, 2])

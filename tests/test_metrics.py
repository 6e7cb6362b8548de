"""course_lib.metrics: counts against formulas, serialized size against a real file, latency bookkeeping."""
import pytest
import torch
from torch import nn

from course_lib import metrics


def test_counts():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert metrics.count_parameters(model) == 4 * 3 + 3 + 3 * 2 + 2
    model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))  # buffers are not parameters
    assert metrics.count_parameters(model) == 2 * 9 + 2 + 2


def test_example_input_has_the_shape_the_model_expects():
    class Sized(nn.Module):
        in_channels, image_size = 3, 16

        def forward(self, x):
            return x

    assert metrics.example_input(Sized(), 4).shape == (4, 3, 16, 16)
    assert metrics.example_input(nn.Sequential(nn.Conv2d(2, 4, 3))).shape == (1, 2, 28, 28)
    assert metrics.example_input(nn.Linear(784, 10), 2).shape == (2, 1, 28, 28)
    assert torch.equal(metrics.example_input(nn.ReLU(), seed=3), metrics.example_input(nn.ReLU(), seed=3))


def test_model_size_is_the_size_of_the_saved_file(tmp_path):
    model = nn.Linear(100, 50)
    # torch.save names the zip records after the file ("archive" for an in-memory buffer)
    torch.save(model.state_dict(), tmp_path / "archive.pt")
    assert metrics.model_size_bytes(model) == (tmp_path / "archive.pt").stat().st_size
    assert metrics.model_size_bytes(model) > 4 * (100 * 50 + 50)


def test_compare_latency_runs_each_model_and_restores_threads():
    calls = {"a": 0, "b": 0}

    class Counting(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.lin = name, nn.Linear(8, 8)

        def forward(self, x):
            calls[self.name] += 1
            return self.lin(x)

    before = torch.get_num_threads()
    result = metrics.compare_latency({"a": Counting("a"), "b": Counting("b")}, torch.rand(4, 8),
                                     warmup=2, repeats=5, threads=1)
    assert calls == {"a": 7, "b": 7}
    assert torch.get_num_threads() == before
    lat = result["a"]
    assert lat.repeats == 5 and lat.threads == 1 and lat.batch_size == 4
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert metrics.speedup(result["a"], result["a"]) == 1.0
    assert "ms" in str(lat)


@pytest.mark.parametrize("kwargs,match,error", [({"repeats": 0}, "repeats", ValueError),
                                                ({"warmup": -1}, "warmup", ValueError),
                                                ({"threads": 0}, "threads", ValueError),
                                                ({"repeats": 2.5}, "repeats", TypeError)])
def test_latency_rejects_bad_arguments(kwargs, match, error):
    with pytest.raises(error, match=match):
        metrics.measure_latency(nn.Linear(2, 2), torch.rand(1, 2), **kwargs)
    with pytest.raises(TypeError, match=r"models\['a'\] must be a torch.nn.Module"):
        metrics.compare_latency({"a": "model"}, torch.rand(1, 2))

"""course_lib.training: seeding, the training loop with custom losses and hooks, evaluation."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.training import Trained, evaluate, fine_tune, model_device, pick_device, predict, set_seed, train


def toy_loader(n=256, seed=0, shuffle=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed))


def test_set_seed_repeats_random_draws():
    set_seed(7)
    a = torch.randn(3)
    set_seed(7)
    assert torch.equal(a, torch.randn(3))
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        set_seed(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        set_seed(1.0)


def test_train_learns_a_separable_problem_and_is_deterministic():
    results = []
    for _ in range(2):
        set_seed(0)
        model = nn.Linear(2, 2)
        history = train(model, toy_loader(), epochs=20, lr=0.05, progress=False, device="cpu")
        results.append(model.weight.detach().clone())
        assert history.loss[-1] < history.loss[0]
        assert evaluate(model, toy_loader()) > 0.95
    assert torch.equal(results[0], results[1])


def test_custom_loss_and_after_step_are_used():
    calls = {"loss": 0, "after": 0}

    def loss_fn(model, x, y):
        calls["loss"] += 1
        return F.cross_entropy(model(x), y)

    def after_step(model):
        calls["after"] += 1
        with torch.no_grad():
            model.weight[0, 0] = 0.0  # a "mask" that must hold after every step

    model = nn.Linear(2, 2)
    train(model, toy_loader(), epochs=2, loss_fn=loss_fn, after_step=after_step, progress=False)
    assert calls == {"loss": 16, "after": 16}
    assert model.weight[0, 0].item() == 0.0


def test_evaluate_matches_a_manual_count():
    model = nn.Linear(2, 2)
    loader = toy_loader(shuffle=False)
    x, y = loader.dataset.tensors
    with torch.no_grad():
        manual = (model(x).argmax(1) == y).float().mean().item()
    assert evaluate(model, loader) == pytest.approx(manual)
    logits, labels = predict(model, loader)
    assert logits.shape == (256, 2) and torch.equal(labels, y)


def test_fine_tune_trains_a_copy():
    set_seed(0)
    model = nn.Linear(2, 2)
    before = model.weight.detach().clone()
    result = fine_tune(model, toy_loader(), epochs=2, lr=0.05, progress=False, device="cpu")
    assert isinstance(result, Trained) and result.model is not model and not result.model.training
    assert torch.equal(model.weight, before) and not torch.equal(result.model.weight, before)
    assert len(result.history.loss) == 2
    with pytest.raises(AttributeError):
        result.model = model  # a frozen dataclass


def test_bad_arguments():
    with pytest.raises(ValueError, match="epochs must be an integer >= 0, got -1"):
        train(nn.Linear(2, 2), toy_loader(), epochs=-1)
    with pytest.raises(TypeError, match="epochs must be an integer"):
        train(nn.Linear(2, 2), toy_loader(), epochs=True)
    with pytest.raises(ValueError, match="schedule must be one of None, 'cosine'"):
        train(nn.Linear(2, 2), toy_loader(), epochs=1, schedule="linear")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        train(nn.Linear(2, 2), toy_loader(), epochs=1, lr=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train("linear", toy_loader(), epochs=1)


def test_pick_device_prefers_what_is_asked_then_cuda_then_mps_then_cpu(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("meta") == torch.device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")


def test_model_device_is_the_first_parameters_device():
    assert model_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert model_device(nn.ReLU()) == torch.device("cpu")

"""course_lib.training: seeding, the training loop with custom losses and hooks, optimizers, evaluation."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.training import (
    Trained,
    evaluate,
    evaluating,
    fine_tune,
    model_device,
    pick_device,
    predict,
    set_seed,
    train,
)


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


def test_an_optimizer_of_the_argument_is_refused_by_a_verb_that_trains_a_copy():
    """Before: fine_tune trained its copy with an optimizer over the argument's parameters: nothing moved."""
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"optimizer must update parameters of the model being trained, got an "
                                         r"optimizer over 2 other tensor\(s\).*optimizer=lambda params"):
        fine_tune(model, toy_loader(), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.5))


def test_an_optimizer_factory_trains_the_copy_like_the_same_optimizer_built_by_hand():
    set_seed(0)
    model = nn.Linear(2, 2)
    loader = toy_loader(shuffle=False)
    result = fine_tune(model, loader, epochs=2, optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
                       schedule=None, progress=False)
    by_hand = copy.deepcopy(model)
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.5)
    for _ in range(2):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(by_hand(x), y).backward()
            optimizer.step()
    assert torch.allclose(result.model.weight, by_hand.weight, atol=1e-6)
    assert not torch.equal(result.model.weight, model.weight)
    own = torch.optim.SGD(model.parameters(), lr=0.5)  # train (in place) takes an optimizer over the model itself
    train(model, toy_loader(), 1, optimizer=own, progress=False)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer, a factory params -> Optimizer, "
                                        "or None, got a factory that returned list"):
        train(model, toy_loader(), 1, optimizer=lambda params: list(params))
    with pytest.raises(TypeError, match="optimizer must be .*, got 'sgd' \\(str\\)"):
        train(model, toy_loader(), 1, optimizer="sgd")


def test_an_empty_loader_is_refused_instead_of_reporting_a_loss_of_zero():
    """Before: an empty loader gave History(loss=[0.0]) and loader=None a len() TypeError from Python."""
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), batch_size=4)
    for call in (lambda dl: train(nn.Linear(2, 2), dl, 1), lambda dl: fine_tune(nn.Linear(2, 2), dl, epochs=1),
                 lambda dl: evaluate(nn.Linear(2, 2), dl)):
        with pytest.raises(ValueError, match="loader must yield at least one batch, got an empty DataLoader"):
            call(empty)
        with pytest.raises(TypeError, match=r"loader must be an iterable of batches such as a DataLoader, got None"):
            call(None)
    with pytest.raises(ValueError, match="loader must yield at least one batch, got none"):
        train(nn.Linear(2, 2), iter([]), 1, schedule=None)  # no length: found out while iterating


def test_bad_weight_decay_and_device_get_the_package_messages():
    """Before: weight_decay='x' failed inside AdamW, device='gpu' inside torch.device."""
    with pytest.raises(TypeError, match="weight_decay must be a finite number >= 0, got 'x' \\(str\\)"):
        fine_tune(nn.Linear(2, 2), toy_loader(), epochs=1, weight_decay="x")
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got -1.0"):
        train(nn.Linear(2, 2), toy_loader(), 1, weight_decay=-1)
    with pytest.raises(ValueError, match="device must be a device name such as 'cpu', 'cuda', 'cuda:1' or 'mps', a "
                                         "torch.device or None, got 'gpu'"):
        fine_tune(nn.Linear(2, 2), toy_loader(), epochs=1, device="gpu")
    with pytest.raises(TypeError, match="device must be .*, got 0 \\(int\\)"):
        pick_device(0)


def test_evaluate_restores_every_module_mode():
    """Before: predict left its model (every submodule) in eval mode."""
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    model[1].eval()
    modes = [m.training for m in model.modules()]
    evaluate(model, toy_loader())
    assert [m.training for m in model.modules()] == modes
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        assert not any(m.training for m in model.modules())
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == modes

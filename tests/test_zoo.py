"""course_lib.zoo: trained once, cached by recipe, corrupt files retrained."""
import random

import numpy as np
import pytest
import torch

from course_lib import zoo
from course_lib.training import set_seed


@pytest.fixture
def tiny_recipe(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path))
    monkeypatch.setitem(zoo.RECIPES, "student", zoo.Recipe("student", epochs=1, augment=0))
    return tmp_path


def test_first_call_trains_and_caches_later_calls_load(tiny_recipe, monkeypatch):
    model = zoo.get_model("student")
    files = list(tiny_recipe.glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("student-mnist5k-s0-")
    monkeypatch.setattr(zoo, "train_reference", lambda *a, **k: pytest.fail("retrained a cached model"))
    again = zoo.get_model("student")
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not again.training


def test_training_is_deterministic(tiny_recipe):
    a = zoo.get_model("student", cache=False)
    b = zoo.get_model("student", cache=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_random_state_after_get_model_is_the_same_with_a_cold_or_warm_cache(tiny_recipe):
    def draws_after_get_model():
        set_seed(123)
        zoo.get_model("student")
        return random.random(), np.random.rand(), torch.rand(3)

    cold = draws_after_get_model()  # trains, drawing many random numbers of its own
    warm = draws_after_get_model()  # loads the cached file
    assert cold[0] == warm[0] and cold[1] == warm[1] and torch.equal(cold[2], warm[2])
    set_seed(123)
    zoo.build_model("student")  # what both consume: the initial weights of one model
    assert torch.equal(torch.rand(3), cold[2])


def test_corrupt_cache_file_is_retrained(tiny_recipe):
    zoo.get_model("student")
    path = next(tiny_recipe.glob("*.pt"))
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable"):
        model = zoo.get_model("student")
    assert sum(p.numel() for p in model.parameters()) > 0
    torch.load(path, weights_only=True)  # rewritten with a valid file


def test_recipe_key_changes_with_any_setting():
    base = zoo.Recipe("teacher")
    assert base.key(0) != zoo.Recipe("teacher", epochs=13).key(0) != base.key(1)
    assert base.key(0) == zoo.Recipe("teacher").key(0)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown reference model 'resnet'"):
        zoo.get_model("resnet")

"""Reference models trained once, deterministically, and cached on disk.

A chapter or exercise asks ``get_model("teacher")`` and gets the same trained weights every time:
the first call trains them (seeded, on the CPU unless told otherwise), later calls load the cached
file. The cache file name carries a hash of the full training recipe, so changing a recipe never
loads stale weights. A cache file that cannot be read is retrained, with a warning, not fatal.

The cache folder is ``$COURSE_LIB_CACHE`` if set, else ``~/.cache/course_lib``.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import load_dataset, make_loaders
from .models import build_model
from .training import set_seed, train


@dataclass(frozen=True)
class Recipe:
    """How a reference model is trained: model and data set names, and the optimisation settings."""

    model: str
    dataset: str = "mnist5k"
    epochs: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    augment: int = 2

    def key(self, seed: int) -> str:
        text = json.dumps({**asdict(self), "seed": seed, "format": 1}, sort_keys=True)
        return f"{self.model}-{self.dataset}-s{seed}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


RECIPES = {
    "teacher": Recipe("teacher"),
    "student": Recipe("student"),
    "lenet300": Recipe("lenet300", augment=0, epochs=15),
    "lenet5": Recipe("lenet5", epochs=12),
}


def cache_dir() -> Path:
    """Folder of cached models: ``$COURSE_LIB_CACHE`` or ``~/.cache/course_lib``."""
    return Path(os.environ.get("COURSE_LIB_CACHE", Path.home() / ".cache" / "course_lib"))


def train_reference(recipe: Recipe, seed: int = 0, progress: bool | None = False) -> nn.Module:
    """Train ``recipe``'s model from scratch with ``seed`` on the CPU (deterministic) and return it."""
    set_seed(seed)
    splits = load_dataset(recipe.dataset)
    loaders = make_loaders(splits, batch_size=recipe.batch_size, seed=seed)
    model = build_model(recipe.model, recipe.dataset)
    train(model, loaders.train, recipe.epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
          augment=recipe.augment, device="cpu", progress=progress)
    return model.eval()


@contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and PyTorch's (CPU and CUDA) random state on exit, so that training a
    reference model does not change the random numbers its caller draws next: a notebook gives the same
    results whether the model came from the cache or was trained on the spot."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def get_model(name: str, seed: int = 0, cache: bool = True, progress: bool | None = False) -> nn.Module:
    """A trained reference model (``teacher``, ``student``, ``lenet300``, ``lenet5``) on MNIST-5k, in eval mode on the CPU.

    Trained with ``seed`` on first use and cached; with ``cache=False`` it is always retrained. Either way
    the caller's random state advances exactly as for building one untrained model (training draws from a
    saved and restored state), so a notebook gives the same results with a cold or a warm cache.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    path = cache_dir() / f"{recipe.key(seed)}.pt"
    model = build_model(recipe.model, recipe.dataset)  # draws from the caller's generator, cached or not
    if cache and path.exists():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception as e:  # any unreadable or mismatched file is retrained
            warnings.warn(f"cached model {path} is unreadable ({e.__class__.__name__}); retraining it")
    with _random_state_kept():
        model = train_reference(recipe, seed, progress)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model

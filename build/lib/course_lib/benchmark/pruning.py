"""Benchmark section ``pruning``: the zoo teacher pruned on MNIST-5k, then fine-tuned with the masks in force.

Reported (accuracies are fractions in ``[0, 1]`` on the test split, never used for tuning):

- ``dense_accuracy``: the zoo teacher ``get_model("teacher")``;
- ``magnitude`` and ``random``: sparsity (``"0.5"``, ``"0.8"``, ``"0.9"``, ``"0.95"``) -> mean test accuracy
  over ``seeds`` fine-tuning runs after global magnitude pruning (:func:`global_magnitude_prune`) or
  random pruning (:func:`random_prune`, the article's baseline); ``*_per_seed`` lists each run;
  the seed sets the fine-tuning batches, augmentation and the random mask;
- ``channel``: ``ratio`` of each convolution's channels removed by :func:`prune_channels` (filter
  l1 norm), then fine-tuned: ``accuracy`` (mean over seeds), ``params_ratio`` (pruned / dense parameter
  count) and ``latency_speedup`` (dense / pruned median latency);
- ``unstructured_latency_speedup``: dense / 90%-sparse (masks folded into the dense weights)
  median latency: zeros in a dense kernel cost as much as any other value;
- ``sparse_bytes``: the 90%-sparse model in CSR and bitmask formats (:func:`sparse_model_bytes`) and
  ``dense``, the raw bytes of the dense model's tensors.

Latencies come from one :func:`compare_latency` call (same run, same batch of 64 test images).
The fine-tuning recipe (``FINETUNE_EPOCHS`` epochs of AdamW at ``FINETUNE_LR``, cosine, the zoo's
augmentation and weight decay) and ``CHANNEL_RATIO`` are those chosen on the validation split in
the chapter ``book/code/pruning.ipynb``. ``quick=True`` fine-tunes on 256 training images with one
seed: it checks that the section runs, not the targets.
"""
from __future__ import annotations

import copy
import statistics

import torch
from torch import nn

from ..data import load_mnist5k, make_loaders
from ..metrics import compare_latency, count_parameters, speedup
from ..pruning import global_magnitude_prune, make_permanent, prune_channels, random_prune, sparse_model_bytes
from ..training import evaluate, set_seed, train
from ..zoo import RECIPES, get_model

SPARSITIES = ("0.5", "0.8", "0.9", "0.95")
FINETUNE_EPOCHS = 1
FINETUNE_LR = 1e-3
CHANNEL_RATIO = 0.5


def finetune(model: nn.Module, loader, epochs: int, seed: int) -> nn.Module:
    """The chapter's fine-tuning recipe, with the pruning masks (if any) kept in force; returns ``model``."""
    recipe = RECIPES["teacher"]
    train(model, loader, epochs, lr=FINETUNE_LR, weight_decay=recipe.weight_decay, augment=recipe.augment,
          device="cpu", progress=False, seed=seed)
    return model.eval()


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serialisable dict (accuracies as fractions in ``[0, 1]``)."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    splits = load_mnist5k()
    loaders = make_loaders(splits, batch_size=RECIPES["teacher"].batch_size)
    train_loader = loaders.train
    if quick:  # a few batches: the section runs end to end in seconds
        seeds = 1
        subset = torch.utils.data.Subset(splits.train, range(256))
        train_loader = torch.utils.data.DataLoader(subset, batch_size=64, shuffle=True,
                                                   generator=torch.Generator().manual_seed(0))
    teacher = get_model("teacher")
    dense_accuracy = evaluate(teacher, loaders.test)

    per_seed: dict[str, dict[str, list[float]]] = {"magnitude": {}, "random": {}}
    for s in SPARSITIES:
        for seed in range(seeds):
            set_seed(seed)
            pruned = global_magnitude_prune(copy.deepcopy(teacher), float(s))
            per_seed["magnitude"].setdefault(s, []).append(
                evaluate(finetune(pruned, train_loader, FINETUNE_EPOCHS, seed), loaders.test))
            pruned = random_prune(copy.deepcopy(teacher), float(s), generator=torch.Generator().manual_seed(seed))
            per_seed["random"].setdefault(s, []).append(
                evaluate(finetune(pruned, train_loader, FINETUNE_EPOCHS, seed), loaders.test))

    channel_accuracy = []
    for seed in range(seeds):
        small = finetune(prune_channels(teacher, CHANNEL_RATIO), train_loader, FINETUNE_EPOCHS, seed)
        channel_accuracy.append(evaluate(small, loaders.test))

    unstructured = make_permanent(global_magnitude_prune(copy.deepcopy(teacher), 0.9))
    latency = compare_latency({"dense": teacher, "unstructured_0.9": unstructured, "channel": small},
                              splits.test.tensors[0][:64], warmup=5, repeats=20 if quick else 100)
    return {
        "dense_accuracy": dense_accuracy,
        "magnitude": {s: statistics.fmean(v) for s, v in per_seed["magnitude"].items()},
        "random": {s: statistics.fmean(v) for s, v in per_seed["random"].items()},
        "magnitude_per_seed": per_seed["magnitude"],
        "random_per_seed": per_seed["random"],
        "channel": {"ratio": CHANNEL_RATIO, "accuracy": statistics.fmean(channel_accuracy),
                    "accuracy_per_seed": channel_accuracy,
                    "params_ratio": count_parameters(small) / count_parameters(teacher),
                    "latency_speedup": speedup(latency["dense"], latency["channel"])},
        "unstructured_latency_speedup": speedup(latency["dense"], latency["unstructured_0.9"]),
        "sparse_bytes": {"csr": sparse_model_bytes(unstructured, "csr"),
                         "bitmask": sparse_model_bytes(unstructured, "bitmask"),
                         "dense": sum(t.numel() * t.element_size() for t in teacher.state_dict().values())},
        "seeds": seeds,
        "finetune_epochs": FINETUNE_EPOCHS,
        "finetune_lr": FINETUNE_LR,
    }

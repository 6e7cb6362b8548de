"""Benchmark section ``pruning``: the zoo teacher pruned on MNIST-5k, then fine-tuned with the masks in force.

Reported (accuracies are fractions in ``[0, 1]`` on the test split, never used for tuning):

- ``dense_accuracy``: the zoo teacher ``get_model("teacher")``;
- ``magnitude`` and ``random``: sparsity (``"0.5"``, ``"0.8"``, ``"0.9"``, ``"0.95"``) -> mean test accuracy
  over ``seeds`` fine-tuning runs after global magnitude pruning (:func:`~course_lib.pruning.magnitude_prune`) or
  random pruning (:func:`~course_lib.pruning.random_prune`, the article's baseline); ``*_per_seed`` lists each
  run; the seed sets the fine-tuning batches, augmentation and the random mask;
- ``channel``: ``sparsity``, the fraction of each convolution's channels removed by
  :func:`~course_lib.pruning.prune_channels` (filter l1 norm), then fine-tuned: ``accuracy`` (mean over seeds),
  ``params_ratio`` (dense / pruned parameter count, > 1) and ``latency_speedup`` (dense / pruned median latency);
- ``unstructured_latency_speedup``: dense / :data:`SPARSE_SPARSITY`-sparse (masks folded into the dense
  weights) median latency: zeros in a dense kernel cost as much as any other value;
- ``sparse_bytes``: that sparse model in CSR and bitmask formats (:func:`~course_lib.pruning.sparse_model_bytes`),
  ``dense``, the raw bytes of the dense model's tensors, and ``sparsity``.

Latencies come from one :func:`~course_lib.metrics.compare_latency` call (same run, same batch of 64 test
images). The fine-tuning recipe (:func:`finetune`: :data:`FINETUNE_EPOCHS` epochs of AdamW at
:data:`FINETUNE_LR`, cosine, the zoo's augmentation and weight decay) and :data:`CHANNEL_SPARSITY` are the
choices made on the validation split; the chapter ``book/code/pruning.ipynb`` imports them from here, and its
validation scans print whether they still pick them.
``quick=True`` fine-tunes on :data:`QUICK_TRAIN_IMAGES` training images with one seed: it checks that the
section runs, not the targets.
"""
from __future__ import annotations

import statistics

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data import load_mnist5k, make_loaders
from ..metrics import compare_latency, count_parameters, speedup
from ..pruning import magnitude_prune, make_permanent, prune_channels, random_prune, sparse_model_bytes
from ..training import evaluate, fine_tune
from ..zoo import RECIPES, get_model

SPARSITIES = ("0.5", "0.8", "0.9", "0.95")
FINETUNE_EPOCHS = 1
FINETUNE_LR = 1e-3
CHANNEL_SPARSITY = 0.5
SPARSE_SPARSITY = 0.9  # the unstructured model whose sparse files and latency are measured
QUICK_TRAIN_IMAGES = 256


def finetune(model: nn.Module, loader: DataLoader, *, lr: float = FINETUNE_LR, seed: int = 0) -> nn.Module:
    """The chapter's fine-tuning recipe on a copy of ``model`` (masks, if any, kept in force), in eval mode."""
    recipe = RECIPES["teacher"]
    return fine_tune(model, loader, epochs=FINETUNE_EPOCHS, lr=lr, weight_decay=recipe.weight_decay,
                     augment=recipe.augment, device="cpu", progress=False, seed=seed).model


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serialisable dict (accuracies as fractions in ``[0, 1]``)."""
    splits = load_mnist5k()
    loaders = make_loaders(splits, batch_size=RECIPES["teacher"].batch_size)
    train_loader = loaders.train
    if quick:  # a few batches: the section runs end to end in seconds
        seeds = 1
        subset = torch.utils.data.Subset(splits.train, range(QUICK_TRAIN_IMAGES))
        train_loader = DataLoader(subset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    teacher = get_model("teacher")
    dense_accuracy = evaluate(teacher, loaders.test)

    per_seed: dict[str, dict[str, list[float]]] = {"magnitude": {}, "random": {}}
    for s in SPARSITIES:
        for seed in range(seeds):
            pruned = magnitude_prune(teacher, sparsity=float(s))
            per_seed["magnitude"].setdefault(s, []).append(
                evaluate(finetune(pruned, train_loader, seed=seed), loaders.test))
            pruned = random_prune(teacher, sparsity=float(s), generator=torch.Generator().manual_seed(seed))
            per_seed["random"].setdefault(s, []).append(
                evaluate(finetune(pruned, train_loader, seed=seed), loaders.test))

    slim = prune_channels(teacher, sparsity=CHANNEL_SPARSITY)
    channel_models = [finetune(slim, train_loader, seed=seed) for seed in range(seeds)]
    channel_accuracy = [evaluate(m, loaders.test) for m in channel_models]

    unstructured = make_permanent(magnitude_prune(teacher, sparsity=SPARSE_SPARSITY))
    latency = compare_latency({"dense": teacher, "unstructured": unstructured, "channel": channel_models[0]},
                              splits.test.tensors[0][:64], warmup=5, repeats=20 if quick else 100)
    return {
        "dense_accuracy": dense_accuracy,
        "magnitude": {s: statistics.fmean(v) for s, v in per_seed["magnitude"].items()},
        "random": {s: statistics.fmean(v) for s, v in per_seed["random"].items()},
        "magnitude_per_seed": per_seed["magnitude"],
        "random_per_seed": per_seed["random"],
        "channel": {"sparsity": CHANNEL_SPARSITY, "accuracy": statistics.fmean(channel_accuracy),
                    "accuracy_per_seed": channel_accuracy,
                    "params_ratio": count_parameters(teacher) / count_parameters(slim),
                    "latency_speedup": speedup(latency["dense"], latency["channel"])},
        "unstructured_latency_speedup": speedup(latency["dense"], latency["unstructured"]),
        "sparse_bytes": {"sparsity": SPARSE_SPARSITY,
                         "csr": sparse_model_bytes(unstructured, format="csr"),
                         "bitmask": sparse_model_bytes(unstructured, format="bitmask"),
                         "dense": sum(t.numel() * t.element_size() for t in teacher.state_dict().values())},
        "seeds": seeds,
        "finetune_epochs": FINETUNE_EPOCHS,
        "finetune_lr": FINETUNE_LR,
    }

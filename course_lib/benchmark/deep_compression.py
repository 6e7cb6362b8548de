"""Benchmark section ``deep_compression``: Han et al.'s (2016) pipeline on LeNet-300-100 and LeNet-5, to a real file.

Each zoo model (``get_model("lenet300")``, ``get_model("lenet5")``, trained on MNIST-5k) goes through
:func:`course_lib.compression.pipeline.deep_compress` with the settings :data:`CONFIGS`: layer-wise
magnitude pruning at the paper's sparsities (Han et al., 2016, Table 2: LeNet-300-100 keeps 8% / 9% / 26%
of its fc weights, LeNet-5 66% / 12% / 8% / 19% of conv1, conv2, fc1, fc2) and fine-tuning, weight sharing
(8 bits for conv layers as in the paper; the fc width is the smallest that keeps validation accuracy within
half a point, :func:`choose_bits`), code-book fine-tuning, then offsets of the width that makes the file
smallest and Huffman coding (:func:`course_lib.compression.compress`).

Reported for LeNet-300-100 at the top level, and with the same keys under ``"lenet5"`` (accuracies are
fractions in ``[0, 1]`` on the test split, which is never used for a choice):

- ``dense_accuracy``: the zoo model;
- ``compressed_bytes_per_seed`` and ``compressed_accuracy_per_seed``: for each of ``seeds`` runs, the size of
  its file, ``len(compress(model))``, and the test accuracy of the model that file holds (entry ``i`` of
  both lists is the same run); seed ``s`` seeds the fine-tuning and the shuffling of the training batches
  (``make_loaders(splits, seed=s)``), so seed 0 is the chapter's run;
- ``compressed_bytes`` and ``compressed_accuracy``: the means of those two lists over the runs;
- ``dense_bytes``: float32 bytes of the dense model's parameters, $4 \\times$ parameter count;
- ``compression_ratio``: ``dense_bytes / compressed_bytes`` (the mean file), > 1;
- ``roundtrip_equal``: for every seed, ``decompress(compress(model))`` gives bit-identical logits
  (``torch.equal``) on the whole test split;
- ``bits``, ``index_bits``: the widths used (seed 0), ``layer_density``: kept fraction per layer.

The settings (epochs, learning rates, widths) were chosen on the validation split in the chapter
``book/code/deep_compression.ipynb``. The runs (each network, each seed) are independent and seeded: they run
side by side, one per core on one thread each (:func:`~course_lib.benchmark.cache.parallel_map`), so the figures
do not depend on the core count. ``quick=True`` fine-tunes on :data:`QUICK_TRAIN_IMAGES` training images for
one epoch with one seed: it checks that the section runs end to end, not the targets.
"""
from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Subset

from ..compression import compress, decompress
from ..compression.pipeline import Config, deep_compress, storage_bytes
from ..data import load_mnist5k, make_loaders
from ..pruning import layer_sparsities
from ..training import evaluate, predict
from ..zoo import get_model
from .cache import parallel_map

CONFIGS = {
    "lenet300": Config({"net.1": 0.92, "net.3": 0.91, "net.5": 0.74}, prune_epochs=10, share_epochs=2),
    "lenet5": Config({"features.0": 0.34, "features.3": 0.88, "classifier.1": 0.92, "classifier.3": 0.81},
                     prune_epochs=2, share_epochs=1),
}
QUICK_TRAIN_IMAGES = 256


def _train_loader(splits, seed: int, quick: bool) -> DataLoader:
    """The training loader of fine-tuning seed ``seed``: its shuffling is seeded too (256 images if ``quick``)."""
    if not quick:
        return make_loaders(splits, batch_size=64, seed=seed).train
    return DataLoader(Subset(splits.train, range(QUICK_TRAIN_IMAGES)), batch_size=64, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _runs(name: str, splits, seeds: int, quick: bool) -> list[Callable[[], dict]]:
    """One task per seed: zoo model ``name`` through :func:`deep_compress`, to its file; each returns the file's
    ``bytes``, the test ``accuracy`` of the model it holds, ``equal`` (the round trip's logits are identical),
    ``bits``, ``index_bits`` and ``layer_density``."""
    loaders, dense = make_loaders(splits, batch_size=64), get_model(name)
    config = CONFIGS[name]
    if quick:
        config = dataclasses.replace(config, prune_epochs=1, share_epochs=1)

    def one(seed: int) -> dict:
        result = deep_compress(dense, _train_loader(splits, seed, quick), loaders.val, loaders.test,
                               config=dataclasses.replace(config, seed=seed), device="cpu")
        data = compress(result.model, index_bits=result.index_bits)
        logits, _ = predict(result.model, loaders.test)
        return {"bytes": len(data), "accuracy": evaluate(result.model, loaders.test),
                "equal": torch.equal(logits, predict(decompress(data), loaders.test)[0]), "bits": result.bits,
                "index_bits": result.index_bits,
                "layer_density": {k: round(1 - v, 6) for k, v in layer_sparsities(result.model).items()}}

    return [lambda seed=seed: one(seed) for seed in range(seeds)]


def _figures(name: str, splits, runs: list[dict]) -> dict:
    """The section's figures for zoo model ``name`` from its :func:`_runs` results (seed order)."""
    dense = get_model(name)
    dense_bytes = storage_bytes(dense, coding="dense")
    sizes, accuracies = [r["bytes"] for r in runs], [r["accuracy"] for r in runs]
    return {
        "dense_accuracy": evaluate(dense, make_loaders(splits, batch_size=64).test),
        "compressed_accuracy": statistics.fmean(accuracies),
        "compressed_accuracy_per_seed": accuracies,
        "dense_bytes": dense_bytes,
        "compressed_bytes": statistics.fmean(sizes),
        "compressed_bytes_per_seed": sizes,
        "compression_ratio": dense_bytes / statistics.fmean(sizes),
        "roundtrip_equal": all(r["equal"] for r in runs),
        "bits": runs[0]["bits"],
        "index_bits": runs[0]["index_bits"],
        "layer_density": runs[0]["layer_density"],
    }


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serializable dict (see the module docstring for the keys)."""
    splits = load_mnist5k()
    if quick:  # a few batches: the section runs end to end in seconds
        seeds = 1
    names = ("lenet300", "lenet5")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the runs go side by side, one per core (parallel_map), on one thread each
    try:
        runs = parallel_map([task for name in names for task in _runs(name, splits, seeds, quick)])
        result, lenet5 = (_figures(name, splits, runs[i * seeds:(i + 1) * seeds]) for i, name in enumerate(names))
    finally:
        torch.set_num_threads(threads)
    result["lenet5"] = lenet5
    result["seeds"] = seeds
    return result

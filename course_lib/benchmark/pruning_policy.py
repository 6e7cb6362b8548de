"""Benchmark section ``pruning_policy``: per-layer sparsity and bit width chosen from measured sensitivity
(:func:`~course_lib.compression.choose_policy`) against uniform settings and global magnitude pruning at equal size.

On the zoo's teacher and LeNet-300-100, MNIST-5k; accuracies are fractions in ``[0, 1]``. The sensitivity scan and
every choice use the **validation** split (the teacher's metric recalibrates BatchNorm on
:data:`RECALIBRATION_BATCHES` training batches first: pruning shifts the statistics); the test split only reports.
Per model (``"teacher"``, ``"lenet300"``):

- ``scan``: ``reference`` (dense validation accuracy), ``sparsities`` and ``bits`` (the grid) and ``accuracy``:
  layer -> bits (a string key) -> one validation accuracy per sparsity, that layer alone pruned and quantized;
- ``weights``: layer -> its number of weights; ``dense``: the dense model's test accuracy;
- ``parameters``: the uniform sparsity that sets the budget (a string key, :data:`PARAMETER_BUDGETS`) ->
  ``budget`` (kept weights of uniform per-layer pruning at that sparsity) and, for each method of
  :data:`METHODS` (``uniform``: every layer at that sparsity; ``global``: one magnitude threshold, same sparsity;
  ``policy``: :func:`~course_lib.compression.choose_policy` within the budget), ``size`` (kept weights, counted on
  the fine-tuned model), ``layers`` (layer -> ``[sparsity, bits]``), ``no_finetune`` (test accuracy before
  fine-tuning; the teacher's with the dense model's BatchNorm statistics, stale), ``accuracy`` (mean over seeds
  after :func:`~course_lib.benchmark.pruning.finetune`, the pruning section's recipe, masks and quantizers in
  force) and ``accuracy_per_seed``;
- ``bytes``: the same for byte budgets, keyed ``"<sparsity>@<bits>"`` (:data:`BYTE_BUDGETS`): uniform is every
  layer at that sparsity and bit width, global the same bits after a global threshold; ``size`` in bytes of the
  policy's storage model (bitmask, codes, per-channel scales), counted from the fine-tuned model.

``seeds`` (at most :data:`SEEDS`, to keep the section within its time) and ``recalibration_batches`` sit at the
top level. ``quick=True`` fine-tunes on :data:`~course_lib.benchmark.pruning.QUICK_TRAIN_IMAGES` images for one
seed, one budget per unit and a coarse grid: it checks that the section runs, not the figures.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..compression import Policy, choose_policy, make_policy, policy_scan
from ..compression.policy import FLOAT_BITS, Scan
from ..data import load_mnist5k, make_loaders
from ..pruning import layer_sparsities, magnitude_prune, make_permanent
from ..training import evaluate, recalibrate_batchnorm
from ..zoo import get_model
from .cache import parallel_map
from .pruning import QUICK_TRAIN_IMAGES, finetune, train_loader

MODELS = ("teacher", "lenet300")
METHODS = ("uniform", "global", "policy")
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99)  # the scan's grid (0 is added)
BITS = (32, 8, 4, 2)
PARAMETER_BUDGETS = ("0.9", "0.95", "0.98")
BYTE_BUDGETS = (("0.9", 4), ("0.95", 2))
RECALIBRATION_BATCHES = 4
QUICK_SPARSITIES, QUICK_BITS = (0.5, 0.9), (32, 4)
SEEDS = 2  # at most: the section must stay within its time


def metric_for(model: nn.Module, train_set: Dataset) -> Callable[[nn.Module, DataLoader], float]:
    """The scan's metric: validation accuracy, after BatchNorm recalibration if ``model`` has BatchNorm."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return evaluate
    return lambda m, loader: evaluate(recalibrate_batchnorm(m, train_loader(train_set, 0),
                                                            batches=RECALIBRATION_BATCHES), loader)


def scan_entry(scan: Scan, sparsities: tuple[float, ...], bits: tuple[int, ...]) -> dict:
    """``scan`` as JSON: layer -> bits -> one accuracy per sparsity (0 first)."""
    grid = (0.0, *sparsities)
    return {"reference": scan.reference, "sparsities": list(grid), "bits": list(bits),
            "accuracy": {name: {str(b): [acc[(s, b)] for s in grid] for b in bits}
                         for name, acc in scan.accuracy.items()}}


def _baselines(model: nn.Module, sparsity: float, bits: int, unit: str) -> dict[str, Policy]:
    """Uniform and global at ``sparsity`` and ``bits``, written as policies (global: the per-layer sparsities its
    one threshold gave, which are the same masks layer by layer)."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    global_sparsity = layer_sparsities(magnitude_prune(model, sparsity=sparsity))
    return {"uniform": make_policy(model, settings=dict.fromkeys(names, (sparsity, bits)), unit=unit),
            "global": make_policy(model, settings={n: (global_sparsity[n], bits) for n in names}, unit=unit)}


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serializable dict (see the module docstring)."""
    splits = load_mnist5k()
    loaders = make_loaders(splits)
    train_set, sparsities, bits = splits.train, SPARSITIES, BITS
    parameter_budgets, byte_budgets = PARAMETER_BUDGETS, BYTE_BUDGETS
    seeds = min(seeds, SEEDS)
    if quick:
        seeds, train_set = 1, Subset(splits.train, range(QUICK_TRAIN_IMAGES))
        sparsities, bits, parameter_budgets, byte_budgets = QUICK_SPARSITIES, QUICK_BITS, ("0.9",), (("0.9", 4),)
    models = {name: get_model(name) for name in MODELS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the scans and fine-tunings run side by side, one per core, on one thread each
    try:
        layer_scans = [(name, layer) for name, model in models.items()
                       for layer, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        parts = parallel_map([lambda name=name, layer=layer: policy_scan(
            models[name], loaders.val, sparsities=sparsities, bits=bits, layers=[layer],
            metric=metric_for(models[name], splits.train)) for name, layer in layer_scans])
        scans = {name: Scan(next(p.reference for (n, _), p in zip(layer_scans, parts) if n == name),
                            {layer: p.accuracy[layer] for (n, layer), p in zip(layer_scans, parts) if n == name})
                 for name in models}
        policies: dict[tuple, Policy] = {}
        for name, model in models.items():
            for key, unit, s, b in ([(k, "parameters", float(k), FLOAT_BITS) for k in parameter_budgets]
                                    + [(f"{k}@{b}", "bytes", float(k), b) for k, b in byte_budgets]):
                baselines = _baselines(model, s, b, unit)
                policies.update({(name, unit, key, method): p for method, p in baselines.items()})
                policies[name, unit, key, "policy"] = choose_policy(
                    model, loaders.val, budget=baselines["uniform"].budget, unit=unit, sparsities=sparsities,
                    bits=bits, scan=scans[name])
        built = {key: p.apply(models[key[0]]) for key, p in policies.items()}
        runs = [(key, seed) for key in policies for seed in range(seeds)]
        tuned = parallel_map([lambda key=key, seed=seed: _tune(built[key], train_set, key[0], seed, loaders.test)
                              for key, seed in runs])
    finally:
        torch.set_num_threads(threads)
    result: dict = {"seeds": seeds, "recalibration_batches": RECALIBRATION_BATCHES}
    for name, model in models.items():
        entry: dict = {"scan": scan_entry(scans[name], sparsities, bits), "dense": evaluate(model, loaders.test),
                       "weights": {n: m.weight.numel() for n, m in model.named_modules()
                                   if isinstance(m, (nn.Linear, nn.Conv2d))}}
        for unit in ("parameters", "bytes"):
            entry[unit] = {}
            for (n, u, key, method), p in policies.items():
                if (n, u) != (name, unit):
                    continue
                done = [found for (k, _), found in zip(runs, tuned) if k == (n, u, key, method)]
                per_seed = [acc for acc, _ in done]
                counted = max(counted_size(model, p, kept) for _, kept in done)
                entry[unit].setdefault(key, {"budget": policies[n, u, key, "uniform"].budget})[method] = {
                    "size": counted, "layers": {layer: [c.sparsity, c.bits] for layer, c in p.layers.items()},
                    "no_finetune": evaluate(built[n, u, key, method], loaders.test),
                    "accuracy": statistics.fmean(per_seed), "accuracy_per_seed": per_seed}
        result[name] = entry
    return result


def _tune(model: nn.Module, train_set: Dataset, name: str, seed: int,
          test: DataLoader) -> tuple[float, dict[str, tuple[int, int]]]:
    """Test accuracy after fine-tuning, and the fine-tuned model's ``(kept, n)`` weights per layer."""
    tuned = make_permanent(finetune(model, train_set, name=name, seed=seed))
    return evaluate(tuned, test), {n: (int((m.weight != 0).sum()), m.weight.numel())
                                   for n, m in tuned.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def counted_size(model: nn.Module, policy: Policy, kept: dict[str, tuple[int, int]]) -> int:
    """The size in ``policy.unit`` of a model with ``kept[layer] = (non-zero, n)`` weights counted on it and the
    policy's bit widths: :func:`~course_lib.compression.make_policy` of the sparsities it really has."""
    settings = {name: ((n - k) / n, policy.layers[name].bits) for name, (k, n) in kept.items()}
    return make_policy(model, settings=settings, unit=policy.unit).size

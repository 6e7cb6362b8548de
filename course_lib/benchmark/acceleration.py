"""Benchmark section ``acceleration``: parallel, algorithmic and hardware speed-ups of the zoo teacher on this machine.

Reported (accuracies are fractions in ``[0, 1]`` on the test split; choices are made on the validation split):

- ``threads``: rows ``{threads, median_ms, speedup}``, the teacher at batch 64 (16 if quick) with 1 and 2
  intra-op threads;
- ``batching``: rows ``{batch_size, median_ms, samples_per_s, ms_per_sample}``, the teacher at each batch size;
- ``ddp``: ``workers`` DistributedDataParallel processes (gloo) against one process on the same global batches
  (``model``, ``epochs``, ``steps``, ``batch_size``, plain SGD ``lr``): ``max_param_diff``, the largest
  absolute difference between the two trained models' weights, and ``val_accuracy`` of the DDP model;
- ``fusion``: Conv-BatchNorm folding (:func:`~course_lib.acceleration.fold_batchnorm`): ``max_abs_diff`` of the
  test logits, ``speedup`` at ``batch_size`` 64 (16 if quick; ``speedup_batch1`` at batch 1), ``accuracy``,
  ``dense_accuracy``, ``params_ratio`` (teacher / folded parameters);
- ``low_rank``: truncated-SVD factorization (:func:`~course_lib.acceleration.factorize_linears`, no
  fine-tuning) of LeNet-300-100 (zoo ``lenet300``), a network whose work is all in Linear layers; ``rank``: the
  smallest candidate of :data:`RANKS` whose validation accuracy is within ``tolerance`` of the dense model's;
  ``accuracy`` and ``dense_accuracy`` (test), ``params_ratio`` (dense / factorized parameters), ``speedup`` at
  ``batch_size`` 64 (16 if quick), ``speedup_batch1`` at batch 1, ``curve``: rows ``{rank, val_accuracy, params}``;
- ``low_rank_teacher``: the same for the teacher's :data:`TEACHER_LOW_RANK_LAYERS` (3136 -> 256 holds 97% of its
  parameters but the convolutions do most of the arithmetic: Amdahl's law caps the gain);
- ``compile`` (full run only): ``torch.compile`` of the teacher at ``batch_size`` 64: ``ok``, ``compile_seconds``
  (compilation and first call), ``speedup`` against eager, or ``error``.

Speed-ups are ratios of median latencies measured side by side (:func:`course_lib.timing.compare_latency`)
with one intra-op thread (``threads: 1`` in each entry; ``batching`` too): on a machine shared with other jobs,
two threads waiting on each other at every operator swamp the difference between two models (the ``threads``
table measures that effect on purpose).
Nothing is trained with a random seed here except the DDP models (seeded initialization), so ``seeds`` is
accepted for the common interface and not used. ``quick=True`` uses fewer repeats, ranks and DDP steps and
skips ``compile``: it checks that the section runs, not the targets.
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..acceleration import (
    batch_throughput,
    ddp_train,
    factorize_linears,
    fold_batchnorm,
    max_param_diff,
    single_process_train,
    thread_latency,
    try_compile,
)
from ..data import load_mnist5k, make_loaders
from ..metrics import count_parameters
from ..models import build_model
from ..timing import compare_latency
from ..training import evaluate, predict, set_seed
from ..zoo import get_model

RANKS = (8, 16, 24, 32, 48, 64, 128)
TOLERANCE = 0.005  # validation accuracy may drop by at most half a point when choosing the rank
TEACHER_LOW_RANK_LAYERS = ("classifier.1",)  # the 3136 -> 256 layer; the 256 -> 10 one is too small to gain
QUICK_DDP_IMAGES = 512


def _ddp(quick: bool) -> dict[str, Any]:
    splits = load_mnist5k()
    if quick:
        name, lr, train_set = "lenet300", 0.05, TensorDataset(*(t[:QUICK_DDP_IMAGES] for t in splits.train.tensors))
    else:
        name, lr, train_set = "lenet5", 0.02, splits.train
    set_seed(0)
    model = build_model(name)
    workers, batch_size = 2, 64
    start = time.perf_counter()
    parallel = ddp_train(model, train_set, world_size=workers, batch_size=batch_size, epochs=1, lr=lr, seed=0)
    ddp_seconds = time.perf_counter() - start
    single = single_process_train(model, train_set, batch_size=batch_size, epochs=1, lr=lr, seed=0)
    return {"workers": workers, "model": name, "epochs": 1, "steps": len(train_set) // batch_size,
            "batch_size": batch_size, "lr": lr, "max_param_diff": max_param_diff(parallel, single),
            "val_accuracy": evaluate(parallel, make_loaders(splits).val), "seconds": round(ddp_seconds, 2)}


def _low_rank(model: torch.nn.Module, loaders, batch: int, repeats: int, quick: bool,
              layers: tuple[str, ...] | None) -> dict[str, Any]:
    """Factorize ``model``'s Linear layers at the smallest rank of :data:`RANKS` that keeps the validation
    accuracy within :data:`TOLERANCE`, and measure it against ``model`` side by side (one thread)."""
    dense_val = evaluate(model, loaders.val)
    curve, candidates = [], {}
    for rank in ((16, 32) if quick else RANKS):
        candidates[rank] = factorize_linears(model, rank=rank, layers=layers)
        curve.append({"rank": rank, "val_accuracy": evaluate(candidates[rank], loaders.val),
                      "params": count_parameters(candidates[rank])})
    good = [row["rank"] for row in curve if row["val_accuracy"] >= dense_val - TOLERANCE]
    rank = min(good) if good else max(candidates)
    low = candidates[rank]
    x1, xb = torch.rand(1, 1, 28, 28), torch.rand(batch, 1, 28, 28)
    latb = compare_latency({"dense": model, "low_rank": low}, xb, warmup=3, repeats=10 * repeats, threads=1)
    lat1 = compare_latency({"dense": model, "low_rank": low}, x1, warmup=10, repeats=10 * repeats, threads=1)
    return {"model": type(model).__name__, "rank": rank, "accuracy": evaluate(low, loaders.test),
            "dense_accuracy": evaluate(model, loaders.test), "dense_val_accuracy": dense_val,
            "tolerance": TOLERANCE, "params_ratio": count_parameters(model) / count_parameters(low),
            "speedup": latb["dense"].median_ms / latb["low_rank"].median_ms, "batch_size": batch,
            "speedup_batch1": lat1["dense"].median_ms / lat1["low_rank"].median_ms, "threads": 1, "curve": curve}


def run(quick: bool = False, seeds: int = 3) -> dict[str, Any]:
    """Measure the acceleration techniques (see the module docstring for the keys)."""
    set_seed(0)
    teacher = get_model("teacher")
    loaders = make_loaders(load_mnist5k(), batch_size=250)
    repeats = 5 if quick else 30
    batch = 16 if quick else 64
    x1, xb = torch.rand(1, 1, 28, 28), torch.rand(batch, 1, 28, 28)
    result: dict[str, Any] = {}

    result["threads"] = thread_latency(teacher, xb, threads=(1, 2), repeats=3 if quick else 50,
                                       warmup=2 if quick else 5)
    result["batching"] = batch_throughput(teacher, batch_sizes=(1, 16) if quick else (1, 4, 16, 64, 256),
                                          repeats=repeats, threads=1)

    fused = fold_batchnorm(teacher)
    logits, labels = predict(teacher, loaders.test)
    fused_logits, _ = predict(fused, loaders.test)
    latb = compare_latency({"dense": teacher, "fused": fused}, xb, warmup=3, repeats=repeats, threads=1)
    lat1 = compare_latency({"dense": teacher, "fused": fused}, x1, warmup=10, repeats=10 * repeats,
                           threads=1)
    dense_accuracy = (logits.argmax(1) == labels).float().mean().item()
    result["fusion"] = {
        "max_abs_diff": (logits - fused_logits).abs().max().item(),
        "speedup": latb["dense"].median_ms / latb["fused"].median_ms,
        "speedup_batch1": lat1["dense"].median_ms / lat1["fused"].median_ms,
        "accuracy": (fused_logits.argmax(1) == labels).float().mean().item(), "dense_accuracy": dense_accuracy,
        "params_ratio": count_parameters(teacher) / count_parameters(fused), "batch_size": batch,
        "threads": 1}

    result["low_rank"] = _low_rank(get_model("lenet300"), loaders, batch, repeats, quick, layers=None)
    result["low_rank_teacher"] = _low_rank(teacher, loaders, batch, repeats, quick, layers=TEACHER_LOW_RANK_LAYERS)

    result["ddp"] = _ddp(quick)

    if not quick:
        compiled = try_compile(teacher, xb)
        entry: dict[str, Any] = {"ok": compiled.model is not None, "compile_seconds": round(compiled.seconds, 1),
                                 "batch_size": batch, "threads": 1,
                                 "error": compiled.error}
        if compiled.model is not None:
            lat = compare_latency({"eager": teacher, "compiled": compiled.model}, xb, warmup=3, repeats=repeats,
                                  threads=1)
            entry["speedup"] = lat["eager"].median_ms / lat["compiled"].median_ms
        result["compile"] = entry
    return result

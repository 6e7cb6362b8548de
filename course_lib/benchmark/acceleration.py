"""Benchmark section ``acceleration``: parallel, algorithmic and hardware speed-ups of the zoo teacher on this machine.

Reported (accuracies are fractions in ``[0, 1]`` on the test split; choices are made on the validation split):

- ``threads``: the teacher at ``batch_size`` 64 (16 if quick) with each of :data:`THREADS` intra-op threads,
  measured in one interleaved :func:`~course_lib.timing.compare_latency` call on a machine of ``cores`` cores:
  ``rows`` ``{threads, median_ms, p10_ms, p90_ms, cpu_wall_ratio, reliable, why}``
  (:func:`~course_lib.benchmark.results.latency_row`) and
  ``speedup``, the timing record (:func:`~course_lib.timing.timing_record`) of the most threads against one;
- ``batching``: the teacher at each of :data:`BATCH_SIZES` (1 and 16 if quick) with one thread, in one interleaved
  call: ``rows`` ``{batch_size, median_ms, p10_ms, p90_ms, cpu_wall_ratio, reliable, why, samples_per_s,
  ms_per_sample}`` (throughput from the median) and ``context`` (:class:`~course_lib.timing.Context`: load,
  cores, CPU capability);
- ``ddp``: ``workers`` DistributedDataParallel processes (gloo) against one process on the same global batches
  (``model``, ``epochs``, ``steps``, ``batch_size``, plain SGD ``lr``): ``max_param_diff``, the largest
  absolute difference between the two trained models' weights, and ``val_accuracy`` of the DDP model;
- ``fusion``: Conv-BatchNorm folding (:func:`~course_lib.acceleration.fold_batchnorm`): ``max_abs_diff`` of the
  test logits, ``speedup`` at ``batch_size`` 64 (16 if quick; ``speedup_batch1`` at batch 1), ``accuracy``,
  ``dense_accuracy``, ``params_ratio`` (teacher / folded parameters), ``macs_ratio`` (teacher / folded
  multiply-accumulates per image, :func:`~course_lib.metrics.layer_macs`);
- ``low_rank``: truncated-SVD factorization (:func:`~course_lib.acceleration.factorize_linears`, no
  fine-tuning) of LeNet-300-100 (zoo ``lenet300``), a network whose work is all in Linear layers; ``rank``: the
  smallest candidate of :data:`RANKS` whose validation accuracy is within ``tolerance`` of the dense model's;
  ``accuracy`` and ``dense_accuracy`` (test), ``params_ratio`` (dense / factorized parameters), ``macs_ratio``
  (dense / factorized multiply-accumulates per image), ``speedup`` at
  ``batch_size`` 64 (16 if quick), ``speedup_batch1`` at batch 1, ``curve``: rows ``{rank, val_accuracy, params}``;
- ``low_rank_teacher``: the same for the teacher's :data:`TEACHER_LOW_RANK_LAYERS` (3136 -> 256 holds 97% of its
  parameters but the convolutions do most of the arithmetic: Amdahl's law caps the gain);
- ``compile`` (full run only): ``torch.compile`` of the teacher at ``batch_size`` 64, compiled and timed with one
  thread: ``ok``, ``compile_seconds`` (compilation and first call), ``speedup`` against eager, or ``error``.

Every ``speedup*`` is a timing record (:func:`course_lib.timing.timing_record`: the median of the paired ratios
``baseline time / candidate time`` of one interleaved :func:`course_lib.timing.compare_latency` call, its p10/p90,
``reliable`` and ``why``, each variant's median and spread, and the load and CPU capability it was measured at;
read it with :func:`course_lib.benchmark.results.speedup_of`), with one intra-op thread (``threads: 1`` in each
entry; ``batching`` too): two threads waiting on each other at every operator make a comparison of two models
sensitive to anything else running (the ``threads`` entry measures that effect on purpose).

Run time on a quiet 2-core machine: the timings are a few seconds (about :data:`REPEATS` rounds of at most 70 ms,
up to three attempts each); the rest is evaluation, the two DDP trainings and one compilation (tens of seconds).
Nothing is trained with a random seed here except the DDP models (seeded initialization), so ``seeds`` is
accepted for the common interface and not used. ``quick=True`` uses fewer repeats, ranks and DDP steps and
skips ``compile``: it checks that the section runs, not the targets.
"""
from __future__ import annotations

import os
import time
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..acceleration import (
    ddp_train,
    factorize_linears,
    fold_batchnorm,
    max_param_diff,
    single_process_train,
    try_compile,
)
from ..data import load_mnist5k, make_loaders
from ..metrics import count_parameters, layer_macs, random_images
from ..models import build_model
from ..timing import compare_latency, timing_record
from ..training import evaluate, predict, set_seed
from ..zoo import get_model
from .results import latency_row

RANKS = (8, 16, 24, 32, 48, 64, 128)
TOLERANCE = 0.005  # validation accuracy may drop by at most half a point when choosing the rank
TEACHER_LOW_RANK_LAYERS = ("classifier.1",)  # the 3136 -> 256 layer; the 256 -> 10 one is too small to gain
QUICK_DDP_IMAGES = 512
THREADS = (1, 2)
BATCH_SIZES = (1, 4, 16, 64, 256)
REPEATS = 50  # measured rounds of each comparison (5 if quick); batch 1 comparisons run 10 times more


def macs(model: torch.nn.Module) -> int:
    """Multiply-accumulates of ``model`` per image (:func:`~course_lib.metrics.layer_macs`)."""
    return sum(layer_macs(model).values())


def _threads(model: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> dict[str, Any]:
    """The ``threads`` entry: each of :data:`THREADS` in one interleaved comparison."""
    names = {t: f"{t} thread{'s' * (t != 1)}" for t in THREADS}
    lat = compare_latency(dict.fromkeys(names.values(), model), x, warmup=warmup, repeats=repeats,
                          threads={names[t]: t for t in THREADS})
    return {"batch_size": len(x), "cores": os.cpu_count(),
            "rows": [{"threads": t, **latency_row(lat[names[t]])} for t in THREADS],
            "speedup": timing_record(lat[names[THREADS[0]]], lat[names[THREADS[-1]]])}


def _batching(model: torch.nn.Module, batch_sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    """The ``batching`` entry: every batch size in one interleaved comparison, one thread."""
    names = {b: f"batch {b}" for b in batch_sizes}
    inputs = {names[b]: random_images(model, b) for b in batch_sizes}
    lat = compare_latency(dict.fromkeys(names.values(), model), inputs, warmup=max(3, repeats // 5), repeats=repeats,
                          threads=1)
    rows = [{"batch_size": b, **latency_row(lat[names[b]]), "samples_per_s": 1e3 * b / lat[names[b]].median_ms,
             "ms_per_sample": lat[names[b]].median_ms / b} for b in batch_sizes]
    return {"threads": 1, "rows": rows, "context": lat[names[batch_sizes[0]]].context.as_dict()}


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
    latb = compare_latency({"dense": model, "low_rank": low}, xb, warmup=3, repeats=repeats, threads=1)
    lat1 = compare_latency({"dense": model, "low_rank": low}, x1, warmup=10, repeats=10 * repeats, threads=1)
    return {"model": type(model).__name__, "rank": rank, "accuracy": evaluate(low, loaders.test),
            "dense_accuracy": evaluate(model, loaders.test), "dense_val_accuracy": dense_val,
            "tolerance": TOLERANCE, "params_ratio": count_parameters(model) / count_parameters(low),
            "macs_ratio": macs(model) / macs(low), "speedup": timing_record(latb["dense"], latb["low_rank"]),
            "batch_size": batch, "speedup_batch1": timing_record(lat1["dense"], lat1["low_rank"]), "threads": 1,
            "curve": curve}


def run(quick: bool = False, seeds: int = 3) -> dict[str, Any]:
    """Measure the acceleration techniques (see the module docstring for the keys)."""
    set_seed(0)
    teacher = get_model("teacher")
    loaders = make_loaders(load_mnist5k(), batch_size=250)
    repeats = 5 if quick else REPEATS
    batch = 16 if quick else 64
    x1, xb = torch.rand(1, 1, 28, 28), torch.rand(batch, 1, 28, 28)
    result: dict[str, Any] = {}

    result["threads"] = _threads(teacher, xb, repeats, warmup=2 if quick else 5)
    result["batching"] = _batching(teacher, (1, 16) if quick else BATCH_SIZES, repeats)

    fused = fold_batchnorm(teacher)
    logits, labels = predict(teacher, loaders.test)
    fused_logits, _ = predict(fused, loaders.test)
    latb = compare_latency({"dense": teacher, "fused": fused}, xb, warmup=3, repeats=repeats, threads=1)
    lat1 = compare_latency({"dense": teacher, "fused": fused}, x1, warmup=10, repeats=10 * repeats,
                           threads=1)
    dense_accuracy = (logits.argmax(1) == labels).float().mean().item()
    result["fusion"] = {
        "max_abs_diff": (logits - fused_logits).abs().max().item(),
        "speedup": timing_record(latb["dense"], latb["fused"]),
        "speedup_batch1": timing_record(lat1["dense"], lat1["fused"]),
        "accuracy": (fused_logits.argmax(1) == labels).float().mean().item(), "dense_accuracy": dense_accuracy,
        "params_ratio": count_parameters(teacher) / count_parameters(fused),
        "macs_ratio": macs(teacher) / macs(fused), "batch_size": batch, "threads": 1}

    result["low_rank"] = _low_rank(get_model("lenet300"), loaders, batch, repeats, quick, layers=None)
    result["low_rank_teacher"] = _low_rank(teacher, loaders, batch, repeats, quick, layers=TEACHER_LOW_RANK_LAYERS)

    result["ddp"] = _ddp(quick)

    if not quick:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)  # Inductor writes the thread count it compiles with into its code
        try:
            compiled = try_compile(teacher, xb)
        finally:
            torch.set_num_threads(previous)
        entry: dict[str, Any] = {"ok": compiled.model is not None, "compile_seconds": round(compiled.seconds, 1),
                                 "batch_size": batch, "threads": 1,
                                 "error": compiled.error}
        if compiled.model is not None:
            lat = compare_latency({"eager": teacher, "compiled": compiled.model}, xb, warmup=3, repeats=repeats,
                                  threads=1)
            entry["speedup"] = timing_record(lat["eager"], lat["compiled"])
        result["compile"] = entry
    return result

"""Parallel computation: intra-op threads, batching, and data-parallel training with DistributedDataParallel.

- *Intra-op threads* split one operator (a matrix product, a convolution) over cores:
  ``torch.set_num_threads``. Small layers gain little: the work per thread shrinks while the cost of
  starting and joining the threads does not.
- *Batching* amortizes the per-call overhead and reads each weight once per batch instead of once per
  sample: throughput (samples/s) grows with the batch size until the cores are saturated, while the
  latency of each call grows too.
- *Data parallelism* (``torch.nn.parallel.DistributedDataParallel``, Li et al., 2020) runs one process per
  worker, each on its shard of the global batch; after ``backward`` the gradients are averaged across
  workers (all-reduce), so every replica takes the same step as one process would on the whole batch.
  With equal shards, a mean loss and a deterministic optimizer (plain SGD), the weights equal single-process
  training up to float rounding, which :func:`ddp_train` and :func:`single_process_train` let you check.

The same worker runs on several machines: start it with ``torchrun`` on each machine, e.g. for 2 machines
with 4 processes each (``--node_rank=1`` on the second machine)::

    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 train.py

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` for each
process, and ``train.py`` calls ``dist.init_process_group(backend)`` with no other argument (backend
``nccl`` on GPUs, ``gloo`` on CPUs), wraps its model in ``DistributedDataParallel`` (``device_ids=[LOCAL_RANK]``
on a GPU) and shards its data with ``DistributedSampler``; here :func:`ddp_train` plays torchrun's part on one
machine with ``torch.multiprocessing.spawn``.
"""
from __future__ import annotations

import copy
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._validation import (
    check_int,
    check_ints,
    check_module,
    check_positive,
    check_tensor,
    copy_model,
    reads_model,
    verb,
)
from ..metrics import random_images
from ..timing import Latency, Speedup, compare_latency, speedup


def _distinct(values: tuple[int, ...], name: str) -> tuple[int, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return values


def _row(latency: Latency, *, baseline: Latency | None = None, **figures: float) -> dict[str, Any]:
    """One variant's row: median and p10/p90 in ms, ``figures``, and the verdict; with a ``baseline`` (from the same
    comparison) also the ``speedup`` over it, a paired ratio whose verdict covers both measurements."""
    verdict: Latency | Speedup = latency
    if baseline is not None:
        verdict = speedup(baseline, latency)
        figures["speedup"] = round(verdict.ratio, 3)
    return {"median_ms": round(latency.median_ms, 4), "p10_ms": round(latency.p10_ms, 4),
            "p90_ms": round(latency.p90_ms, 4), **figures, "reliable": verdict.reliable, "why": verdict.why}


@reads_model
def thread_latency(model: nn.Module, example_input: torch.Tensor, *, threads: tuple[int, ...] = (1, 2),
                   repeats: int = 50, warmup: int = 5, **rules: Any) -> list[dict[str, Any]]:
    """Latency of ``model`` on ``example_input`` with each number of intra-op ``threads``, measured side by side.

    One :func:`course_lib.timing.compare_latency` call: each of its ``repeats`` rounds (after ``warmup``) runs the
    model once with every thread count, the order rotating, so a change of machine load hits all alike; ``rules``
    are its other keywords (reliability thresholds, ``retries``). The thread setting is restored afterwards.

    Returns:
        One row per thread count: ``{"threads", "median_ms", "p10_ms", "p90_ms", "speedup", "reliable", "why"}``,
        ``speedup`` = the median over rounds of ``time with threads[0] / time with this count``
        (:func:`course_lib.timing.speedup`); ``reliable`` is False, with the reason in ``why``, when either
        measurement broke a reliability rule: the figures of such a row must not be stated as facts.
    """
    check_module(model)
    check_tensor(example_input, "example_input", min_dim=1)
    threads = _distinct(check_ints(threads, "threads", 1), "threads")
    names = {t: f"{t} thread{'s' * (t != 1)}" for t in threads}
    latency = compare_latency(dict.fromkeys(names.values(), model), example_input, warmup=warmup, repeats=repeats,
                              threads={names[t]: t for t in threads}, **rules)
    baseline = latency[names[threads[0]]]
    return [{"threads": t, **_row(latency[names[t]], baseline=baseline)} for t in threads]


@reads_model
def batch_throughput(model: nn.Module, *, batch_sizes: tuple[int, ...] = (1, 8, 64, 256), repeats: int = 20,
                     threads: int | None = None, **rules: Any) -> list[dict[str, Any]]:
    """Latency per call and throughput (samples per second) of ``model`` at each batch size, measured side by side.

    Inputs are uniform random images of the shape ``model`` expects (:func:`course_lib.metrics.random_images`).
    One :func:`course_lib.timing.compare_latency` call with one input per batch size: each of its ``repeats``
    rounds (after ``max(3, repeats // 5)`` warm-up rounds) runs every batch size once, with ``threads`` intra-op
    threads (default: the current setting); ``rules`` are its other keywords.

    Returns:
        One row per batch size: ``{"batch_size", "median_ms", "p10_ms", "p90_ms", "samples_per_s",
        "ms_per_sample", "reliable", "why"}``; throughput is ``1000 * batch_size / median_ms``. A row with
        ``reliable`` False (the reason in ``why``) must not be stated as a fact.
    """
    check_module(model)
    batch_sizes = _distinct(check_ints(batch_sizes, "batch_sizes", 1), "batch_sizes")
    check_int(repeats, "repeats", 1)
    names = {b: f"batch {b}" for b in batch_sizes}
    latency = compare_latency(dict.fromkeys(names.values(), model),
                              {names[b]: random_images(model, b) for b in batch_sizes},
                              warmup=max(3, repeats // 5), repeats=repeats, threads=threads, **rules)
    medians = {b: latency[names[b]].median_ms for b in batch_sizes}
    return [{"batch_size": b, **_row(latency[names[b]], samples_per_s=round(1e3 * b / medians[b], 1),
                                     ms_per_sample=round(medians[b] / b, 5))} for b in batch_sizes]


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_training_args(model: nn.Module, dataset: Dataset, world_size: int, batch_size: int, epochs: int,
                         lr: float) -> None:
    check_module(model)
    check_int(world_size, "world_size", 1)
    check_int(batch_size, "batch_size", 1)
    if batch_size % world_size:
        raise ValueError(f"batch_size (the global batch) must be a positive multiple of world_size={world_size}, "
                         f"got {batch_size!r}")
    check_int(epochs, "epochs", 1)
    check_positive(lr, "lr")
    if len(dataset) < batch_size:
        raise ValueError(f"the dataset ({len(dataset)} samples) is smaller than one global batch ({batch_size})")


def _sgd_epochs(model: nn.Module, dataset: Dataset, sampler: DistributedSampler, local_batch: int,
                epochs: int, lr: float) -> None:
    """Plain SGD (no momentum, no weight decay) on mean cross-entropy; full batches only."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(dataset, batch_size=local_batch, sampler=sampler, drop_last=True)
    model.train()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for inputs, targets in loader:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(inputs), targets).backward()
            optimizer.step()


def _ddp_worker(rank: int, world_size: int, port: int, model: nn.Module, dataset: Dataset, batch_size: int,
                epochs: int, lr: float, seed: int, out: str) -> None:
    """One DDP process (module-level so that ``mp.spawn`` can pickle it): train, and rank 0 saves the weights."""
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        # spawn hands every process the same shared-memory tensors: give this replica weights of its own
        ddp = DistributedDataParallel(copy.deepcopy(model))  # broadcasts rank 0's weights to every replica
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
        _sgd_epochs(ddp, dataset, sampler, batch_size // world_size, epochs, lr)
        if rank == 0:
            torch.save(ddp.module.state_dict(), out)
    finally:
        dist.destroy_process_group()


@verb
def ddp_train(model: nn.Module, dataset: Dataset, *, world_size: int = 2, batch_size: int = 64, epochs: int = 1,
              lr: float = 0.05, seed: int = 0) -> nn.Module:
    """A copy of ``model`` trained with DistributedDataParallel by ``world_size`` CPU processes (gloo backend).

    ``batch_size`` is the *global* batch: each worker sees ``batch_size / world_size`` samples per step, drawn
    by a ``DistributedSampler`` (shuffled with ``seed``, so worker ``k`` takes positions ``k, k + W, ...`` of one
    shared permutation). Optimizer: plain SGD with learning rate ``lr``. The processes are started with
    ``torch.multiprocessing.spawn`` and meet at ``127.0.0.1`` on a free port. Models with BatchNorm normalize
    with each worker's own shard (use ``nn.SyncBatchNorm`` to share the statistics), so they only match
    single-process training if they have none. The processes receive the model pickled, which a
    :mod:`torch.nn.utils.parametrize` parametrization (a pruning mask...) refuses: such a model is rejected.
    """
    _check_training_args(model, dataset, world_size, batch_size, epochs, lr)
    parametrized = [name for name, m in model.named_modules() if parametrize.is_parametrized(m)]
    if parametrized:
        raise ValueError(f"model must have no parametrized layer (the worker processes receive it pickled, which "
                         f"parametrizations refuse; fold them first with course_lib.pruning.make_permanent), got "
                         f"parametrized {', '.join(parametrized)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "weights.pt")
        mp.spawn(_ddp_worker, args=(world_size, _free_port(), copy.deepcopy(model).cpu(), dataset, batch_size,
                                    epochs, lr, seed, out), nprocs=world_size, join=True)
        trained = copy_model(model).cpu()
        trained.load_state_dict(torch.load(out, weights_only=True))
    return trained.eval()


@verb
def single_process_train(model: nn.Module, dataset: Dataset, *, batch_size: int = 64, epochs: int = 1,
                         lr: float = 0.05, seed: int = 0) -> nn.Module:
    """The reference for :func:`ddp_train`: one process, the same global batches in the same order, plain SGD.

    Uses ``DistributedSampler(num_replicas=1)`` for the order, i.e. the same permutation the workers split.
    """
    _check_training_args(model, dataset, 1, batch_size, epochs, lr)
    trained = copy_model(model).cpu()
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    _sgd_epochs(trained, dataset, sampler, batch_size, epochs, lr)
    return trained.eval()


@reads_model
def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between corresponding entries of two models' state dicts."""
    sa, sb = check_module(a, "a").state_dict(), check_module(b, "b").state_dict()
    if sa.keys() != sb.keys():
        raise ValueError("the two models have different state_dict keys")
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa if sa[k].numel())

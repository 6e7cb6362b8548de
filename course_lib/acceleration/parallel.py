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
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._validation import check_int, check_ints, check_module, check_positive, check_tensor
from ..metrics import example_input as random_images, measure_latency


def thread_latency(model: nn.Module, example_input: torch.Tensor, *, threads: tuple[int, ...] = (1, 2),
                   rounds: int = 5, repeats: int = 20, warmup: int = 5) -> list[dict[str, Any]]:
    """Median latency of ``model`` on ``example_input`` with each number of intra-op ``threads``.

    The settings alternate for ``rounds`` rounds of ``warmup`` untimed and ``repeats`` timed calls each (so
    load changes hit all alike); each row is ``{"threads", "median_ms", "speedup"}``, with the speed-up against ``threads[0]``.
    The thread setting is restored afterwards.
    """
    check_module(model)
    check_tensor(example_input, "example_input")
    threads = check_ints(threads, "threads", 1)
    check_int(rounds, "rounds", 1)
    medians: dict[int, list[float]] = {t: [] for t in threads}
    for round_ in range(rounds):
        for t in threads:
            medians[t].append(measure_latency(model, example_input, warmup=warmup,
                                              repeats=repeats, threads=t).median_ms)
    base = statistics.median(medians[threads[0]])
    rows = []
    for t in threads:
        ms = statistics.median(medians[t])
        rows.append({"threads": t, "median_ms": round(ms, 4), "speedup": round(base / ms, 3)})
    return rows


def batch_throughput(model: nn.Module, *, batch_sizes: tuple[int, ...] = (1, 8, 64, 256), repeats: int = 20,
                     threads: int | None = None) -> list[dict[str, Any]]:
    """Latency per call and throughput (samples per second) of ``model`` at each batch size.

    Inputs are uniform random images of the shape ``model`` expects (:func:`course_lib.metrics.example_input`). Rows: ``{"batch_size", "median_ms", "samples_per_s", "ms_per_sample"}``.
    """
    check_module(model)
    batch_sizes = check_ints(batch_sizes, "batch_sizes", 1)
    check_int(repeats, "repeats", 1)
    rows = []
    for b in batch_sizes:
        x = random_images(model, b)
        ms = measure_latency(model, x, warmup=max(3, repeats // 5), repeats=repeats, threads=threads).median_ms
        rows.append({"batch_size": b, "median_ms": round(ms, 4), "samples_per_s": round(1e3 * b / ms, 1),
                     "ms_per_sample": round(ms / b, 5)})
    return rows


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


def ddp_train(model: nn.Module, dataset: Dataset, *, world_size: int = 2, batch_size: int = 64, epochs: int = 1,
              lr: float = 0.05, seed: int = 0) -> nn.Module:
    """A copy of ``model`` trained with DistributedDataParallel by ``world_size`` CPU processes (gloo backend).

    ``batch_size`` is the *global* batch: each worker sees ``batch_size / world_size`` samples per step, drawn
    by a ``DistributedSampler`` (shuffled with ``seed``, so worker ``k`` takes positions ``k, k + W, ...`` of one
    shared permutation). Optimizer: plain SGD with learning rate ``lr``. The processes are started with
    ``torch.multiprocessing.spawn`` and meet at ``127.0.0.1`` on a free port. Models with BatchNorm normalize
    with each worker's own shard (use ``nn.SyncBatchNorm`` to share the statistics), so they only match
    single-process training if they have none.
    """
    _check_training_args(model, dataset, world_size, batch_size, epochs, lr)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "weights.pt")
        mp.spawn(_ddp_worker, args=(world_size, _free_port(), copy.deepcopy(model).cpu(), dataset, batch_size,
                                    epochs, lr, seed, out), nprocs=world_size, join=True)
        trained = copy.deepcopy(model).cpu()
        trained.load_state_dict(torch.load(out, weights_only=True))
    return trained.eval()


def single_process_train(model: nn.Module, dataset: Dataset, *, batch_size: int = 64, epochs: int = 1,
                         lr: float = 0.05, seed: int = 0) -> nn.Module:
    """The reference for :func:`ddp_train`: one process, the same global batches in the same order, plain SGD.

    Uses ``DistributedSampler(num_replicas=1)`` for the order, i.e. the same permutation the workers split.
    """
    _check_training_args(model, dataset, 1, batch_size, epochs, lr)
    trained = copy.deepcopy(model).cpu()
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    _sgd_epochs(trained, dataset, sampler, batch_size, epochs, lr)
    return trained.eval()


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between corresponding entries of two models' state dicts."""
    sa, sb = check_module(a, "a").state_dict(), check_module(b, "b").state_dict()
    if sa.keys() != sb.keys():
        raise ValueError("the two models have different state_dict keys")
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa if sa[k].numel())

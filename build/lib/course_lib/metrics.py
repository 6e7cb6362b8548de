"""Measurement: parameter counts, serialized size, and latency measured fairly.

Latency figures are only comparable inside one run on one machine: compare models with
:func:`compare_latency`, which interleaves them so that a change in machine load hits all alike,
and report ratios of medians, never absolute times from different runs.
"""
from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of parameter entries (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero_parameters(model: nn.Module) -> int:
    """Number of parameter entries that are not exactly zero (a pruned model's effective size)."""
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the model as actually serialized."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


@dataclass(frozen=True)
class Latency:
    """Latency of one forward pass in milliseconds: median, 10th and 90th percentile over ``repeats``."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    threads: int
    batch_size: int

    def __str__(self) -> str:
        return (f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}; "
                f"batch {self.batch_size}, {self.threads} threads, {self.repeats} repeats)")


def _summarise(times_s: list[float], threads: int, batch_size: int) -> Latency:
    ms = sorted(t * 1e3 for t in times_s)
    deciles = statistics.quantiles(ms, n=10) if len(ms) > 1 else [ms[0]] * 9
    return Latency(statistics.median(ms), deciles[0], deciles[-1], len(ms), threads, batch_size)


def _check_timing_args(warmup: int, repeats: int, threads: int | None) -> None:
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_latency(models: dict[str, nn.Module], example_input: torch.Tensor, warmup: int = 10,
                    repeats: int = 50, threads: int | None = None) -> dict[str, Latency]:
    """Latency of each model on ``example_input``, measured side by side.

    Each round runs every model once, in turn, so slow drifts of the machine affect all models
    alike. Runs under ``torch.inference_mode()`` with ``threads`` intra-op threads (default: the
    current setting, which is restored afterwards). ``example_input`` is moved to each model's device.
    """
    _check_timing_args(warmup, repeats, threads)
    if not models:
        raise ValueError("models must name at least one model")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used = torch.get_num_threads()
        runners = {}
        for name, model in models.items():
            model.eval()
            first = next(model.parameters(), None)
            device = first.device if first is not None else torch.device("cpu")
            runners[name] = (model, example_input.to(device), device)
        times: dict[str, list[float]] = {name: [] for name in models}
        with torch.inference_mode():
            for round_ in range(warmup + repeats):
                for name, (model, x, device) in runners.items():
                    _sync(device)
                    start = time.perf_counter()
                    model(x)
                    _sync(device)
                    if round_ >= warmup:
                        times[name].append(time.perf_counter() - start)
        return {name: _summarise(t, used, example_input.shape[0]) for name, t in times.items()}
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: nn.Module, example_input: torch.Tensor, warmup: int = 10, repeats: int = 50,
                    threads: int | None = None) -> Latency:
    """Latency of one forward pass of ``model`` on ``example_input`` (see :func:`compare_latency`)."""
    return compare_latency({"model": model}, example_input, warmup, repeats, threads)["model"]


def speedup(baseline: Latency, candidate: Latency) -> float:
    """How many times faster ``candidate`` is than ``baseline``: the ratio of their median latencies."""
    return baseline.median_ms / candidate.median_ms

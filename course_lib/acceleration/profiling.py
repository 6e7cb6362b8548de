"""Where a model's time goes: the CPU time of each kernel in one forward pass, from PyTorch's profiler.

A whole-model speed-up is a weighted mean of the speed-ups of its parts (Amdahl's law): if a part that took
the share ``p`` of the baseline's time becomes ``s`` times faster and the rest does not change, the whole
becomes ``1 / ((1 - p) + p / s)`` times faster. :func:`kernel_times` measures the parts, so that a chapter can
say which layer holds a speed-up back instead of guessing.

The times are the profiler's *self* CPU time of each operator (its own time, not that of the operators it
calls), per forward pass, the median of ``repeats`` passes after ``warmup`` passes; everything the selected
kernels do not account for (Python, the code Inductor generated around them, the rest of the operators) is
``other_ms``. The profiler adds a few microseconds per operator: read the shares, not the absolute times.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_int, check_module, check_tensor, reads_model
from ..timing import steady_allocator
from ..training import evaluating

KERNELS = r"conv|linear|addmm|matmul|\bmm\b|pool"  # the operators that do a layer's work
PASS = "course_lib.kernel_times.pass"  # the profiler's label of one forward pass


@dataclass(frozen=True)
class KernelTime:
    """One kernel of a forward pass: ``name`` (the operator, e.g. ``onednn::qconv_pointwise``), ``shape``
    (the shape of its first tensor input: which layer it is), ``ms`` (self CPU time per forward pass, ms)."""

    name: str
    shape: tuple[int, ...]
    ms: float


@dataclass(frozen=True)
class KernelProfile:
    """:func:`kernel_times`'s result: ``kernels`` in the order of their first call; ``total_ms`` (the CPU time
    of a forward pass, ms) and ``other_ms`` (what the kernels leave of it: Python, the other operators)."""

    kernels: tuple[KernelTime, ...]
    total_ms: float
    other_ms: float

    def as_dict(self) -> dict:
        return {"kernels": [{"name": k.name, "shape": list(k.shape), "ms": k.ms} for k in self.kernels],
                "total_ms": self.total_ms, "other_ms": self.other_ms}


@reads_model
@torch.inference_mode()
def kernel_times(model: nn.Module, example_input: torch.Tensor, *, repeats: int = 20, warmup: int = 3,
                 kernels: str = KERNELS) -> KernelProfile:
    """The CPU time of each kernel of ``model(example_input)``, per forward pass (see the module docstring).

    Args:
        model: any module (eager, compiled or a PT2E graph), run in eval mode (every submodule's mode is
            restored afterwards).
        example_input: the input batch, on the model's device (times are CPU times: on a GPU they are the
            launch costs, not the kernels').
        repeats: forward passes profiled (>= 1); warmup: passes run before (>= 0; a compiled model compiles
            on its first call, which must not be profiled).
        kernels: a regular expression; operators whose name matches it (case-insensitive) and that call no
            other matching operator (``aten::mkldnn_convolution``, not the ``aten::conv2d`` that calls it) are
            listed, one entry per distinct (name, input shape); the rest is ``other_ms``.

    The passes run under ``torch.inference_mode()``, as :func:`~course_lib.timing.compare_latency` times them and
    :func:`~course_lib.acceleration.try_compile` compiles: a compiled model called in another grad mode
    (``torch.no_grad()``) is compiled again, into a different (for the fp32 teacher, slower) graph.

    Each figure is the median over the ``repeats`` passes (of a kernel's self time in a pass, of a pass's
    time, of what the kernels leave of it), so that a pass the operating system interrupted does not move it;
    medians need not add up exactly to the median total.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    check_module(model)
    check_tensor(example_input, "example_input", min_dim=1)
    check_int(repeats, "repeats", 1)
    check_int(warmup, "warmup", 0)
    try:
        pattern = re.compile(kernels, re.IGNORECASE)
    except (re.error, TypeError) as error:
        raise ValueError(f"kernels must be a regular expression over operator names, got {kernels!r} "
                         f"({error})") from None
    steady_allocator()  # no page faults that depend on what the process allocated before
    with evaluating(model):
        for _ in range(warmup):
            model(example_input)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
            for _ in range(repeats):
                with record_function(PASS):
                    model(example_input)
    passes = [event for event in profiler.events() if event.name == PASS]
    per_pass: dict[tuple[str, tuple[int, ...]], list[float]] = {}
    totals, others = [], []
    for index, event in enumerate(passes):
        found: dict[tuple[str, tuple[int, ...]], float] = {}
        _collect(event, pattern, found)
        for key, us in found.items():
            per_pass.setdefault(key, [0.0] * len(passes))[index] = us
        totals.append(event.cpu_time_total)
        others.append(event.cpu_time_total - sum(found.values()))
    listed = tuple(KernelTime(name, shape, statistics.median(us) / 1000) for (name, shape), us in per_pass.items())
    return KernelProfile(listed, statistics.median(totals) / 1000, statistics.median(others) / 1000)


def _collect(event, pattern: re.Pattern, found: dict) -> None:
    """Add the self time of each kernel below ``event`` (see :func:`kernel_times`) to ``found``, by (name, shape)."""
    for child in event.cpu_children:
        if pattern.search(child.name) and not _calls_a_match(child, pattern):
            shapes = [shape for shape in child.input_shapes if shape]
            key = (child.name, tuple(shapes[0]) if shapes else ())
            found[key] = found.get(key, 0.0) + child.self_cpu_time_total
        _collect(child, pattern, found)


def _calls_a_match(event, pattern: re.Pattern) -> bool:
    """Whether an operator the profiler recorded under ``event`` matches ``pattern`` (then ``event`` wraps it)."""
    return any(pattern.search(child.name) or _calls_a_match(child, pattern) for child in event.cpu_children)

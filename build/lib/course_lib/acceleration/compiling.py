"""``torch.compile``: graph capture plus code generation (TorchInductor: C++/OpenMP on CPUs, Triton on GPUs).

Compiling fuses elementwise operations into the kernels before and after them and removes Python
overhead per operator. It pays when many small operations dominate (batch 1, long chains of elementwise
ops) and the model is called often enough to amortise the compile time (seconds to minutes, once per
new input shape unless ``dynamic=True``). It does not pay when the time is already spent in large
matrix products or convolutions that call the same oneDNN/MKL kernels either way, or for a model run
only a few times. On a CPU it needs a working C++ compiler; :func:`try_compile` reports any failure
instead of raising, so a chapter can run where compilation is not available.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CompileResult:
    """The compiled model (``None`` if compilation failed), seconds spent on compilation and first call, and the error."""

    model: nn.Module | None
    seconds: float
    error: str | None = None


def try_compile(model: nn.Module, example_input: torch.Tensor, mode: str | None = None) -> CompileResult:
    """``torch.compile(model, mode=mode)`` and one call on ``example_input`` (which triggers the compilation).

    Never raises for a compilation failure (missing compiler, unsupported operator...): the result then has
    ``model=None`` and ``error`` set to the exception's type and first line.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    start = time.perf_counter()
    try:
        compiled = torch.compile(model.eval(), mode=mode)
        with torch.inference_mode():
            compiled(example_input)
    except Exception as e:  # reported, not raised: compilation is an optional speed-up
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return CompileResult(None, time.perf_counter() - start, f"{type(e).__name__}: {message}"[:300])
    return CompileResult(compiled, time.perf_counter() - start)

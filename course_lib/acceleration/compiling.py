"""``torch.compile``: graph capture plus code generation (TorchInductor: C++/OpenMP on CPUs, Triton on GPUs).

Compiling fuses elementwise operations into the kernels before and after them and removes Python
overhead per operator. It pays when many small operations dominate (batch 1, long chains of elementwise
ops) and the model is called often enough to amortize the compile time (seconds to minutes, once per
new input shape unless ``dynamic=True``). It does not pay when the time is already spent in large
matrix products or convolutions that call the same oneDNN/MKL kernels either way, or for a model run
only a few times. On a CPU it needs a working C++ compiler; :func:`try_compile` reports any failure
instead of raising, so a chapter can run where compilation is not available.

*Freezing* (Inductor's ``freezing`` option) treats the weights of an inference model as constants: it
folds them into the graph and pre-packs them into the layout oneDNN kernels want (for int8 kernels this is
what makes them fast). :func:`try_compile` with ``freezing=True`` turns it on with
``torch._inductor.config.patch`` around each call of the compiled model only (where compilation happens),
so no global setting is left changed. A frozen model no longer sees later changes to its weights.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_bool, check_module, check_tensor, copy_model, reads_model

ERROR_CHARS = 300  # length kept of a compilation error's first line


@dataclass
class CompileResult:
    """The compiled model (``None`` if compilation failed), seconds spent on compilation and first call, and the
    error."""

    model: nn.Module | None
    seconds: float
    error: str | None = None


class Frozen(nn.Module):
    """A compiled model whose every call runs with Inductor's ``freezing`` on (``torch._inductor.config.patch``),
    so that each compilation (the first call, and the first call on each new input shape) freezes its weights."""

    def __init__(self, compiled: nn.Module) -> None:
        super().__init__()
        self.compiled = compiled

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        with torch._inductor.config.patch(freezing=True):
            return self.compiled(*args)


def _first_line(error: BaseException) -> str:
    """``"Type: first line"`` of ``error``; for a backend failure (whose own first line only says which backend
    raised) also that of the exception it wraps, which says why."""
    def line(e: BaseException) -> str:
        text = str(e).strip()
        return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"

    inner = getattr(error, "inner_exception", None) or error.__cause__
    return line(error) + (f" {line(inner)}" if inner is not None and inner is not error else "")


@reads_model
def try_compile(model: nn.Module, example_input: torch.Tensor, *, mode: str | None = None,
                freezing: bool = False) -> CompileResult:
    """``torch.compile(model, mode=mode)`` and one call on ``example_input`` (which triggers the compilation).

    A copy of ``model`` in eval mode is compiled (``model`` is left untouched); with ``freezing=True`` it is
    wrapped in :class:`Frozen` (inference only) and compiled for static shapes (``dynamic=False``: each new
    input shape compiles again, since with torch 2.14 a frozen int8 graph recompiled with a dynamic batch
    dimension fails Inductor's stride checks). Never raises for a
    compilation failure (missing compiler, unsupported operator...): the result then has ``model=None``
    and ``error`` set to the exception's type and first line.
    """
    check_module(model)
    check_tensor(example_input, "example_input")
    check_bool(freezing, "freezing")
    start = time.perf_counter()
    try:
        compiled = torch.compile(copy_model(model).eval(), mode=mode, dynamic=False if freezing else None)
        if freezing:
            compiled = Frozen(compiled)
        with torch.inference_mode():
            compiled(example_input)
    except Exception as e:  # noqa: BLE001 (reported, not raised: compilation is an optional speed-up)
        return CompileResult(None, time.perf_counter() - start, _first_line(e)[:ERROR_CHARS])
    return CompileResult(compiled, time.perf_counter() - start)

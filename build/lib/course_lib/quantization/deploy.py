"""Real integer inference: PyTorch's int8 kernels, next to the fake-quantized simulation.

Two paths exist in PyTorch 2.x on a CPU:

- ``torch.ao.quantization`` FX graph mode static quantization (:func:`int8_static_fx`): BatchNorm
  fused, ``Conv2d``/``Linear`` (+ReLU) replaced by quantized modules running the x86 (fbgemm/onednn)
  int8 kernels on ``quint8`` activations and per-channel ``qint8`` weights. It is **deprecated**
  (it warns that it will be removed in favour of torchao and ``torch.export``-based flows) but still works.
- torchao's ``quantize_(model, Int8DynamicActivationInt8WeightConfig())`` and friends: they act on
  ``nn.Linear`` only (convolutions are skipped silently) and, in eager mode on a CPU, are not always
  faster; the chapter measures both.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def int8_static_fx(model: nn.Module, batches: Iterable, example_input: torch.Tensor, backend: str = "x86",
                   num_batches: int | None = 8) -> torch.fx.GraphModule:
    """A copy of ``model`` converted to real int8 kernels by ``torch.ao`` FX static quantization.

    Args:
        model: a float model whose ``forward`` FX can trace (no Python control flow on tensor values or
            shapes; for :class:`course_lib.models.ConvNet` pass ``nn.Sequential(m.features, m.classifier)``).
        batches: calibration batches (tensors or ``(inputs, targets)`` pairs), on the CPU.
        example_input: one input batch, used for tracing.
        backend: ``"x86"`` (default, fbgemm + onednn) or ``"fbgemm"``, ``"qnnpack"`` (ARM).
        num_batches: how many calibration batches to run (``None``: all).

    Returns:
        The converted ``GraphModule`` (CPU only), with quantized weights in its ``state_dict``.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if backend not in ("x86", "fbgemm", "qnnpack"):
        raise ValueError(f"backend must be 'x86', 'fbgemm' or 'qnnpack', got {backend!r}")
    if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int)
                                    or num_batches < 1):
        raise ValueError(f"num_batches must be a positive integer or None, got {num_batches!r}")
    torch.backends.quantized.engine = backend
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of torch.ao.quantization, said in the docstring
        try:
            prepared = prepare_fx(model, get_default_qconfig_mapping(backend), (example_input,))
        except torch.fx.proxy.TraceError as e:
            raise ValueError(f"FX cannot trace {type(model).__name__}.forward ({e}); pass a model without "
                             "Python control flow on its inputs, e.g. nn.Sequential(m.features, m.classifier)") from e
        seen = 0
        for batch in batches:
            prepared(batch[0] if isinstance(batch, (tuple, list)) else batch)
            seen += 1
            if num_batches is not None and seen >= num_batches:
                break
        if seen == 0:
            raise ValueError("batches is empty: calibration needs at least one batch")
        return convert_fx(prepared)

"""Hardware: where a model runs and in which memory layout.

- Device: :func:`course_lib.training.pick_device` chooses CUDA, then Apple MPS, then the CPU; moving the
  model and each batch there is all the code changes (``model.to(device)``, ``x.to(device)``).
- Memory layout: ``channels_last`` (NHWC) stores the channels of one pixel next to each other, the layout
  that oneDNN convolutions on CPUs and Tensor Cores on GPUs prefer; :func:`to_channels_last` converts a
  model, and its inputs must be converted too (``x.to(memory_format=torch.channels_last)``).
- Integer kernels: int8 matrix products (x86 VNNI, ARM dot-product instructions, GPU int8 Tensor Cores)
  do four times the work per instruction of fp32; the quantization chapter (``course_lib.quantization``)
  converts models to real int8 kernels and measures them.
"""
from __future__ import annotations

import torch
from torch import nn

from .._validation import copy_model, verb
from ..training import pick_device


@verb
def to_channels_last(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose 4-D parameters and buffers use ``torch.channels_last`` memory format."""
    return copy_model(model).to(memory_format=torch.channels_last)


def describe_device(device: str | torch.device | None = None) -> dict[str, object]:
    """The device :func:`pick_device` selects and what it offers: name, count, memory (GiB) and CPU threads."""
    device = pick_device(device)
    info: dict[str, object] = {"device": str(device), "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, count=torch.cuda.device_count(),
                    memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
    return info

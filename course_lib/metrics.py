"""Measurement: parameter counts, serialized size and the work of each layer (MACs).

Latency is measured by the one timing helper, :mod:`course_lib.timing` (:func:`~course_lib.timing.compare_latency`,
:func:`~course_lib.timing.speedup`).
"""
from __future__ import annotations

import io

import torch
from torch import nn

from ._validation import check_int, check_module, check_tensor, reads_model, select_layers
from .training import evaluating, model_device

DEFAULT_IMAGE_SIZE = 28  # side of the example images when a model does not say (MNIST, the course's data)


@reads_model
def random_images(model: nn.Module, batch_size: int = 1, *, seed: int = 0) -> torch.Tensor:
    """Uniform random images ``(batch_size, C, S, S)`` in ``[0, 1)`` of the size ``model`` expects, on the CPU.

    ``C`` is ``model.in_channels``, else the input channels of its first Conv2d, else 1; ``S`` is
    ``model.image_size``, else :data:`DEFAULT_IMAGE_SIZE`. Drawn from a generator seeded with ``seed``.
    """
    check_module(model)
    check_int(batch_size, "batch_size", 1)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = getattr(model, "in_channels", first_conv.in_channels if first_conv is not None else 1)
    side = getattr(model, "image_size", DEFAULT_IMAGE_SIZE)
    return torch.rand(batch_size, channels, side, side, generator=torch.Generator().manual_seed(seed))


@reads_model
def count_parameters(model: nn.Module) -> int:
    """Number of parameter entries (trainable or not; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in check_module(model).parameters())


@reads_model
def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the model as actually serialized."""
    buffer = io.BytesIO()
    torch.save(check_module(model).state_dict(), buffer)
    return buffer.getbuffer().nbytes


@reads_model
def layer_macs(model: nn.Module, example_input: torch.Tensor | None = None) -> dict[str, int]:
    """Multiply-accumulates of each Linear and Conv2d layer for ONE input, the work a dense kernel does.

    A Linear layer does ``in_features * out_features``; a convolution ``C_out * (C_in / groups) * kh * kw``
    per output position, times its ``H_out * W_out`` positions (read from one forward pass in eval mode):
    half the FLOPs ``torch.utils.flop_counter.FlopCounterMode`` counts for the layer's matrix product or
    convolution (one multiply and one add per MAC; biases not counted). Zeros in a weight count like any other
    value: this is what unstructured sparsity leaves unchanged and channel pruning reduces. Removing a fraction
    $r$ of the channels of a convolution whose input channels were also cut by $r$ leaves $(1-r)^2$ of its work;
    the first convolution (its input is the image) and the first Linear layer after the convolutions keep $(1-r)$.

    Args:
        model: any module; not modified (its train/eval modes are restored).
        example_input: one input batch; default one random image of the size the model expects
            (:func:`random_images`). The counts are per input, whatever the batch size.

    Returns:
        Layer name -> multiply-accumulates per input, for every Linear and Conv2d layer the forward calls.
    """
    check_module(model)
    x = random_images(model) if example_input is None else check_tensor(example_input, "example_input", min_dim=1)
    macs: dict[str, int] = {}

    def count(name: str):
        def hook(module: nn.Module, _: tuple, output: torch.Tensor) -> None:
            positions = output.shape[-2] * output.shape[-1] if isinstance(module, nn.Conv2d) else 1
            macs[name] = macs.get(name, 0) + module.weight.numel() * positions
        return hook

    handles = [m.register_forward_hook(count(name)) for name, m in select_layers(model, None).items()]
    try:
        with torch.no_grad(), evaluating(model):
            model(x[:1].to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return macs

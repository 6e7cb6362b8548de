"""Real integer inference: PyTorch 2's int8 path on a CPU, next to the fake-quantized simulation.

PT2E quantization (PyTorch 2 Export), maintained in torchao: the model is captured as a graph with
``torch.export``, ``prepare_pt2e`` inserts observers where ``X86InductorQuantizer`` says (int8 activations,
per-channel int8 weights, Conv/Linear fused with the ReLU after them), calibration batches run through it,
``convert_pt2e`` replaces the observers by quantize/dequantize pairs, and ``torch.compile`` with Inductor's
*freezing* lowers each ``dequantize -> conv -> quantize`` pattern to one oneDNN int8 kernel with pre-packed
weights (:func:`compile_int8`). Without compilation the converted graph computes the same integer
arithmetic with reference quantize/dequantize operators (:func:`convert_int8`): right numbers, no speed.

This replaces ``torch.ao.quantization``'s FX graph mode (``prepare_fx``/``convert_fx``), which PyTorch has
deprecated in favour of this path. Only linear layers are quantized by torchao's eager ``quantize_``
configurations, which is why the convolution-heavy teacher needs the graph path.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .._validation import check_int, check_loader, check_module, check_tensor, copy_model, plain_weights, verb
from ..acceleration import try_compile
from .ptq import calibration_inputs


@verb
@torch.no_grad()
def convert_int8(model: nn.Module, batches: Iterable, *, example_input: torch.Tensor,
                 num_batches: int | None = 8) -> nn.Module:
    """A PT2E int8 version of ``model`` (``torch.export`` graph, quantize/dequantize operators), not compiled.

    Args:
        model: a float model that ``torch.export`` can capture (any batch size: the batch dimension is
            exported as dynamic); left untouched. Parametrized weights (pruning masks, shared weights) are
            quantized as the plain weights they compute.
        batches: calibration batches (tensors or ``(inputs, targets)`` pairs), on the CPU.
        example_input: one input batch, used for the export.
        num_batches: how many calibration batches to run (``None``: all).

    Returns:
        The converted graph module, on the CPU, in eval mode (``.eval()``/``.train()`` are allowed on it).
    """
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    check_module(model)
    check_loader(batches, "batches")
    check_tensor(example_input, "example_input", floating=True, min_dim=1)
    if num_batches is not None:
        check_int(num_batches, "num_batches (None or an integer)", 1)
    float_model = plain_weights(copy_model(model)).cpu().eval()  # PT2E quantizes plain weight tensors
    batch = torch.export.Dim("batch")
    exported = torch.export.export(float_model, (example_input.cpu(),), dynamic_shapes=({0: batch},)).module()
    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    for inputs in calibration_inputs(batches, num_batches):
        prepared(inputs.cpu())
    converted = convert_pt2e(prepared)
    _drop_unused_tensors(converted)
    allow_exported_model_train_eval(converted)
    return converted


def _drop_unused_tensors(graph_module: torch.fx.GraphModule) -> None:
    """Delete the parameters and buffers the graph no longer reads (the float weights that ``convert_pt2e``
    replaced by int8 copies), so that the module's ``state_dict`` holds what the int8 model needs."""
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    names = [name for name, _ in graph_module.named_parameters()] + [name for name, _ in graph_module.named_buffers()]
    for name in names:
        if name not in used:
            owner, _, attribute = name.rpartition(".")
            delattr(graph_module.get_submodule(owner), attribute)


@verb
def compile_int8(model: nn.Module, batches: Iterable, *, example_input: torch.Tensor,
                 num_batches: int | None = 8) -> nn.Module:
    """``model`` quantized to int8 by PT2E (:func:`convert_int8`) and compiled with Inductor's freezing on.

    Arguments as in :func:`convert_int8`. The first call, on ``example_input``, compiles (seconds) for that
    shape; each new input shape compiles again on its first call. Freezing is switched on around each call
    only (:class:`course_lib.acceleration.compiling.Frozen`), so no global setting is left changed; with it,
    Inductor pre-packs the int8 weights and lowers each quantized Conv2d/Linear (with its ReLU) to one oneDNN
    int8 kernel (``onednn.qconv_pointwise``, ``onednn.qlinear_pointwise``). Compile with the intra-op thread
    count the model will run with: Inductor shapes its loops for the count it sees. RuntimeError if
    compilation fails (int8 kernels need Inductor, hence a C++ compiler).
    """
    converted = convert_int8(model, batches, example_input=example_input, num_batches=num_batches)
    result = try_compile(converted, example_input.cpu(), freezing=True)
    if result.model is None:
        raise RuntimeError(f"torch.compile failed on the int8 model ({result.error}); the int8 kernels need "
                           "Inductor and a working C++ compiler. convert_int8 gives the uncompiled model.")
    return result.model

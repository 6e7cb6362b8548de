"""Real integer inference: PyTorch 2's int8 path on a CPU, next to the fake-quantized simulation.

PT2E quantization (PyTorch 2 Export), maintained in torchao: the model is captured as a graph with
``torch.export``, ``prepare_pt2e`` inserts observers where ``X86InductorQuantizer`` says (int8 activations,
per-channel int8 weights, Conv/Linear fused with the ReLU after them), calibration batches run through it,
``convert_pt2e`` replaces the observers by quantize/dequantize pairs, and ``torch.compile`` with Inductor's
*freezing* lowers each ``dequantize -> conv -> quantize`` pattern to one oneDNN int8 kernel with pre-packed
weights (:func:`compile_int8`), and each max-pool runs on the uint8 codes themselves (:func:`_pool_on_codes`).
Without compilation the converted graph computes the same integer
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


def _pool_on_codes(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite each ``quantize(max_pool2d(dequantize(c)))`` of a converted PT2E graph into ``max_pool2d(c)``.

    With codes ``c`` (uint8), scale ``s > 0`` and zero point ``z`` shared by the dequantize and the quantize,
    ``dequantize(c) = s (c - z)`` is increasing, so it commutes with a maximum, and ``quantize`` undoes it:
    ``quantize(max_i s (c_i - z)) = max_i c_i``. The result is exactly the same codes, from a max-pool over
    bytes that Inductor generates and fuses with the code around it, instead of a call to PyTorch's
    ``quantized.max_pool2d`` that reads and writes the whole activation on its own (about a tenth of the int8
    teacher's time at batch 256). Pools whose quantize uses other parameters, or whose result has other users,
    are left as they are. Changes ``graph_module`` in place and returns it.
    """
    import torch.ao.quantization.fx._decomposed  # noqa: F401 - registers the quantized_decomposed operators

    graph, rewritten = graph_module.graph, False
    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    for pool in list(graph.nodes):
        if pool.target is not torch.ops.aten.max_pool2d.default:
            continue
        source, users = pool.args[0], list(pool.users)
        if (not isinstance(source, torch.fx.Node) or source.target is not dequantize or len(users) != 1
                or users[0].target is not quantize or tuple(users[0].args[1:]) != tuple(source.args[1:])
                or users[0].kwargs or source.kwargs or not isinstance(source.args[1], float)
                or not source.args[1] > 0):
            continue
        with graph.inserting_after(pool):
            on_codes = graph.call_function(torch.ops.aten.max_pool2d.default, (source.args[0], *pool.args[1:]),
                                           dict(pool.kwargs))
        users[0].replace_all_uses_with(on_codes)
        graph.erase_node(users[0])
        graph.erase_node(pool)
        if not source.users:
            graph.erase_node(source)
        rewritten = True
    if rewritten:
        graph.lint()
        graph_module.recompile()
    return graph_module


@verb
def compile_int8(model: nn.Module, batches: Iterable, *, example_input: torch.Tensor,
                 num_batches: int | None = 8) -> nn.Module:
    """``model`` quantized to int8 by PT2E (:func:`convert_int8`) and compiled with Inductor's freezing on.

    Arguments as in :func:`convert_int8`; the max-pools then run on the uint8 codes (:func:`_pool_on_codes`: the same
    codes, faster). The first call, on ``example_input``, compiles (seconds) for that
    shape; each new input shape compiles again on its first call. Freezing is switched on around each call
    only (:class:`course_lib.acceleration.compiling.Frozen`), so no global setting is left changed; with it,
    Inductor pre-packs the int8 weights and lowers each quantized Conv2d/Linear (with its ReLU) to one oneDNN
    int8 kernel (``onednn.qconv_pointwise``, ``onednn.qlinear_pointwise``). Compile with the intra-op thread
    count the model will run with: Inductor shapes its loops for the count it sees. RuntimeError if
    compilation fails (int8 kernels need Inductor, hence a C++ compiler).
    """
    converted = _pool_on_codes(convert_int8(model, batches, example_input=example_input, num_batches=num_batches))
    result = try_compile(converted, example_input.cpu(), freezing=True)
    if result.model is None:
        raise RuntimeError(f"torch.compile failed on the int8 model ({result.error}); the int8 kernels need "
                           "Inductor and a working C++ compiler. convert_int8 gives the uncompiled model.")
    return result.model

"""The references written for the exercises, each against an independent reference: a plain optimizer step,
the original network's output, PyTorch's own quantized linear layer, autograd."""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.compression import centroid_gradient
from course_lib.pruning import masked_step, prune_channels, remove_channels
from course_lib.quantization import Int8Kernel, int8_kernel, quantized_linear, saturating_linear

# --- masked_step ---------------------------------------------------------------------------------------------

def _pruned_net(seed: int = 0) -> tuple[nn.Sequential, dict[str, torch.Tensor], torch.optim.Optimizer]:
    """A BatchNorm network, half of each weight matrix zeroed, with an SGD optimizer that has momentum."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(3):  # dense training: the momentum buffers are not zero
        loss = F.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 3, (16,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    masks = {name: (torch.rand(p.shape) > 0.5).float() for name, p in model.named_parameters() if p.dim() == 2}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    return model, masks, optimizer


def test_masked_step_is_a_plain_step_with_the_pruned_weights_reset_to_zero():
    inputs, labels = torch.randn(16, 5), torch.randint(0, 3, (16,))
    model, masks, optimizer = _pruned_net()
    plain_model, _, plain_optimizer = _pruned_net()
    plain_model.train()
    expected_loss = F.cross_entropy(plain_model(inputs), labels)
    plain_optimizer.zero_grad()
    expected_loss.backward()
    plain_optimizer.step()
    revived = sum(int(((m == 0) & (dict(plain_model.named_parameters())[n] != 0)).sum()) for n, m in masks.items())
    assert revived > 0  # momentum and weight decay move the zeros: what the mask must undo
    model.eval()  # the step must train in train mode anyway
    loss = masked_step(model, masks, inputs, labels, optimizer)
    assert loss == pytest.approx(expected_loss.item(), rel=1e-6)
    params, plain = dict(model.named_parameters()), dict(plain_model.named_parameters())
    for name, p in params.items():
        expected = plain[name].detach() * masks[name] if name in masks else plain[name].detach()
        torch.testing.assert_close(p.detach(), expected)
    torch.testing.assert_close(model[1].running_mean, plain_model[1].running_mean)  # BatchNorm saw a train step


@pytest.mark.parametrize("bad, match", [({"0.weights": torch.ones(8, 5)}, "masks must be keyed"),
                                        ({"0.weight": torch.ones(5, 8)}, r"masks\['0.weight'\] must have the shape")])
def test_masked_step_refuses_bad_masks_before_changing_anything(bad, match):
    model, _, optimizer = _pruned_net()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=match):
        masked_step(model, bad, torch.randn(4, 5), torch.randint(0, 3, (4,)), optimizer)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(TypeError, match="masks must be a mapping"):
        masked_step(model, [torch.ones(8, 5)], torch.randn(4, 5), torch.randint(0, 3, (4,)), optimizer)


# --- remove_channels -----------------------------------------------------------------------------------------

def _block(seed: int = 0, bias: bool = True) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    torch.manual_seed(seed)
    conv, bn, nxt = nn.Conv2d(3, 6, 3, padding=1, bias=bias), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 3, stride=2)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return conv.eval(), bn.eval(), nxt.eval()


def _run(conv, bn, nxt, x):
    with torch.no_grad():
        return nxt(F.relu(bn(conv(x))))


def test_removing_silent_channels_keeps_the_output_and_the_original_layers():
    conv, bn, nxt = _block()
    keep = torch.tensor([4, 0, 2])  # any order: the next layer reads the channels in the same order
    with torch.no_grad():
        bn.weight[[1, 3, 5]] = 0.0
        bn.bias[[1, 3, 5]] = -1.0  # negative: ReLU silences these channels
    before = [copy.deepcopy(m.state_dict()) for m in (conv, bn, nxt)]
    small = remove_channels(conv, bn, nxt, keep)
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(_run(*small, x), _run(conv, bn, nxt, x))
    assert [m.weight.shape[0] for m in small[:2]] == [3, 3] and small[2].weight.shape == (4, 3, 3, 3)
    assert (small[2].stride, small[0].padding, small[1].eps, small[0].training) == ((2, 2), (1, 1), bn.eps, False)
    for module, state in zip((conv, bn, nxt), before):
        for k, v in module.state_dict().items():
            assert torch.equal(v, state[k])


def test_remove_channels_matches_prune_channels_on_a_small_cnn():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 8 * 8, 3)).eval()
    with torch.no_grad():
        model[1].running_mean.normal_()
        model[1].running_var.uniform_(0.5, 2.0)
    scores = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.8, 0.2])
    reference = prune_channels(model, sparsity=0.5, scores={"0": scores}, layers=["0"],
                               example_input=torch.randn(1, 1, 8, 8))
    small = remove_channels(model[0], model[1], model[3], torch.tensor([0, 2, 4]))
    for mine, theirs in zip(small, (reference[0], reference[1], reference[3])):
        for (k, v), (k2, v2) in zip(mine.state_dict().items(), theirs.state_dict().items()):
            assert k == k2 and torch.equal(v, v2), k


@pytest.mark.parametrize("keep, error, match", [
    (torch.tensor([0, 6]), ValueError, r"keep must hold channel indices in \[0, 6\)"),
    (torch.tensor([1, 1]), ValueError, "at most once"),
    (torch.tensor([], dtype=torch.int64), ValueError, "non-empty"),
    (torch.tensor([0.0, 1.0]), TypeError, "integer tensor"),
    ([0, 1], TypeError, "integer tensor")])
def test_remove_channels_refuses_bad_indices(keep, error, match):
    with pytest.raises(error, match=match):
        remove_channels(*_block(), keep)


def test_remove_channels_refuses_layers_that_do_not_chain():
    conv, bn, nxt = _block()
    with pytest.raises(ValueError, match="bn must have conv's 6 channels"):
        remove_channels(conv, nn.BatchNorm2d(5), nxt, torch.tensor([0]))
    with pytest.raises(TypeError, match="next_conv must be an nn.Conv2d"):
        remove_channels(conv, bn, nn.Linear(6, 2), torch.tensor([0]))


# --- quantized_linear ----------------------------------------------------------------------------------------

def _quantized_layer(seed: int, n: int = 16, inputs: int = 64, outputs: int = 10, activation_bits: int = 8):
    """A random layer in int8 codes; ``activation_bits=7`` uses the codes [-128, -1] only (``reduce_range``)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, inputs, generator=g) * 2 - 0.3
    w = torch.randn(outputs, inputs, generator=g) * 0.1
    b = torch.randn(outputs, generator=g) * 0.05
    levels = 2 ** activation_bits - 1
    x_scale = float(x.max() - x.min()) / levels
    x_zero = int(-128 - round(float(x.min()) / x_scale))
    w_scale = w.abs().amax(1) / 127
    x_q = torch.clamp(torch.round(x / x_scale) + x_zero, -128, -128 + levels).to(torch.int8)
    w_q = torch.round(w / w_scale[:, None]).to(torch.int8)
    y = (x_q.double() - x_zero) * x_scale @ (w_q.double() * w_scale[:, None].double()).t() + b.double()
    y_scale = float(y.max() - y.min()) / 255
    y_zero = int(-128 - round(float(y.min()) / y_scale))
    return x_q, x_scale, x_zero, w_q, w_scale, b, y_scale, y_zero, y


@pytest.mark.parametrize("seed", range(3))
def test_the_integer_layer_is_the_float_layer_on_the_output_grid(seed):
    """Dequantized, the integer output is the float layer's output on the dequantized inputs, rounded to the
    output grid: within half a step, plus the bias rounding (half a step of s_x s_w, far smaller)."""
    x_q, x_scale, x_zero, w_q, w_scale, b, y_scale, y_zero, y = _quantized_layer(seed)
    q = quantized_linear(x_q, x_scale, x_zero, w_q, w_scale, b, y_scale, y_zero)
    assert q.dtype == torch.int8 and q.shape == y.shape
    error = ((q.double() - y_zero) * y_scale - y).abs()
    bias_rounding = 0.5 * x_scale * float(w_scale.max())
    assert float(error.max()) <= 0.5 * y_scale + bias_rounding + 1e-9


ENGINES = [pytest.param(engine, marks=pytest.mark.skipif(
    engine not in torch.backends.quantized.supported_engines, reason=f"PyTorch offers no {engine} engine here"))
    for engine in ("x86", "onednn", "qnnpack")]
BELOW_VNNI = {  # FBGEMM and oneDNN forced to the kernels of CPUs without VNNI (AVX2), and without AVX2 (SSE4.1)
    "avx2": {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "sse41": {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}}


def _pytorch_linear(engine: str, x_q, x_scale, x_zero, w_q, w_scale, b, y_scale, y_zero) -> torch.Tensor:
    """The output codes of PyTorch's int8 ``Linear`` under ``engine``: activations are quint8, every code + 128."""
    ao = pytest.importorskip("torch.ao.nn.quantized")
    previous, torch.backends.quantized.engine = torch.backends.quantized.engine, engine
    try:
        layer = ao.Linear(w_q.shape[1], w_q.shape[0])
        zeros = torch.zeros(w_q.shape[0], dtype=torch.int64)
        layer.set_weight_bias(torch._make_per_channel_quantized_tensor(w_q, w_scale.double(), zeros, 0), b)
        layer.scale, layer.zero_point = y_scale, y_zero + 128
        x = torch._make_per_tensor_quantized_tensor((x_q.int() + 128).to(torch.uint8), x_scale, x_zero + 128)
        return layer(x).int_repr().int() - 128
    finally:
        torch.backends.quantized.engine = previous


def _kernel(engine: str) -> Int8Kernel:
    try:
        return int8_kernel({"x86": "fbgemm"}.get(engine, engine))
    except ValueError as error:  # FBGEMM's and oneDNN's kernels on a CPU that is not x86
        pytest.skip(str(error))


def _agree(theirs: torch.Tensor, mine: torch.Tensor) -> bool:
    """Within one code, at under 2% of the outputs: PyTorch adds the bias in float32 instead of as int32 codes, so a
    value close to a rounding tie may round the other way."""
    differ = (theirs.int() - mine.int()).abs()
    return int(differ.max()) <= 1 and int((differ > 0).sum()) <= differ.numel() // 50


@pytest.mark.parametrize("engine", ENGINES)
def test_the_integer_layer_agrees_with_pytorchs_quantized_linear(engine):
    """What PyTorch's int8 ``Linear`` computes depends on the kernel (``course_lib.quantization.kernels``):

    - with VNNI or AMX (FBGEMM, oneDNN), and with QNNPACK, the products are added in int32, exactly:
      PyTorch's layer is ``quantized_linear``;
    - without VNNI (FBGEMM on AVX2 or AVX-512 without VNNI; oneDNN there and on SSE4.1, the kernel of CPUs without
      AVX2, where PyTorch's default engine is oneDNN), neighbouring products are added in int16, with saturation:
      PyTorch's layer is ``saturating_linear``, several codes away from ``quantized_linear`` on this layer.

    Each up to the one code of the float32 bias. ``ATEN_CPU_CAPABILITY`` changes none of these kernels.
    """
    kernel = _kernel(engine)
    layer = _quantized_layer(7, n=32, inputs=128, outputs=24)[:8]  # 128 inputs: oneDNN pairs them as FBGEMM does
    reference = saturating_linear if kernel.saturates else quantized_linear
    assert _agree(_pytorch_linear(engine, *layer), reference(*layer)), f"{kernel} computes {reference.__name__}"


def test_the_layer_tells_the_exact_and_the_saturating_kernels_apart():
    layer = _quantized_layer(7, n=32, inputs=128, outputs=24)[:8]
    assert not _agree(saturating_linear(*layer), quantized_linear(*layer))


@pytest.mark.parametrize("engine", ENGINES)
def test_with_7_bit_activations_every_kernel_is_the_integer_layer(engine):
    """``reduce_range``: activations in [0, 127] once shifted by 128, so no pair of products passes
    2 * 127 * 128 = 32512 < 2**15 and the saturating kernels are exact too."""
    _kernel(engine)
    layer = _quantized_layer(7, n=32, inputs=128, outputs=24, activation_bits=7)[:8]
    assert int(layer[0].max()) <= -1 and torch.equal(saturating_linear(*layer), quantized_linear(*layer))
    assert _agree(_pytorch_linear(engine, *layer), quantized_linear(*layer))


@pytest.mark.slow
@pytest.mark.parametrize("forced", BELOW_VNNI.values(), ids=BELOW_VNNI)
def test_forced_below_vnni_pytorch_computes_the_saturating_layer(forced):
    """On any x86 CPU with AVX2 (with VNNI too): a process whose FBGEMM and oneDNN are forced to the kernels of
    CPUs without VNNI runs the saturating kernels, and the tests above hold there with ``saturating_linear``."""
    if not {"x86", "onednn"} <= set(torch.backends.quantized.supported_engines):
        pytest.skip("PyTorch offers no FBGEMM or no oneDNN engine here")
    environ = {**os.environ, **forced}
    assert all(int8_kernel(library, environ=environ).saturates for library in ("fbgemm", "onednn"))
    tests = [f"{__file__}::{name}[{engine}]" for engine in ("x86", "onednn") for name in (
        "test_the_integer_layer_agrees_with_pytorchs_quantized_linear",
        "test_with_7_bit_activations_every_kernel_is_the_integer_layer")]
    command = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_integer_layer_accumulates_without_overflow_and_clamps():
    x_q = torch.full((1, 4096), 127, dtype=torch.int8)
    w_q = torch.full((2, 4096), -128, dtype=torch.int8)
    q = quantized_linear(x_q, 1.0, -128, w_q, torch.tensor([1e-7, 1e-9]), None, 1.0, 0)
    # by hand: 4096 * (127 + 128) * (-128) = -133,693,440, which int16 could not hold
    assert q.tolist() == [[-13, 0]]
    assert quantized_linear(x_q, 1.0, -128, w_q, 1.0, None, 1.0, 0).tolist() == [[-128, -128]]


@pytest.mark.parametrize("args, error, match", [
    ((torch.ones(2, 3), 0.1, 0, torch.ones(2, 3, dtype=torch.int8), 0.1, None, 0.1, 0), TypeError,
     "x_q must be an int8"),
    ((torch.ones(2, 3, dtype=torch.int8), 0.1, 0, torch.ones(2, 3, dtype=torch.int32), 0.1, None, 0.1, 0), TypeError,
     "w_q must be an int8"),
    ((torch.ones(2, 4, dtype=torch.int8), 0.1, 0, torch.ones(2, 3, dtype=torch.int8), 0.1, None, 0.1, 0), ValueError,
     "x_q must have w_q's 3 input features"),
    ((torch.ones(2, 3, dtype=torch.int8), 0.1, 0, torch.ones(2, 3, dtype=torch.int8), torch.tensor([0.1, 0.0]), None,
      0.1, 0), ValueError, "w_scale must hold positive"),
    ((torch.ones(2, 3, dtype=torch.int8), 0.1, 200, torch.ones(2, 3, dtype=torch.int8), 0.1, None, 0.1, 0), ValueError,
     "x_zero_point"),
    ((torch.ones(2, 3, dtype=torch.int8), 0.1, 0, torch.ones(2, 3, dtype=torch.int8), 0.1, torch.ones(3), 0.1, 0),
     ValueError, r"bias must be None or a tensor of shape \(2,\)")])
def test_the_integer_layer_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        quantized_linear(*args)


# --- centroid_gradient ---------------------------------------------------------------------------------------

def test_the_centroid_gradient_is_what_autograd_gives_the_code_book():
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(16, generator=g, dtype=torch.float64, requires_grad=True)
    indices = torch.randint(0, 12, (30, 20), generator=g)  # codes 12..15 unused
    upstream = torch.randn(30, 20, generator=g, dtype=torch.float64)
    weight = codebook[indices]
    (weight * upstream).sum().backward()  # dL/dW = upstream
    torch.testing.assert_close(centroid_gradient(upstream, indices, 16), codebook.grad)
    pinned = centroid_gradient(upstream, indices, 16, skip_zeros=True)
    assert pinned[0] == 0 and torch.equal(pinned[1:], centroid_gradient(upstream, indices, 16)[1:])


@pytest.mark.parametrize("indices, error, match", [
    (torch.zeros(3, 2, dtype=torch.int64), ValueError, "indices must have weight_grad's shape"),
    (torch.full((2, 3), 4), ValueError, r"indices must lie in \[0, 4\)"),
    (torch.full((2, 3), -1), ValueError, r"indices must lie in \[0, 4\)"),
    (torch.zeros(2, 3), TypeError, "indices must be an integer tensor")])
def test_the_centroid_gradient_refuses_bad_indices(indices, error, match):
    with pytest.raises(error, match=match):
        centroid_gradient(torch.zeros(2, 3), indices, 4)

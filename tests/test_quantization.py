"""Tests of course_lib.quantization against independent references: PyTorch's own quantization ops,
the definitions of the affine map, brute-force scans and hand-worked cases."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_lib.acceleration import fold_batchnorm
from course_lib.quantization import (
    binarize,
    binarize_weights,
    binary_alpha,
    compile_int8,
    compute_qparams,
    dequantize,
    fake_quantize,
    post_training_quantize,
    quantization_aware_train,
    quantize,
)
from course_lib.quantization.deploy import _pool_on_codes, convert_int8
from course_lib.quantization.kernels import int8_kernel
from course_lib.quantization.observers import MinMaxObserver, MovingAverageObserver, MSEObserver, PercentileObserver
from course_lib.quantization.ptq import calibrate, prepare, quantize_weight
from course_lib.training import Trained


def _with_ties(n, scale, seed):
    """Random values, a third of them exactly halfway between two grid points (x / scale = k + 1/2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * 100 * scale
    ties = n // 3
    x[:ties] = (torch.randint(-300, 300, (ties,), generator=g).float() + 0.5) * scale
    return x


# --- quantize against PyTorch's kernels ---------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_quantize_matches_torch_per_tensor(seed):
    g = torch.Generator().manual_seed(seed)
    scale = float(torch.rand(1, generator=g) * 0.2 + 1e-3)
    x = _with_ties(3000, scale, seed)
    zero_point = int(torch.randint(-128, 128, (1,), generator=g))
    expected = torch.quantize_per_tensor(x, scale, zero_point, torch.qint8).int_repr().long()
    assert torch.equal(quantize(x, scale, zero_point), expected)
    expected = torch.quantize_per_tensor(x, scale, zero_point + 128, torch.quint8).int_repr().long()
    assert torch.equal(quantize(x, scale, zero_point + 128, signed=False), expected)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("seed", range(5))
def test_quantize_matches_torch_per_channel(axis, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 7, 40, generator=g) * 3
    channels = x.shape[axis]
    scale = torch.rand(channels, generator=g) * 0.05 + 1e-3
    zero_point = torch.randint(-10, 10, (channels,), generator=g)
    shape = [1] * 3
    shape[axis] = channels
    ties = (torch.randint(-200, 200, x.shape, generator=g).float() + 0.5) * scale.reshape(shape)
    x = torch.where(torch.rand(x.shape, generator=g) < 0.3, ties, x)
    expected = torch.quantize_per_channel(x, scale.double(), zero_point, axis % 3, torch.qint8).int_repr().long()
    assert torch.equal(quantize(x, scale, zero_point, axis=axis), expected)


def test_quantize_rounds_half_to_even_and_clamps():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0])
    assert quantize(x, 1.0, 0).tolist() == [0, 2, 2, 0, -2, 127, -128]
    assert quantize(x, 1.0, 3, bits=4, signed=False).tolist() == [3, 5, 5, 3, 1, 15, 0]


@pytest.mark.parametrize("bits,error", [(0, ValueError), (33, ValueError), (-1, ValueError), (4.0, TypeError),
                                        (True, TypeError), ("8", TypeError)])
def test_bits_outside_range_is_rejected(bits, error):
    with pytest.raises(error, match=r"bits must be an integer in \[1, 32\], got"):
        quantize(torch.zeros(3), 1.0, 0, bits=bits)
    with pytest.raises(error, match="bits"):
        compute_qparams(-1.0, 1.0, bits=bits)


def test_bad_arguments_are_rejected():
    x = torch.randn(4, 3)
    for kwargs, word, error in [
            (dict(scale=0.0, zero_point=0), "scale", ValueError), (dict(scale=-1.0, zero_point=0), "scale", ValueError),
            (dict(scale=1.0, zero_point=200), "zero_point", ValueError),
            (dict(scale=1.0, zero_point=0.5), "zero_point", TypeError),
            (dict(scale="1", zero_point=0), "scale", TypeError),
            (dict(scale=torch.ones(3), zero_point=torch.zeros(3, dtype=torch.long)), "axis", ValueError),
            (dict(scale=torch.ones(4), zero_point=torch.zeros(4, dtype=torch.long), axis=1), "shape", ValueError),
            (dict(scale=torch.ones(4), zero_point=torch.zeros(4, dtype=torch.long), axis=2), "axis", ValueError)]:
        with pytest.raises(error, match=word):
            quantize(x, **kwargs)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        quantize(torch.arange(3), 1.0, 0)
    with pytest.raises(ValueError, match="finite"):
        quantize(torch.tensor([float("nan")]), 1.0, 0)
    with pytest.raises(TypeError, match="integer tensor"):
        dequantize(torch.zeros(3), 1.0, 0)
    with pytest.raises(ValueError, match="x_min must be <= x_max"):
        compute_qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="signed"):
        compute_qparams(-1.0, 1.0, signed=False, symmetric=True)


# --- compute_qparams ----------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("signed", [True, False])
def test_qparams_zero_is_exactly_representable(bits, signed):
    g = torch.Generator().manual_seed(bits)
    x_min = -torch.rand(50, generator=g) * 10 + 2   # some ranges do not contain 0
    x_max = x_min + torch.rand(50, generator=g) * 10
    scale, zero_point = compute_qparams(x_min, x_max, bits, signed)
    q_min, q_max = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    assert ((zero_point >= q_min) & (zero_point <= q_max)).all()
    codes = quantize(torch.zeros(50, 1), scale, zero_point, bits, signed, axis=0)
    assert torch.equal(codes.squeeze(1), zero_point)
    assert (dequantize(codes, scale, zero_point, axis=0) == 0).all()
    # the (widened) range is covered: its ends are within one step of the grid's ends
    lo, hi = x_min.clamp(max=0), x_max.clamp(min=0)
    assert (scale * (q_min - zero_point) <= lo + scale).all() and (scale * (q_max - zero_point) >= hi - scale).all()


def test_qparams_match_torch_minmax_observer():
    from torch.ao.quantization.observer import MinMaxObserver as TorchMinMax
    x = torch.randn(1000) * 3 + 1
    for dtype, signed, qscheme, symmetric in [(torch.quint8, False, torch.per_tensor_affine, False),
                                              (torch.qint8, True, torch.per_tensor_affine, False),
                                              (torch.qint8, True, torch.per_tensor_symmetric, True)]:
        ref = TorchMinMax(dtype=dtype, qscheme=qscheme)
        ref(x)
        ref_scale, ref_zp = ref.calculate_qparams()
        scale, zero_point = compute_qparams(x.min(), x.max(), 8, signed, symmetric)
        assert torch.allclose(scale, ref_scale.reshape(()), rtol=1e-6) and int(zero_point) == int(ref_zp)


def test_symmetric_qparams_have_zero_zero_point():
    scale, zero_point = compute_qparams(torch.tensor([-3.0, -0.1, 0.0]), torch.tensor([1.0, 5.0, 0.0]), 4,
                                        symmetric=True)
    assert (zero_point == 0).all()
    assert torch.allclose(scale[:2], torch.tensor([3.0, 5.0]) / 7.5)


def test_qparams_hand_worked():
    # [-1, 3] on 8 unsigned bits: s = 4 / 255, z = 0 - round(-1 / s) = round(63.75) = 64
    scale, zero_point = compute_qparams(-1.0, 3.0, 8, signed=False)
    assert scale.item() == pytest.approx(4 / 255) and zero_point.item() == 64


# --- dequantize and the rounding error ----------------------------------------------------------

@pytest.mark.parametrize("bits", [3, 8, 12])
def test_round_trip_error_is_at_most_half_a_step_inside_the_range(bits):
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(5000, generator=g) * 2
    scale, zero_point = compute_qparams(x.min(), x.max(), bits, signed=False)
    error = (dequantize(quantize(x, scale, zero_point, bits, False), scale, zero_point) - x).abs()
    assert error.max() <= scale / 2 * (1 + 1e-4)


def test_rounding_error_variance_is_step_squared_over_12():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g)
    scale, zero_point = compute_qparams(-6.0, 6.0, 10, signed=True, symmetric=True)
    error = fake_quantize(x, scale, zero_point, 10) - x
    assert error.var().item() == pytest.approx(scale.item() ** 2 / 12, rel=0.02)


def test_dequantize_matches_torch():
    x = torch.randn(100)
    qx = torch.quantize_per_tensor(x, 0.03, 5, torch.qint8)
    assert torch.equal(dequantize(qx.int_repr(), 0.03, 5), qx.dequantize())


# --- fake_quantize and the straight-through estimator --------------------------------------------

@pytest.mark.parametrize("signed", [True, False])
def test_fake_quantize_value_and_gradient_match_torch(signed):
    scale, zero_point = 0.05, (3 if signed else 130)
    q_min, q_max = (-128, 127) if signed else (0, 255)
    x = _with_ties(3000, scale, 1)  # ties, values inside the range and clamped ones
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = fake_quantize(x1, scale, zero_point, 8, signed)
    ref = torch.fake_quantize_per_tensor_affine(x2, scale, zero_point, q_min, q_max)
    assert torch.equal(ours, ref)
    upstream = torch.randn(x.shape)
    ours.backward(upstream)
    ref.backward(upstream)
    assert torch.equal(x1.grad, x2.grad)
    assert 0 < (x1.grad == 0).sum() < len(x)  # both regimes were exercised


def test_fake_quantize_per_channel_matches_torch():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 30, generator=g) * 4).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    scale = torch.rand(8, generator=g) * 0.02 + 0.005
    zero_point = torch.randint(-5, 5, (8,), generator=g)
    ours = fake_quantize(x, scale, zero_point, 4, axis=0)
    ref = torch.fake_quantize_per_channel_affine(x_ref, scale, zero_point.int(), 0, -8, 7)
    assert torch.equal(ours, ref)
    ours.sum().backward()
    ref.sum().backward()
    assert torch.equal(x.grad, x_ref.grad)


# --- binary weights -----------------------------------------------------------------------------

def test_alpha_mean_abs_minimises_the_binary_error():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, 3, 3, generator=g) * 0.1
    alpha = binary_alpha(w).flatten()
    for c in range(4):
        signs = torch.where(w[c] >= 0, 1.0, -1.0)
        grid = torch.linspace(0, 0.3, 30001)
        errors = ((w[c].flatten()[None] - grid[:, None] * signs.flatten()[None]) ** 2).sum(1)
        assert alpha[c].item() == pytest.approx(grid[errors.argmin()].item(), abs=2e-5)
        # and the signs are optimal for that alpha: flipping any one increases the error
        best = ((w[c] - alpha[c] * signs) ** 2).sum()
        flipped = ((w[c] - alpha[c] * signs).flatten()[None].repeat(signs.numel(), 1)
                   + 2 * alpha[c] * torch.diag(signs.flatten())).pow(2).sum(1)
        assert (flipped >= best).all()


def test_binarize_values_and_ste_gradient():
    w = torch.tensor([[0.2, -0.4, 0.0, 1.5]], requires_grad=True)
    out = binarize(w, per_channel=False, scaled=False)
    assert out.tolist() == [[1.0, -1.0, 1.0, 1.0]]
    out.sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0, 1.0, 0.0]]  # hard-tanh STE: zero where |w| > 1
    scaled = binarize(w.detach(), per_channel=True)
    assert torch.allclose(scaled, torch.tensor([[0.525, -0.525, 0.525, 0.525]]))


def test_binarize_weights_binarizes_the_chosen_layers_of_a_copy():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    weights = [model[i].weight.detach().clone() for i in (0, 2, 4)]
    binary = binarize_weights(model, layers=["2"])
    assert all(torch.equal(model[i].weight, w) for i, w in zip((0, 2, 4), weights))  # the argument is untouched
    assert torch.equal(binary[0].weight, weights[0]) and torch.equal(binary[4].weight, weights[2])
    w = binary[2].weight
    assert torch.equal(w, binarize(weights[1]))
    assert torch.allclose(w.abs(), w.abs().amax(1, keepdim=True).expand_as(w))  # +-alpha per row
    assert all(len(torch.unique(binarize_weights(model)[i].weight.abs())) <= 8 for i in (0, 2, 4))
    with pytest.raises(ValueError, match="already parametrized"):
        binarize_weights(binary)
    with pytest.raises(ValueError, match="'1' is not among them"):
        binarize_weights(model, layers=["1"])


# --- observers ----------------------------------------------------------------------------------

def test_observers_ranges():
    x = torch.cat([torch.linspace(-1, 1, 10001), torch.tensor([50.0])])
    minmax = MinMaxObserver(bits=8)
    minmax(x[:5000])
    minmax(x[5000:])
    assert minmax.range()[0].item() == -1 and minmax.range()[1].item() == 50
    percentile = PercentileObserver(bits=8, percentile=99.0)
    percentile(x)
    assert percentile.range()[1].item() == pytest.approx(torch.quantile(x, 0.99).item())
    mse = MSEObserver(bits=4, signed=True, symmetric=True)
    mse(x)
    assert mse.range()[1].item() < 10  # the outlier is clipped: it would make every step 50/7.5
    moving = MovingAverageObserver(bits=8, momentum=0.5)
    moving(torch.tensor([0.0, 2.0]))
    moving(torch.tensor([0.0, 4.0]))
    assert moving.range()[1].item() == 3.0
    with pytest.raises(ValueError, match="observed"):
        MinMaxObserver().calculate_qparams()


def test_per_channel_observer_matches_compute_qparams():
    w = torch.randn(5, 3, 2, 2)
    obs = MinMaxObserver(bits=8, signed=True, symmetric=True, axis=0)
    obs(w)
    scale, zero_point = obs.calculate_qparams()
    ref_scale, _ = compute_qparams(w.flatten(1).amin(1), w.flatten(1).amax(1), 8, True, True)
    assert torch.equal(scale, ref_scale) and (zero_point == 0).all()


# --- model level --------------------------------------------------------------------------------

def _tiny_convnet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    return model.eval()


def test_fold_batchnorm_preserves_outputs():
    model = _tiny_convnet()
    x = torch.randn(5, 1, 6, 6)
    folded = fold_batchnorm(model)
    assert isinstance(folded[1], nn.Identity)
    assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_ptq_at_16_bits_is_nearly_exact_and_matches_manual_fake_quantization():
    model = _tiny_convnet()
    x = torch.randn(32, 1, 6, 6)
    q = post_training_quantize(model, [x], bits=16, activation_bits=16)
    assert torch.allclose(q(x), model(x), atol=1e-3)
    q8 = post_training_quantize(model, [x], bits=8, activation_bits=8, per_channel=False)
    folded = fold_batchnorm(model)
    conv, lin = folded[0], folded[4]
    s, z = compute_qparams(x.min(), x.max(), 8, signed=False)
    h = fake_quantize(x, s, z, 8, signed=False)
    ws, wz = compute_qparams(conv.weight.min(), conv.weight.max(), 8, True, True)
    h = torch.relu(nn.functional.conv2d(h, fake_quantize(conv.weight, ws, wz), conv.bias, padding=1)).flatten(1)
    h_float = torch.relu(conv(x)).flatten(1)  # calibration observes the floating-point activations
    s, z = compute_qparams(h_float.min(), h_float.max(), 8, signed=False)
    ws, wz = compute_qparams(lin.weight.min(), lin.weight.max(), 8, True, True)
    expected = nn.functional.linear(fake_quantize(h, s, z, 8, signed=False), fake_quantize(lin.weight, ws, wz),
                                    lin.bias)
    assert torch.allclose(q8(x), expected, atol=1e-5)


def test_one_bit_weights_are_alpha_sign_per_channel_or_per_tensor():
    model = _tiny_convnet()
    x = torch.randn(8, 1, 6, 6)
    folded = fold_batchnorm(model)
    for per_channel in (True, False):
        q = post_training_quantize(model, [x], bits=1, activation_bits=None, per_channel=per_channel)
        for wrapped, layer in ((q[0], folded[0]), (q[4], folded[4])):
            w = layer.weight.detach()
            flat = w.reshape(w.shape[0], -1)
            alpha = flat.abs().mean(1) if per_channel else flat.abs().mean().expand(w.shape[0])
            expected = alpha[:, None] * torch.where(flat >= 0, 1.0, -1.0)  # mean|w| * sign(w), by hand
            got = quantize_weight(wrapped.layer.weight, 1, per_channel).detach().reshape_as(flat)
            assert torch.allclose(got, expected)
            assert len(torch.unique(got.abs())) == (w.shape[0] if per_channel else 1)
        with torch.no_grad():
            h = torch.relu(nn.functional.conv2d(x, quantize_weight(folded[0].weight, 1, per_channel), folded[0].bias,
                                                padding=1)).flatten(1)
            expected = nn.functional.linear(h, quantize_weight(folded[4].weight, 1, per_channel), folded[4].bias)
            assert torch.allclose(q(x), expected, atol=1e-5)


def test_prepare_and_calibrate_errors():
    model = _tiny_convnet()
    with pytest.raises(ValueError, match="observer must be one of 'minmax'"):
        prepare(model, observer="bogus")
    with pytest.raises(ValueError, match="FakeQuantized"):
        calibrate(model, [torch.randn(2, 1, 6, 6)])
    with pytest.raises(ValueError, match="empty"):
        calibrate(prepare(model), [])
    with pytest.raises(TypeError, match="observer_kwargs"):
        post_training_quantize(model, [torch.randn(2, 1, 6, 6)], observer="percentile", observer_kwargs=99.9)
    # before: a raw "Observer.__init__() got an unexpected keyword argument" from inside prepare
    with pytest.raises(ValueError, match=r"observer_kwargs must name keyword arguments of the 'percentile' observer, "
                                         r"PercentileObserver \(symmetric, axis, percentile, max_samples, seed\); "
                                         "'bogus' is not among them"):
        post_training_quantize(model, [torch.randn(2, 1, 6, 6)], observer="percentile", observer_kwargs={"bogus": 1})
    with pytest.raises(ValueError, match="'bits' is not among them"):  # the layer sets the activation codes
        prepare(model, observer_kwargs={"bits": 4})
    with pytest.raises(TypeError, match="batches must be an iterable of batches such as a DataLoader, got None"):
        post_training_quantize(model, None)
    prepared = prepare(model)
    calibrated = calibrate(prepared, [torch.randn(2, 1, 6, 6)], num_batches=1)
    assert prepared[0].calibrating and not calibrated[0].calibrating  # calibrate returns a copy


def test_qat_trains_the_shadow_weights():
    model = _tiny_convnet()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 6, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    result = quantization_aware_train(model, loader, epochs=3, bits=4, activation_bits=4, lr=1e-2,
                                      progress=False, device="cpu")
    assert isinstance(result, Trained) and not result.model.training
    assert len(result.history.loss) == 3 and result.history.loss[-1] < result.history.loss[0]
    assert not torch.equal(result.model[0].layer.weight, fold_batchnorm(model)[0].weight)
    assert isinstance(model[1], nn.BatchNorm2d)  # the argument is untouched


def _int8_pair():
    """The tiny conv net with a 2x2 max-pool after its ReLU (PT2E quantizes the pool on int8), and an input."""
    tiny = _tiny_convnet()
    model = nn.Sequential(*tiny[:3], nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)).eval()
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    return model, x


@pytest.mark.slow  # torch.export, prepare_pt2e and convert_pt2e capture and rewrite graphs (seconds)
def test_pt2e_int8_graph_uses_quantize_ops_and_matches_fp32():
    model, x = _int8_pair()
    q = convert_int8(model, [x], example_input=x)
    ops = {str(n.target) for n in q.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in op for op in ops) and any("dequantize_per_channel" in op for op in ops)
    with torch.no_grad():
        out, ref = q(x), model(x)
        assert q(x[:5]).shape == (5, 3)  # the batch dimension is dynamic
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    assert isinstance(model[1], nn.BatchNorm2d)
    weights = [t for t in q.state_dict().values() if t.dim() > 1]  # the float weights it replaced are gone
    assert weights and all(t.dtype == torch.int8 for t in weights)


@pytest.mark.parametrize("scale, zero_point", [(0.02, 0), (0.5, 7), (1e-3, 255), (3.0, 128)])
def test_a_max_pool_commutes_with_dequantize_and_quantize_undoes_it(scale, zero_point):
    """The identity behind _pool_on_codes, by the definitions: dequantize s (c - z) in float32, quantize
    clamp(round(v / s) + z, 0, 255)."""
    codes = torch.randint(0, 256, (2, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    real = scale * (codes.float() - zero_point)
    pooled = (torch.round(F.max_pool2d(real, 2) / scale) + zero_point).clamp(0, 255).to(torch.uint8)
    assert torch.equal(pooled, F.max_pool2d(codes, 2))


def _pool_graph(out_scale: float, extra_user: bool = False) -> torch.fx.GraphModule:
    """dequantize (scale 0.1, zero point 3) -> 2x2 max-pool -> quantize (``out_scale``, zero point 3)."""
    import torch.ao.quantization.fx._decomposed  # noqa: F401 - registers the quantized_decomposed operators

    qd = torch.ops.quantized_decomposed
    graph = torch.fx.Graph()
    codes = graph.placeholder("codes")
    real = graph.call_function(qd.dequantize_per_tensor.default, (codes, 0.1, 3, 0, 255, torch.uint8))
    pooled = graph.call_function(torch.ops.aten.max_pool2d.default, (real, [2, 2], [2, 2]))
    out = graph.call_function(qd.quantize_per_tensor.default, (pooled, out_scale, 3, 0, 255, torch.uint8))
    graph.output((out, pooled) if extra_user else out)
    return torch.fx.GraphModule(nn.Module(), graph)


def test_pool_on_codes_pools_the_codes_where_both_sides_share_their_parameters():
    codes = torch.randint(0, 256, (2, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    rewritten = _pool_on_codes(_pool_graph(0.1))
    targets = [n.target for n in rewritten.graph.nodes if n.op == "call_function"]
    assert targets == [torch.ops.aten.max_pool2d.default]
    assert torch.equal(rewritten(codes), F.max_pool2d(codes, 2))
    assert torch.equal(_pool_graph(0.1)(codes), F.max_pool2d(codes, 2))  # the graph it replaced gives the same


@pytest.mark.parametrize("out_scale, extra_user", [(0.2, False), (0.1, True)])
def test_pool_on_codes_leaves_a_requantizing_or_shared_pool_alone(out_scale, extra_user):
    graph_module = _pool_graph(out_scale, extra_user)
    before = [n.target for n in graph_module.graph.nodes]
    assert [n.target for n in _pool_on_codes(graph_module).graph.nodes] == before


@pytest.mark.slow  # compiles with Inductor (a C++ compiler, tens of seconds)
def test_compile_int8_runs_onednn_int8_kernels_and_leaves_freezing_off():
    import torch._inductor.config as inductor_config
    from torch._inductor.utils import run_and_get_code

    model, x = _int8_pair()
    q, sources = run_and_get_code(compile_int8, model, [x], example_input=x)  # the code Inductor generated
    code = "\n".join(sources)
    # freezing on: the int8 weights are constants pre-packed for oneDNN, and each quantized Conv/Linear is one
    # oneDNN int8 call (no dequantize -> float conv -> quantize left over)
    assert "onednn.qconv_pointwise" in code and "onednn.qlinear_pointwise" in code and "_frozen_param" in code
    assert "aten.convolution" not in code and "dequantize_per_channel" not in code
    assert "quantized.max_pool2d" not in code  # the pool runs on the codes, in Inductor's own loops
    with torch.no_grad():
        out, ref = q(x), model(x)
        graph = convert_int8(model, [x], example_input=x)(x)  # the same integers, by reference operators
    if int8_kernel("onednn").saturates:  # AVX2 without VNNI: pairs of products saturate in int16 (the int8 page
        assert (out - ref).abs().max() < 0.25 * ref.abs().max()  # measures it), a few codes off the reference
    else:
        assert torch.allclose(out, graph, atol=1e-5)
        assert (out - ref).abs().max() < 0.05 * ref.abs().max()
    assert inductor_config.freezing is False


@pytest.mark.slow  # the zoo teacher (trained on first use) and an Inductor compilation
def test_pt2e_int8_teacher_keeps_the_fp32_accuracy():
    from course_lib.data import load_mnist5k, make_loaders
    from course_lib.metrics import model_size_bytes
    from course_lib.training import evaluate
    from course_lib.zoo import get_model

    teacher = get_model("teacher")
    loaders = make_loaders(load_mnist5k(), batch_size=64)
    example = next(iter(loaders.test))[0]
    int8 = compile_int8(teacher, loaders.train, example_input=example, num_batches=8)
    fp32_accuracy, int8_accuracy = evaluate(teacher, loaders.test), evaluate(int8, loaders.test)
    assert abs(int8_accuracy - fp32_accuracy) <= 0.005, (int8_accuracy, fp32_accuracy)  # half a point
    assert model_size_bytes(teacher) / model_size_bytes(int8) > 3.5  # int8 weights, fp32 biases and scales

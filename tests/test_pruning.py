"""course_lib.pruning: masks against torch.nn.utils.prune, global threshold by hand, masks kept in training,
channel pruning against the original model, sparse formats against their size formulas, errors."""
import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.utils.data import DataLoader, TensorDataset

from course_lib import pruning
from course_lib._validation import weight_layers, weight_parametrization
from course_lib.metrics import count_parameters
from course_lib.models import build_model
from course_lib.pruning.unstructured import Mask, taylor_scores
from course_lib.training import Trained, train


def is_pruned(module):
    """Whether ``module.weight`` carries a pruning mask."""
    return weight_parametrization(module, Mask) is not None


def _mask(module):
    """The 0/1 mask a pruned layer computes with (its Mask parametrization's buffer)."""
    return module.parametrizations.weight[0].mask


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model, state):
    current = model.state_dict()
    return current.keys() == state.keys() and all(torch.equal(v, state[k]) for k, v in current.items())


def _loader(n=64, batch_size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize("shape,amount", [((20, 30), 0.37), ((8, 3, 3, 3), 0.9), ((7,), 0.5), ((5, 5), 0.0),
                                          ((5, 5), 1.0), ((4, 6), 0.25)])
def test_magnitude_mask_equals_torch_l1_unstructured(shape, amount):
    torch.manual_seed(0)
    layer = nn.Linear(1, 1)
    weight = torch.randn(shape)
    layer.weight = nn.Parameter(weight.clone())
    torch_prune.l1_unstructured(layer, "weight", amount=amount)
    mask = pruning.magnitude_mask(weight, amount)
    assert mask.shape == weight.shape and mask.dtype == weight.dtype
    assert torch.equal(mask, layer.weight_mask)
    assert int((mask == 0).sum()) == round(amount * weight.numel())


def test_magnitude_mask_exact_count_with_ties_and_smallest_removed():
    weight = torch.tensor([[0.5, -0.1, 0.1], [0.0, 2.0, -0.3]])
    mask = pruning.magnitude_mask(weight, 0.5)  # 3 zeros: 0.0 and the two |0.1|
    assert mask.tolist() == [[1, 0, 0], [0, 1, 1]]
    for s in (0.1, 0.34, 0.5, 0.66, 0.99):
        w = torch.randn(13, 7)
        m = pruning.magnitude_mask(w, s)
        assert int((m == 0).sum()) == round(s * 91)
        if 0 < (m == 0).sum() < 91:  # every pruned |w| <= every kept |w|
            assert w[m == 0].abs().max() <= w[m == 1].abs().min()


def test_global_threshold_hand_worked():
    a = torch.tensor([[0.9, -0.05], [0.2, 0.3]])
    b = torch.tensor([0.01, -0.6, 0.1, 0.4, -0.02, 0.5])
    # the 10 magnitudes sorted: 0.01 0.02 0.05 0.1 0.2 | 0.3 0.4 0.5 0.6 0.9 -> sparsity 0.5 removes the first five
    ma, mb = pruning.global_magnitude_masks([a, b], 0.5)
    assert ma.tolist() == [[1, 0], [0, 1]]
    assert mb.tolist() == [0, 1, 0, 1, 0, 1]


def test_global_masks_equal_torch_global_unstructured():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(10, 8), nn.Linear(8, 4))
    weights = [net[0].weight.detach().clone(), net[1].weight.detach().clone()]
    torch_prune.global_unstructured([(net[0], "weight"), (net[1], "weight")],
                                    pruning_method=torch_prune.L1Unstructured, amount=0.6)
    ours = pruning.global_magnitude_masks(weights, 0.6)
    assert torch.equal(ours[0], net[0].weight_mask) and torch.equal(ours[1], net[1].weight_mask)


def test_magnitude_prune_global_and_layer_scope_and_argument_untouched():
    original = build_model("lenet300")
    before = _state(original)
    n = sum(m.weight.numel() for m in original.modules() if isinstance(m, nn.Linear))
    model = pruning.magnitude_prune(original, sparsity=0.8)
    assert model is not original and _same_state(original, before) and not any(map(is_pruned, original.modules()))
    assert pruning.sparsity(model) == round(0.8 * n) / n
    per_layer = pruning.layer_sparsities(model)
    assert per_layer["net.1"] > 0.8 > per_layer["net.5"]  # one threshold: the big layer loses most
    layerwise = pruning.magnitude_prune(original, sparsity=0.8, scope="layer")
    for name, s in pruning.layer_sparsities(layerwise).items():
        numel = dict(layerwise.named_modules())[name].weight.numel()
        assert s == round(0.8 * numel) / numel
    per = pruning.magnitude_prune(original, sparsity={"net.1": 0.5, "net.5": 0.9}, scope="layer")
    assert pruning.layer_sparsities(per) == {"net.1": 0.5, "net.3": 0.0, "net.5": 0.9}
    only = pruning.magnitude_prune(original, sparsity=0.5, layers=["net.3"])
    assert pruning.layer_sparsities(only) == {"net.1": 0.0, "net.3": 0.5, "net.5": 0.0}


def test_masked_model_equals_torch_prune_and_deepcopies_after_a_training_step():
    torch.manual_seed(1)
    model = build_model("lenet5")
    reference = copy.deepcopy(model)
    pairs = [(m, "weight") for m in weight_layers(reference).values()]
    torch_prune.global_unstructured(pairs, pruning_method=torch_prune.L1Unstructured, amount=0.7)
    ours = pruning.magnitude_prune(model, sparsity=0.7)
    for (name, m), (ref, _) in zip(weight_layers(ours).items(), pairs):
        assert torch.equal(_mask(m), ref.weight_mask), name
        assert torch.equal(m.weight, ref.weight), name
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(ours(x), reference(x))
    train(ours, _loader(n=16), 1, lr=1e-2, device="cpu", progress=False)
    twin = copy.deepcopy(ours)  # torch.nn.utils.prune cannot do this right after a step; a parametrization can
    assert torch.equal(twin(x), ours(x)) and pruning.sparsity(twin) == pruning.sparsity(ours)


def test_masks_survive_training_and_make_permanent():
    torch.manual_seed(0)
    model = pruning.magnitude_prune(build_model("student"), sparsity=0.7)
    masks = {name: _mask(m).clone() for name, m in weight_layers(model).items()}
    before = pruning.sparsity(model)
    train(model, _loader(), 1, lr=1e-2, weight_decay=1e-2, device="cpu", progress=False)
    for name, m in weight_layers(model).items():
        assert torch.all(m.weight[masks[name] == 0] == 0)
    assert pruning.sparsity(model) == before
    permanent = pruning.make_permanent(model)
    assert all(map(is_pruned, [model.features[0], model.classifier[1]]))  # the argument keeps its masks
    assert not any(is_pruned(m) for m in permanent.modules())
    assert all(isinstance(m.weight, nn.Parameter) for m in weight_layers(permanent).values())
    assert pruning.sparsity(permanent) == before
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(permanent(x), model(x))


def test_pruning_again_never_revives_weights():
    model = pruning.random_prune(build_model("lenet300"), sparsity=0.5, generator=torch.Generator().manual_seed(0))
    first = {n: _mask(m).clone() for n, m in weight_layers(model).items()}
    model = pruning.magnitude_prune(model, sparsity=0.7)
    for n, m in weight_layers(model).items():
        assert len(m.parametrizations.weight) == 1 and torch.all(_mask(m) <= first[n])
    assert pruning.sparsity(model) >= 0.7 - 1e-6


def test_random_mask_count_and_torch_random_unstructured():
    w = torch.randn(30, 20)
    m = pruning.random_mask(w, 0.3, generator=torch.Generator().manual_seed(0))
    assert int((m == 0).sum()) == 180
    layer = nn.Linear(20, 30)
    torch.manual_seed(5)
    torch_prune.random_unstructured(layer, "weight", amount=0.3)
    torch.manual_seed(5)
    assert torch.equal(pruning.random_mask(layer.weight_orig, 0.3), layer.weight_mask)


def test_taylor_importance_formula_and_model_prune():
    w, g = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-0.1, 0.3, 4.0])
    assert torch.allclose(pruning.taylor_importance(w, g), torch.tensor([0.1, 0.6, 2.0]))
    torch.manual_seed(0)
    model = build_model("lenet300")
    loader = _loader()
    before = _state(model)
    scores = taylor_scores(model, loader, batches=2, device="cpu")
    assert _same_state(model, before)
    # reference: the mean over two batches of |w * dL/dw| by autograd, layer net.5
    layer = model.net[5]
    ref = torch.zeros_like(layer.weight)
    for i, (x, y) in enumerate(loader):
        if i == 2:
            break
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        ref += (layer.weight * layer.weight.grad).abs() / 2
    assert torch.allclose(scores["net.5"], ref.detach(), atol=1e-7)
    pruned = pruning.taylor_prune(model, loader, sparsity=0.6, batches=2, device="cpu")
    assert abs(pruning.sparsity(pruned) - 0.6) < 1e-5
    ranked = torch.cat([scores[n].reshape(-1) for n in ("net.1", "net.3", "net.5")])
    kept = torch.cat([_mask(m).reshape(-1) for m in weight_layers(pruned).values()])
    assert ranked[kept == 0].max() <= ranked[kept == 1].min()  # the lowest Taylor scores are the ones removed


@pytest.mark.parametrize("bad,error", [(-0.1, ValueError), (1.5, ValueError), (math.nan, ValueError),
                                       ("0.5", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_sparsity_raises(bad, error):
    with pytest.raises(error, match=r"sparsity must be a finite number in \[0, 1\] \(the fraction of weights"):
        pruning.magnitude_mask(torch.randn(4, 4), bad)
    with pytest.raises(error, match="sparsity"):
        pruning.magnitude_prune(build_model("lenet300"), sparsity=bad)
    with pytest.raises(error, match="sparsity"):
        pruning.prune_channels(build_model("lenet5"), sparsity=bad)


def test_other_errors():
    with pytest.raises(ValueError, match="weights"):
        pruning.global_magnitude_masks([], 0.5)
    with pytest.raises(TypeError, match="floating"):
        pruning.magnitude_mask(torch.arange(6), 0.5)
    with pytest.raises(ValueError, match="no Linear/Conv2d"):
        pruning.magnitude_prune(nn.Sequential(nn.ReLU()), sparsity=0.5)
    with pytest.raises(ValueError, match=r"layers must name Linear/Conv2d layers .*'net.9' is not among them"):
        pruning.magnitude_prune(build_model("lenet300"), sparsity=0.5, layers=["net.9"])
    with pytest.raises(ValueError, match="scope"):
        pruning.magnitude_prune(build_model("lenet300"), sparsity=0.5, scope="local")
    with pytest.raises(ValueError, match="scope='layer'"):
        pruning.magnitude_prune(build_model("lenet300"), sparsity={"net.1": 0.5})
    with pytest.raises(ValueError, match="'net.0' is not among them"):
        pruning.magnitude_prune(build_model("lenet300"), sparsity={"net.0": 0.5}, scope="layer")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        pruning.magnitude_prune("lenet300", sparsity=0.5)
    with pytest.raises(ValueError, match="grad"):
        pruning.taylor_importance(torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="only 0 and 1"):
        pruning.apply_masks(nn.Sequential(nn.Linear(2, 2)), masks={"0": torch.full((2, 2), 0.5)})


def _silence_channels(model, conv_index, bn_index, channels):
    """Make ``channels`` of a conv produce exactly zero after its BatchNorm (or bias) and ReLU."""
    with torch.no_grad():
        conv = model.features[conv_index]
        conv.weight[channels] = 0
        if conv.bias is not None:
            conv.bias[channels] = 0
        if bn_index is not None:
            bn = model.features[bn_index]
            bn.weight[channels] = 0
            bn.bias[channels] = 0


@pytest.mark.parametrize("name,convs", [("teacher", [(0, 1), (4, 5)]), ("lenet5", [(0, None), (3, None)])])
def test_prune_channels_equals_original_when_removed_channels_are_zero(name, convs):
    torch.manual_seed(0)
    model = build_model(name)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    for conv_index, bn_index in convs:
        c = model.features[conv_index].out_channels
        _silence_channels(model, conv_index, bn_index, torch.arange(0, c, 2))  # every other channel: half
    x = torch.rand(5, 1, 28, 28)
    small = pruning.prune_channels(model, sparsity=0.5)
    assert not small.training
    assert torch.allclose(small(x), model(x), atol=1e-5)
    assert model.features[convs[0][0]].out_channels == build_model(name).features[convs[0][0]].out_channels


def test_prune_channels_shapes_and_parameter_count():
    model = build_model("teacher").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = pruning.prune_channels(model, sparsity=0.25)
    conv1, bn1, conv2, bn2 = small.features[0], small.features[1], small.features[4], small.features[5]
    assert (conv1.in_channels, conv1.out_channels, conv2.in_channels, conv2.out_channels) == (1, 24, 24, 48)
    assert bn1.num_features == 24 and bn2.num_features == 48 and bn2.running_mean.shape == (48,)
    assert small.classifier[1].in_features == 48 * 7 * 7
    # bias-free fc1 + BatchNorm1d
    expected = 24 * 9 + 2 * 24 + 48 * 24 * 9 + 2 * 48 + (48 * 49 * 256 + 2 * 256) + (256 * 10 + 10)
    assert count_parameters(small) == expected
    after = model.state_dict()  # the original is untouched
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert small(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_prune_channels_keeps_highest_scores_and_columns():
    model = build_model("lenet5").eval()
    scores = {"features.0": torch.arange(20.0), "features.3": -torch.arange(50.0)}
    small = pruning.prune_channels(model, sparsity=0.5, scores=scores)
    assert torch.equal(small.features[0].weight, model.features[0].weight[10:])
    kept = torch.arange(25)  # the 25 highest of -arange(50)
    assert torch.equal(small.features[3].weight, model.features[3].weight[kept][:, 10:])
    columns = (kept[:, None] * 16 + torch.arange(16)).reshape(-1)
    assert torch.equal(small.classifier[1].weight, model.classifier[1].weight[:, columns])
    only_first = pruning.prune_channels(model, sparsity=0.5, layers=["features.0"])
    assert only_first.features[3].out_channels == 50 and only_first.features[3].in_channels == 10


def test_channel_l1_norms_formula():
    w = torch.randn(6, 3, 2, 2)
    assert torch.allclose(pruning.channel_l1_norms(w), torch.stack([w[j].abs().sum() for j in range(6)]))


def test_prune_channels_errors():
    with pytest.raises(ValueError, match="LeNet300100 has no Conv2d layer"):
        pruning.prune_channels(build_model("lenet300"), sparsity=0.5)
    with pytest.raises(ValueError, match=r"sparsity must be a finite number in \[0, 1\) \(the fraction of channels"):
        pruning.prune_channels(build_model("student"), sparsity=1.0)
    with pytest.raises(ValueError, match="shape"):
        pruning.prune_channels(build_model("student"), sparsity=0.5, scores={"features.0": torch.ones(3)})
    with pytest.raises(ValueError, match="'classifier.1' is not among them"):
        pruning.prune_channels(build_model("student"), sparsity=0.5, layers=["classifier.1"])
    with pytest.raises(ValueError, match="conv_weight"):
        pruning.channel_l1_norms(torch.randn(3, 3))


@pytest.mark.parametrize("shape", [(40, 30), (8, 4, 3, 3), (17,), (2, 70000)])
@pytest.mark.parametrize("format", ["csr", "bitmask"])
def test_sparse_formats_round_trip_and_size_formula(shape, format):
    torch.manual_seed(0)
    w = torch.randn(shape)
    w = w * pruning.magnitude_mask(w, 0.8)
    data = pruning.encode_sparse(w, format=format)
    assert torch.equal(pruning.decode_sparse(data), w)
    n, nnz, d, rows = w.numel(), int((w != 0).sum()), w.dim(), shape[0]
    index_bytes = 2 if n // rows <= 65536 else 4
    expected = 4 + 4 * d + (4 * (rows + 1) + (index_bytes + 4) * nnz if format == "csr" else math.ceil(n / 8) + 4 * nnz)
    assert len(data) == expected


def test_sparse_model_bytes_counts_weights_sparse_and_the_rest_dense():
    model = pruning.magnitude_prune(build_model("lenet300"), sparsity=0.9)
    biases = 4 * (300 + 100 + 10)
    weights = sum(len(pruning.encode_sparse(m.weight, format="bitmask")) for m in weight_layers(model).values())
    assert pruning.sparse_model_bytes(model, format="bitmask") == biases + weights
    assert pruning.sparse_model_bytes(model, format="csr") < 0.2 * 4 * count_parameters(model)
    with pytest.raises(ValueError, match="format"):
        pruning.sparse_model_bytes(model, format="coo")
    with pytest.raises(ValueError, match="magic"):
        pruning.decode_sparse(b"nope")


def test_gradual_sparsity_cubic_formula():
    assert pruning.gradual_sparsity(0, 0.9, 10) == 0.0
    assert pruning.gradual_sparsity(10, 0.9, 10) == pytest.approx(0.9)
    assert pruning.gradual_sparsity(15, 0.9, 10) == pytest.approx(0.9)
    assert pruning.gradual_sparsity(5, 0.9, 10, 0.1) == pytest.approx(0.9 + (0.1 - 0.9) * 0.5 ** 3)
    values = [pruning.gradual_sparsity(t, 0.9, 10) for t in range(11)]
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(x > y for x, y in zip(steps, steps[1:]))  # fast first, slow at the end
    with pytest.raises(ValueError, match="total_steps"):
        pruning.gradual_sparsity(1, 0.9, 0)


def test_gradual_prune_reaches_final_sparsity_with_masks_kept():
    torch.manual_seed(0)
    model = build_model("lenet300")
    before = _state(model)
    loader = _loader(n=96, batch_size=8)  # 12 steps per epoch
    result = pruning.gradual_prune(model, loader, sparsity=0.8, epochs=1, prune_steps=4, prune_during=0.5,
                                   device="cpu", progress=False)
    assert isinstance(result, Trained) and len(result.history.loss) == 1
    assert abs(pruning.sparsity(result.model) - 0.8) < 1e-5 and _same_state(model, before)
    with pytest.raises(ValueError, match="prune_steps"):
        pruning.gradual_prune(build_model("lenet300"), loader, sparsity=0.8, epochs=1, prune_steps=20)


def test_layer_sensitivity_restores_model():
    torch.manual_seed(0)
    model = build_model("lenet300").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def metric(m, loader):
        calls.append(pruning.layer_sparsities(m))
        return float(len(calls))

    scan = pruning.layer_sensitivity(model, _loader(), sparsities=(0.5, 0.9), metric=metric)
    assert _same_state(model, before)
    assert list(scan) == ["net.1", "net.3", "net.5"] and scan["net.3"] == [3.0, 4.0]
    assert calls[3]["net.3"] == pytest.approx(0.9, abs=1e-3) and calls[3]["net.1"] == 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_masked_sgd_step_matches_hand_computed_update_and_plain_zeroing_does_not_last():
    """One SGD step with the mask in force is w <- w - lr * (m * dL/dw_eff), pruned entries stay 0;
    the article's one-off `param.data *= mask` gets its zeros back at the first step."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    layer = nn.Linear(6, 4)
    plain = copy.deepcopy(layer)
    mask = pruning.magnitude_mask(layer.weight, 0.5)
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    # reference gradient of the loss at the pruned weight w0 * mask, by autograd on a fresh tensor
    w_eff = (w0 * mask).requires_grad_()
    nn.functional.cross_entropy(x @ w_eff.T + b0, y).backward()
    expected = (w0 - 0.1 * mask * w_eff.grad) * mask

    layer = pruning.apply_masks(nn.Sequential(layer), masks={"0": mask})[0]
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    nn.functional.cross_entropy(layer(x), y).backward()
    opt.step()
    assert torch.allclose(layer.weight, expected, atol=1e-6)

    with torch.no_grad():  # the article's snippet: zero once, then train as usual
        plain.weight *= mask
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    nn.functional.cross_entropy(plain(x), y).backward()
    opt.step()
    assert int((plain.weight[mask == 0] != 0).sum()) > 0


def test_gradual_prune_follows_the_cubic_schedule_step_by_step():
    torch.manual_seed(0)
    model = build_model("lenet300")
    n = sum(m.weight.numel() for m in weight_layers(model).values())
    seen = []

    def loss_fn(m, inputs, targets):  # called before each optimizer step: records the sparsity in force
        seen.append(pruning.sparsity(m))
        return nn.functional.cross_entropy(m(inputs), targets)

    loader = _loader(n=96, batch_size=8)  # 12 steps; prune_during 0.5 -> 6 steps / 4 pruning steps -> every step
    pruning.gradual_prune(model, loader, sparsity=0.9, epochs=1, prune_steps=4, prune_during=0.5, loss_fn=loss_fn,
                          device="cpu", progress=False)
    s_f = 0.9
    schedule = [s_f * (1 - (1 - min(t, 4) / 4) ** 3) for t in range(12)]  # Zhu & Gupta with s_i = 0
    assert seen == pytest.approx([round(s * n) / n for s in schedule], abs=1e-9)


def test_csr_encoding_matches_scipy_csr_arrays():
    sp = pytest.importorskip("scipy.sparse")
    import numpy as np
    torch.manual_seed(3)
    w = torch.randn(12, 5, 3, 3)
    w = w * pruning.magnitude_mask(w, 0.85)
    data = pruning.encode_sparse(w, format="csr")
    ref = sp.csr_matrix(w.reshape(12, -1).numpy())
    offset = 4 + 4 * w.dim()
    pointers = np.frombuffer(data, "<u4", 13, offset)
    columns = np.frombuffer(data, "<u2", ref.nnz, offset + 4 * 13)
    values = np.frombuffer(data, "<f4", ref.nnz, offset + 4 * 13 + 2 * ref.nnz)
    assert np.array_equal(pointers, ref.indptr) and np.array_equal(columns, ref.indices)
    assert np.array_equal(values, ref.data) and len(data) == offset + 4 * 13 + 6 * ref.nnz


def test_layer_sensitivity_default_metric_equals_torch_pruned_layer_accuracy():
    torch.manual_seed(0)
    model = build_model("lenet300").eval()
    loader = _loader(n=128, batch_size=32)
    scan = pruning.layer_sensitivity(model, loader, sparsities=(0.9,))
    for name in ("net.1", "net.5"):
        ref = copy.deepcopy(model)
        torch_prune.l1_unstructured(dict(ref.named_modules())[name], "weight", amount=0.9)
        with torch.no_grad():
            predictions = ref(loader.dataset.tensors[0]).argmax(1)
        assert scan[name][0] == pytest.approx(float((predictions == loader.dataset.tensors[1]).float().mean()))


def test_random_prune_exact_count_per_layer_and_seeded():
    a = pruning.random_prune(build_model("teacher"), sparsity=0.6, generator=torch.Generator().manual_seed(1))
    b = pruning.random_prune(build_model("teacher"), sparsity=0.6, generator=torch.Generator().manual_seed(1))
    for ma, mb in zip(weight_layers(a).values(), weight_layers(b).values()):
        assert int((_mask(ma) == 0).sum()) == round(0.6 * ma.weight.numel())
        assert torch.equal(_mask(ma), _mask(mb))


def test_prune_channels_folds_unstructured_masks_and_ratio_zero_is_identity():
    torch.manual_seed(0)
    model = pruning.magnitude_prune(build_model("student").eval(), sparsity=0.7)
    x = torch.rand(3, 1, 28, 28)
    same = pruning.prune_channels(model, sparsity=0.0)
    assert not any(is_pruned(m) for m in same.modules())
    assert is_pruned(model.features[0])  # the original keeps its masks
    assert torch.allclose(same(x), model(x), atol=1e-6)
    assert pruning.sparsity(same) == pytest.approx(pruning.sparsity(model))


def _zero_channels_then_prune(model, convs, x, **kwargs):
    """Zero every other output channel (filter, bias, BatchNorm affine) of the named convs, prune half of each,
    and check the smaller model computes the same outputs; returns it."""
    model.eval()
    named = dict(model.named_modules())
    chain = [name for name, m in model.named_modules() if not list(m.children())]
    with torch.no_grad():
        for name in convs:
            conv = named[name]
            off = torch.arange(0, conv.out_channels, 2)
            conv.weight[off] = 0
            if conv.bias is not None:
                conv.bias[off] = 0
            nxt = named[chain[chain.index(name) + 1]]
            if isinstance(nxt, nn.BatchNorm2d):
                nxt.running_mean.uniform_(-0.5, 0.5)
                nxt.running_var.uniform_(0.5, 2.0)
                nxt.weight[off], nxt.bias[off] = 0, 0
    before = _state(model)
    small = pruning.prune_channels(model, sparsity=0.5, **kwargs)
    assert _same_state(model, before)
    assert torch.allclose(small(x), model(x), atol=1e-5)
    for name in convs:
        assert dict(small.named_modules())[name].out_channels == named[name].out_channels // 2
    assert count_parameters(small) < count_parameters(model)
    return small


def test_prune_channels_on_plain_sequential_cnns():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16)
    flat = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
                         nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(12 * 4 * 4, 20), nn.ReLU(), nn.Linear(20, 5))
    small = _zero_channels_then_prune(flat, ["0", "4"], x, example_input=x)
    assert small[9].in_features == 6 * 4 * 4 and small[11].out_features == 5
    nested = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Sequential(nn.Conv2d(8, 16, 3, stride=2), nn.BatchNorm2d(16), nn.GELU()),
                      nn.AdaptiveAvgPool2d(2)),
        nn.Flatten(), nn.Linear(16 * 4, 10))
    _zero_channels_then_prune(nested, ["0.0", "1.0.0"], x, example_input=x)

    class Wrapped(nn.Module):  # a model whose forward is a single Sequential, no .features/.classifier
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 10, 3),
                                      nn.ReLU(), nn.Flatten(), nn.Linear(10 * 10 * 10, 4))

        def forward(self, inputs):
            return self.body(inputs)

    small = _zero_channels_then_prune(Wrapped(), ["body.0", "body.3"], torch.rand(2, 1, 28, 28))
    assert isinstance(small, Wrapped) and small.body[6].in_features == 5 * 10 * 10


def test_prune_channels_rejects_what_it_cannot_see_naming_the_layer():
    x = torch.rand(1, 3, 8, 8)
    grouped = nn.Sequential(nn.Conv2d(3, 6, 3), nn.Conv2d(6, 6, 3, groups=3), nn.Flatten(), nn.Linear(6 * 16, 2))
    with pytest.raises(ValueError, match=r"grouped convolutions; 1 has groups=3"):
        pruning.prune_channels(grouped, sparsity=0.5, example_input=x)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 64, 2))

        def forward(self, inputs):
            h = self.conv1(inputs)
            return self.head(h + self.conv2(h))

    with pytest.raises(ValueError, match=r"the input of head.0 \(Flatten\) is not the output of conv2"):
        pruning.prune_channels(Residual(), sparsity=0.5, example_input=x)
    unknown = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 36, 2))
    with pytest.raises(ValueError, match=r"flow through 1 \(GroupNorm\)"):
        pruning.prune_channels(unknown, sparsity=0.5, example_input=x)
    fully_conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 6), nn.Flatten())
    assert pruning.prune_channels(fully_conv, sparsity=0.5, example_input=x)[2].out_channels == 2  # output kept
    with pytest.raises(ValueError, match="2 reach the model.s output"):
        pruning.prune_channels(fully_conv, sparsity=0.5, layers=["2"], example_input=x)
    with pytest.raises(ValueError, match="pass example_input"):
        pruning.prune_channels(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2)), sparsity=0.5)


def test_gradual_prune_rejects_an_initial_sparsity_above_the_final_one():
    """Before: initial_sparsity=0.9, sparsity=0.1 returned a 90% sparse model (masks only multiply)."""
    loader = _loader(n=32, batch_size=8)
    with pytest.raises(ValueError, match=r"initial_sparsity must be at most sparsity \(0.1; .*got 0.9"):
        pruning.gradual_prune(build_model("lenet300"), loader, sparsity=0.1, initial_sparsity=0.9, epochs=1,
                              prune_steps=2)
    with pytest.raises(ValueError, match="initial_sparsity must be at most final_sparsity"):
        pruning.gradual_sparsity(0, 0.1, 10, initial_sparsity=0.9)
    with pytest.raises(TypeError, match="unexpected keyword argument 'prune_fraction'"):  # the old name is gone
        pruning.gradual_prune(build_model("lenet300"), loader, sparsity=0.5, epochs=1, prune_steps=2,
                              prune_fraction=0.5)
    with pytest.raises(ValueError, match=r"prune_during must be a finite number in \(0, 1\] \(the share of the "
                                         "training steps"):
        pruning.gradual_prune(build_model("lenet300"), loader, sparsity=0.5, epochs=1, prune_during=0.0)


def test_apply_masks_takes_masks_by_keyword_only():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="positional argument"):
        pruning.apply_masks(model, {"0": torch.ones(2, 2)})
    assert is_pruned(pruning.apply_masks(model, masks={"0": torch.ones(2, 2)})[0])


def test_layer_sensitivity_names_a_sparsities_that_is_not_a_list():
    with pytest.raises(TypeError, match=r"sparsities must be an iterable of sparsities such as \(0.5, 0.9\), "
                                        r"got 0.5 \(float\)"):
        pruning.layer_sensitivity(build_model("lenet300"), _loader(), sparsities=0.5)


def test_removing_a_parametrization_from_a_verb_result_leaves_the_argument_working():
    """Before: a deep copy shared its parametrized class with the argument, and PyTorch's
    remove_parametrizations on the copy deleted the argument's `weight` (AttributeError)."""
    torch.manual_seed(0)
    pruned = pruning.magnitude_prune(nn.Sequential(nn.Linear(4, 3)), sparsity=0.5)
    x = torch.randn(2, 4)
    expected = pruned(x)
    for result in (pruning.magnitude_prune(pruned, sparsity=0.6), pruning.random_prune(pruned, sparsity=0.5),
                   pruning.apply_masks(pruned, masks={"0": torch.ones(3, 4)})):
        torch.nn.utils.parametrize.remove_parametrizations(result[0], "weight")
        assert torch.equal(pruned(x), expected) and is_pruned(pruned[0])

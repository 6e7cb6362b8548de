"""The Deep Compression pipeline: each stage's invariant, checked against an independent reference."""
import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.compression import compress, decompress, read_records
from course_lib.compression import pipeline as P
from course_lib.models import build_model
from course_lib.pruning import magnitude_prune, make_permanent
from course_lib.quantization import share_weights
from course_lib.quantization.kmeans import codebook_of
from course_lib.training import fine_tune


def _mask(module):
    return module.parametrizations.weight[0].mask

LAYERS = ("net.1", "net.3", "net.5")
SPARSITIES = {"net.1": 0.9, "net.3": 0.8, "net.5": 0.5}


@pytest.fixture(scope="module")
def loader():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 28, 28, generator=g)
    y = torch.randint(10, (96,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def pruned(loader):
    torch.manual_seed(0)
    model = magnitude_prune(build_model("lenet300"), sparsity=SPARSITIES, scope="layer")
    return fine_tune(model, loader, epochs=2, lr=1e-2, device="cpu", progress=False).model


@pytest.fixture(scope="module")
def shared(pruned, loader):
    model = share_weights(make_permanent(pruned), bits={"net.1": 3, "net.3": 4, "net.5": 5})
    before = {name: codebook_of(model.get_submodule(name)) for name in LAYERS}
    tuned = fine_tune(model, loader, epochs=2, lr=1e-2, device="cpu", progress=False).model
    return tuned, before


def test_prune_per_layer_sparsity_survives_fine_tuning(pruned):
    for name, s in SPARSITIES.items():
        module = pruned.get_submodule(name)
        weight = module.parametrizations.weight.original * _mask(module)
        assert torch.equal(weight, module.weight)
        assert int((weight == 0).sum()) == round(s * weight.numel())
        assert torch.equal(weight == 0, _mask(module) == 0)  # the zeros are the masked entries


def test_prune_keeps_the_largest_magnitudes():
    torch.manual_seed(1)
    model = build_model("lenet300")
    w = model.net[5].weight.detach().clone()
    pruned = magnitude_prune(model, sparsity={"net.5": 0.3}, scope="layer")
    k = w.numel() - round(0.3 * w.numel())
    kept = _mask(pruned.net[5]).bool()
    assert torch.equal(kept.reshape(-1), torch.zeros(w.numel(), dtype=torch.bool).index_fill(
        0, w.abs().reshape(-1).topk(k).indices, True))
    assert isinstance(pruned.net[1].weight, nn.Parameter)  # unnamed layers stay dense


def test_shared_layers_have_at_most_2_pow_bits_values_and_keep_zeros(pruned, shared):
    model, before = shared
    for name, bits in zip(LAYERS, (3, 4, 5)):
        weight = model.get_submodule(name).weight
        mask = _mask(pruned.get_submodule(name))
        assert len(torch.unique(weight)) <= 2 ** bits
        assert torch.equal(weight == 0, mask == 0)


def test_codebook_fine_tuning_moves_centroids_not_assignments(shared):
    model, before = shared
    moved = False
    for name in LAYERS:
        codebook, indices = codebook_of(model.get_submodule(name))
        old_codebook, old_indices = before[name]
        assert torch.equal(indices, old_indices)
        assert codebook[0].item() == 0.0
        weight = model.get_submodule(name).weight
        assert torch.equal(weight, codebook[indices])  # every weight is a code-book value
        assert set(torch.unique(weight).tolist()) <= set(codebook.tolist())
        moved |= not torch.equal(codebook, old_codebook)
    assert moved


def test_centroid_gradient_is_the_sum_of_its_weights_gradients(shared):
    model, _ = shared
    model = copy.deepcopy(model)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(10, (16,))
    layer = model.net[3]
    codebook, indices = codebook_of(layer)
    dense = copy.deepcopy(model)  # reference: the same network with a plain Linear holding codebook[indices]
    ref_layer = nn.Linear(300, 100)
    with torch.no_grad():
        ref_layer.weight.copy_(codebook[indices])
        ref_layer.bias.copy_(layer.bias)
    dense.net[3] = ref_layer
    nn.functional.cross_entropy(dense(x), y).backward()
    expected = torch.zeros(len(codebook)).index_add_(0, indices.reshape(-1), ref_layer.weight.grad.reshape(-1))
    expected[0] = 0  # code 0 is pinned to 0 and gets no gradient
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(layer.parametrizations.weight.original.grad, expected, rtol=1e-5, atol=1e-7)


def test_roundtrip_exact_and_storage_accounting(shared, loader):
    model, _ = shared
    data = compress(model, index_bits=4)
    loaded = decompress(data)
    x = next(iter(loader))[0]
    assert torch.equal(loaded(x), model(x))
    assert P.storage_bytes(model, coding="huffman", index_bits=4) == len(data)
    # independent count of the "packed" layout: entries (non-zeros + fillers every 2**r skipped) x (b + r) bits
    expected = 410 * 4  # biases, raw float32
    for name, bits in zip(LAYERS, (3, 4, 5)):
        flat = (model.get_submodule(name).weight != 0).reshape(-1).nonzero().reshape(-1).tolist()
        entries, previous = 0, -1
        for position in flat:
            entries += 1 + (position - previous - 1) // 16
            previous = position
        expected += 4 * 2 ** bits + math.ceil(entries * (bits + 4) / 8)
    assert P.storage_bytes(model, coding="packed", index_bits=4) == expected
    assert P.storage_bytes(model, coding="dense") == 4 * sum(p.numel() for p in build_model("lenet300").parameters())


def test_choose_index_bits_minimises_each_record(shared):
    model, _ = shared
    chosen = P.choose_index_bits(model, candidates=(3, 5, 7))
    for name, r in chosen.items():
        sizes = {w: next(rec.total_bytes for rec in read_records(compress(model, index_bits=w)).layers
                         if rec.name == f"{name}.weight") for w in (3, 5, 7)}
        assert sizes[r] == min(sizes.values())


def test_deep_compress_stages_and_ratio(loader):
    torch.manual_seed(0)
    model = build_model("lenet300").train()
    model.net[0].eval()  # mixed modes: a model.train()/eval() at the end would not restore them
    modes = [m.training for m in model.modules()]
    config = P.Config(SPARSITIES, bits="auto", prune_epochs=1, share_epochs=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = P.deep_compress(model, loader, loader, loader, config=config, device="cpu")
    assert [s.name for s in result.stages] == ["dense", "pruned", "shared", "huffman"]
    assert result.stages[-1].bytes == len(compress(result.model, index_bits=result.index_bits))
    for s in result.stages:
        assert s.ratio == pytest.approx(result.stages[0].bytes / s.bytes)
    assert result.stages[0].bytes > result.stages[1].bytes > result.stages[2].bytes
    assert model.state_dict().keys() == before.keys()  # input untouched, its train/eval modes too
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == modes  # before: deep_compress left it in eval mode
    assert "| huffman |" in P.stage_table(result.stages)
    assert P.layer_table(compress(result.model, index_bits=result.index_bits)).count("\n") == 2 + len(LAYERS) - 1


def test_choose_bits_picks_smallest_width_within_tolerance(pruned, loader):
    model = copy.deepcopy(pruned).train()
    chosen = P.choose_bits(model, loader, candidates=(1, 2, 8), tolerance=1.0)
    assert chosen == {name: 1 for name in LAYERS}  # tolerance 1: any width qualifies, the smallest wins
    assert _mask(model.net[1]) is not None  # the model itself keeps its masks, unshared
    assert all(m.training for m in model.modules())  # before: choose_bits left it in eval mode


def test_a_bad_config_is_refused_before_any_training(loader, monkeypatch):
    """Before: Config(index_bits=9) was accepted and deep_compress failed after the pruning fine-tune."""
    with pytest.raises(ValueError, match=r"index_bits must be an integer in \[1, 8\], got 9"):
        P.Config({"net.1": 0.5}, index_bits=9)
    with pytest.raises(ValueError, match=r"index_bits\['net.1'\] must be an integer in \[1, 8\], got 0"):
        P.Config({"net.1": 0.5}, index_bits={"net.1": 0})
    with pytest.raises(TypeError, match=r"index_bits must be an integer in \[1, 8\], got 2.5 \(float\)"):
        P.Config({"net.1": 0.5}, index_bits=2.5)
    assert P.Config({"net.1": 0.5}, index_bits=None).index_bits is None

    def no_training(*args, **kwargs):
        raise AssertionError("deep_compress trained before checking its arguments")
    monkeypatch.setattr(P, "fine_tune", no_training)
    model = build_model("lenet300")
    for config, message in ((P.Config({"net.1": 0.5}, index_bits={"net.9": 4}), "the keys of config.index_bits"),
                            (P.Config({"net.1": 0.5}, bits={"net.9": 4}), "the keys of config.bits")):
        with pytest.raises(ValueError, match=message):
            P.deep_compress(model, loader, loader, loader, config=config)
    with pytest.raises(ValueError, match="device must be"):
        P.deep_compress(model, loader, loader, loader, config=P.Config({"net.1": 0.5}), device="gpu")
    with pytest.raises(ValueError, match="val_loader must yield at least one batch"):
        P.deep_compress(model, loader, [], loader, config=P.Config({"net.1": 0.5}))


@pytest.mark.parametrize("call, match", [
    (lambda m, dl: P.deep_compress(m, dl, dl, dl, config=P.Config({"net.9": 0.5})), "'net.9' is not among them"),
    (lambda m, dl: P.Config({"net.1": 1.5}), r"sparsities\['net.1'\] must be a finite number in \[0, 1\]"),
    (lambda m, dl: P.Config({}), "at least one layer"),
    (lambda m, dl: P.Config({"net.1": 0.5}, bits=9), r"bits must be an integer in \[1, 8\]"),
    (lambda m, dl: P.Config({"net.1": 0.5}, bits={"net.1": 0}), r"bits\['net.1'\] must be an integer in \[1, 8\]"),
    (lambda m, dl: P.Config({"net.1": 0.5}, tolerance=2.0),
     r"tolerance must be a finite number in \[0, 1\] \(the accuracy that may be lost\), got 2.0"),
    (lambda m, dl: P.storage_bytes(m, coding="zip"), "coding must be one of"),
    (lambda m, dl: P.choose_index_bits(m), "no shared layer"),
    (lambda m, dl: P.choose_index_bits(share_weights(m, bits=2), candidates=(0,)), r"\[1, 8\]"),
    (lambda m, dl: P.paper_bits(m, conv=12), "conv must be"),
    (lambda m, dl: P.Config({"net.1": 0.5}, bits="many"), "bits must be"),
    (lambda m, dl: P.Config({"net.1": 0.5}, index_bits="short"), "index_bits must be"),
    (lambda m, dl: P.Config({"net.1": 0.5}, prune_lr=0), "prune_lr must be a finite number > 0"),
])
def test_bad_arguments_raise_value_error(call, match, loader):
    with pytest.raises(ValueError, match=match):
        call(build_model("lenet300"), loader)


def test_bad_types_raise_type_error(loader):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        P.storage_bytes("lenet300", coding="dense")
    with pytest.raises(TypeError, match="config must be a pipeline.Config"):
        P.deep_compress(build_model("lenet300"), loader, loader, loader, config={"sparsities": SPARSITIES})
    with pytest.raises(TypeError, match="prune_epochs must be an integer"):
        P.Config({"net.1": 0.5}, prune_epochs=1.5)
    with pytest.raises(TypeError, match="sparsities must be a mapping"):
        P.Config([("net.1", 0.5)])


@pytest.mark.slow
def test_benchmark_section_quick_run():
    from course_lib.benchmark.deep_compression import run

    result = run(quick=True, seeds=1)
    for entry in (result, result["lenet5"]):
        for key in ("dense_accuracy", "compressed_accuracy", "compression_ratio"):
            assert isinstance(entry[key], float)
        assert 0 <= entry["compressed_accuracy"] <= 1
        assert entry["roundtrip_equal"] is True
        assert entry["compression_ratio"] == pytest.approx(entry["dense_bytes"] / entry["compressed_bytes"])
        # run i's file size beside the accuracy of the model it holds; the headline is the mean of each
        sizes, accuracies = entry["compressed_bytes_per_seed"], entry["compressed_accuracy_per_seed"]
        assert len(sizes) == len(accuracies) == 1
        assert entry["compressed_bytes"] == sum(sizes) / len(sizes)
        assert entry["compressed_accuracy"] == pytest.approx(sum(accuracies) / len(accuracies))
    assert result["dense_bytes"] == 4 * 266_610 and result["lenet5"]["dense_bytes"] == 4 * 431_080

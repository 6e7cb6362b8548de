"""The ``llm`` benchmark section's helpers (course_lib/benchmark/llm.py) against independent references, on a tiny
seeded GPT, and its report module (course_lib/benchmark/figures/llm.py) on hand-made figures."""
import pytest
import torch
from torch import nn

from course_lib.benchmark.figures import REGISTRY
from course_lib.benchmark.figures.llm import minilm_tables
from course_lib.benchmark.llm import (
    InputQuantized,
    block_linears,
    calibration_windows,
    census_sites,
    int8_weight_only,
    keep_channels,
    linear_inputs,
    map_weights,
    prune_model,
    rtn_model,
    smooth_model,
)
from course_lib.llm import BOS, GPT, GPTConfig, fake_group_quantize

LINEARS = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")


@pytest.fixture(scope="module")
def tiny() -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, width=64, context=16, dropout=0.0)).eval()
    with torch.no_grad():  # LayerNorms with non-trivial affine parameters, so that folding has work to do
        for name, p in model.named_parameters():
            if "ln" in name:
                p.copy_(1.0 + 0.5 * torch.randn_like(p) if name.endswith("weight") else 0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def windows(tiny) -> torch.Tensor:
    tokens = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(1))
    return calibration_windows(tokens, tiny.config.context, 8)


def test_block_linears_are_the_four_linears_of_every_block_and_not_the_head(tiny):
    assert list(block_linears(tiny)) == [f"blocks.{i}.{n}" for i in range(2) for n in LINEARS]


def test_calibration_windows_start_with_bos_and_hold_evenly_spaced_slices():
    tokens = torch.arange(1000)
    w = calibration_windows(tokens, 10, 4)
    assert w.shape == (4, 10) and w.dtype == torch.int64
    assert (w[:, 0] == BOS).all()
    starts = [0, 330, 660, 990 - 0]  # linspace(0, 1000 - 10, 4) = 0, 330, 660, 990
    for row, a in zip(w, starts):
        assert row[1:].tolist() == list(range(a, a + 9))


def test_rtn_model_rounds_every_block_linear_as_fake_group_quantize_and_nothing_else(tiny):
    rounded = rtn_model(tiny, 3, 32)
    for name, linear in block_linears(tiny).items():
        assert torch.equal(rounded.get_submodule(name).weight, fake_group_quantize(linear.weight.detach(), 3, 32))
    for (name, p), q in zip(tiny.named_parameters(), rounded.parameters()):
        if not (name.startswith("blocks.") and name.endswith("weight") and p.dim() == 2):
            assert torch.equal(p, q), name
    assert rounded is not tiny and rtn_model(tiny, 3, 32).head.weight.data_ptr() != tiny.head.weight.data_ptr()


def test_per_tensor_rounding_uses_one_min_max_grid_for_the_whole_matrix(tiny):
    w = tiny.blocks[0].mlp.fc.weight.detach()
    low, high = w.min(), w.max()
    scale = (high - low) / 3  # 2 bits: 4 levels
    zero = torch.round(-low / scale)
    expected = (torch.clamp(torch.round(w / scale) + zero, 0, 3) - zero) * scale
    got = rtn_model(tiny, 2, "tensor").blocks[0].mlp.fc.weight
    assert torch.allclose(got, expected, atol=1e-6)
    assert len(torch.unique(got)) <= 4


def test_map_weights_passes_each_name_and_leaves_the_model_untouched(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    seen = []
    doubled = map_weights(tiny, lambda name, w: seen.append(name) or 2 * w)
    assert seen == list(block_linears(tiny))
    assert torch.equal(doubled.blocks[1].attn.proj.weight, 2 * tiny.blocks[1].attn.proj.weight)
    assert all(torch.equal(v, before[k]) for k, v in tiny.state_dict().items())


def test_keep_channels_keeps_the_chosen_columns_exactly_and_rounds_the_others(tiny):
    chosen = {name: torch.tensor([0, 5, 17]) for name in block_linears(tiny)}
    kept = keep_channels(tiny, 3, 32, chosen)
    for name, linear in block_linears(tiny).items():
        w, q = linear.weight.detach(), kept.get_submodule(name).weight
        assert torch.equal(q[:, [0, 5, 17]], w[:, [0, 5, 17]])
        others = torch.ones(w.shape[1], dtype=torch.bool)
        others[[0, 5, 17]] = False
        assert torch.equal(q[:, others], fake_group_quantize(w, 3, 32)[:, others])


def test_keep_channels_with_scale_one_is_plain_rounding_and_a_power_of_two_scale_is_exactly_undone(tiny):
    chosen = {name: torch.tensor([3]) for name in block_linears(tiny)}
    one, plain = keep_channels(tiny, 3, 32, chosen, 1.0), rtn_model(tiny, 3, 32)
    assert all(torch.equal(a, b) for a, b in zip(one.parameters(), plain.parameters()))
    w = tiny.blocks[0].mlp.fc.weight.detach()
    scaled = w.clone()
    scaled[:, 3] *= 2
    expected = fake_group_quantize(scaled, 3, 32)
    expected[:, 3] /= 2
    assert torch.equal(keep_channels(tiny, 3, 32, chosen, 2.0).blocks[0].mlp.fc.weight, expected)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.85])
def test_smooth_model_leaves_the_float_output_unchanged(tiny, windows, alpha):
    smoothed = smooth_model(tiny, windows, alpha)
    with torch.no_grad():
        reference, got = tiny(windows), smoothed(windows)
    assert torch.allclose(got, reference, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(smoothed.blocks[0].ln_1.weight, tiny.blocks[0].ln_1.weight)


def test_linear_inputs_are_the_layer_norms_outputs(tiny, windows):
    x = linear_inputs(tiny, windows, ["blocks.0.attn.qkv"])["blocks.0.attn.qkv"]
    with torch.no_grad():
        h = tiny.tok_emb(windows) + tiny.pos_emb(torch.arange(windows.shape[1]))
        expected = tiny.blocks[0].ln_1(h).reshape(-1, 64)
    assert torch.allclose(x, expected, atol=1e-6)


def test_input_quantized_rounds_and_clamps_to_symmetric_levels():
    linear = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(3)[:1] + torch.eye(3)[1:2] * 10 + torch.eye(3)[2:] * 100)
    q = InputQuantized(linear, scale=0.5, bits=3)  # levels -3..3, i.e. -1.5..1.5
    x = torch.tensor([[0.3, -0.74, 9.0]])  # -> 0.5 (0.6 rounds to 1), -0.5 (-1.48 rounds to -1), 1.5 (clamped)
    assert torch.allclose(q(x), torch.tensor([[0.5 - 5.0 + 150.0]]))


@pytest.mark.parametrize("pattern", [None, (2, 4), (4, 8)])
@pytest.mark.parametrize("scores", ["magnitude", "wanda"])
def test_prune_model_keeps_half_of_every_row_and_the_n_of_m_pattern(tiny, windows, pattern, scores):
    pruned = prune_model(tiny, windows, pattern, scores)
    for name, linear in block_linears(pruned).items():
        w = linear.weight
        kept = (w != 0).reshape(w.shape[0], -1, pattern[1] if pattern else w.shape[1]).sum(-1)
        assert (kept == (pattern[0] if pattern else w.shape[1] // 2)).all(), name
        original = tiny.get_submodule(name).weight
        assert torch.equal(w[w != 0], original[w != 0])


def test_magnitude_pruning_keeps_the_largest_weights_of_each_row(tiny, windows):
    w = tiny.blocks[0].attn.proj.weight.detach()
    pruned = prune_model(tiny, windows, None, "magnitude").blocks[0].attn.proj.weight
    threshold = w.abs().sort(dim=1).values[:, w.shape[1] // 2 - 1:w.shape[1] // 2 + 1]
    assert ((pruned != 0) == (w.abs() >= threshold[:, 1:])).all()


def test_census_sites_cover_the_residual_stream_and_every_block_linear(tiny):
    sites = census_sites(tiny)
    assert [s for s in sites if s.startswith("residual")] == ["residual.0", "residual.1", "residual.2"]
    assert sites["residual.2"] == "ln_f" and set(block_linears(tiny)) <= set(sites.values())


def test_int8_weight_only_equals_the_dequantized_product():
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 128, generator=torch.Generator().manual_seed(1))
    scale = w.abs().amax(1) / 127
    dequantized = torch.clamp(torch.round(w / scale[:, None]), -127, 127) * scale[:, None]
    assert torch.allclose(int8_weight_only(w)(x), x @ dequantized.T, atol=1e-4, rtol=1e-4)


FIGURES = {
    "fp32_ppl": 6.0, "rtn": {"8-channel": 6.03, "3-g64": 8.0}, "rtn_bits_per_weight": {"8-channel": 8.0},
    "hard_setting": {"bits": 3, "group_size": 64},
    "gptq": {"ppl": 6.8, "recovered": 0.6, "after_awq": 6.7, "after_awq_recovered": 0.65},
    "awq": {"rtn": 8.0, "salient_1pct": 7.0, "random_1pct": 7.8,
            "recovered": {"salient_1pct": 0.5, "random_1pct": 0.1, "searched": 0.2}},
    "smoothquant": {"8": {"naive": 6.4, "alpha_0.5": 6.1, "chosen": 6.1, "alpha": 0.5}},
    "sparsity": {"magnitude": {"2:4": 9.0}, "wanda": {"2:4": 8.0}},
    "kd": {"params": 100, "steps": 5, "cross_entropy_per_seed": [9.0, 9.1, 9.2],
           "forward_kl_per_seed": [8.0, 8.1, 8.2], "reverse_kl_per_seed": [9.5, 9.6, 9.7]},
}


def test_the_claims_read_the_targets_of_the_issue():
    held = [v[1] if v else None for v in (c.check(FIGURES) for c in REGISTRY["llm"].claims)]
    # rtn 8-bit within 1%; GPTQ 60% >= 50%; AWQ 20% < 30%; salient 0.5 >= 2 x 0.1; smoothing 0.1 <= 0.4 / 2;
    # Wanda 2 <= 0.8 x 3; KD: 8.1 - 9.1 = -1 < -2 x 0.1; speed: not in the figures
    assert held == [True, True, False, True, True, True, True, None]


def test_tables_render_partial_figures_and_an_empty_section():
    assert all(isinstance(t, str) for t in REGISTRY["llm"].tables(FIGURES))
    assert REGISTRY["llm"].tables({})


def test_the_minilm_tables_summarize_each_kind_of_input_over_the_layers():
    site = {"max_over_median": 2.0, "kurtosis_max": 3.0, "outliers": []}
    census = {f"layers.{i}.{k}": dict(site) for i in range(2) for k in ("query", "attn_out", "fc", "fc_out")}
    census["layers.0.fc"] = {"max_over_median": 15.0, "kurtosis_max": 40.0, "outliers": [99, 223]}
    census["layers.1.fc"] = {"max_over_median": 9.0, "kurtosis_max": 50.0, "outliers": [99]}
    w8a8 = {"naive": {"cosine_mean": 0.98, "cosine_min": 0.97, "error": {"layers.0.fc": 0.06, "layers.1.fc": 0.08}}}
    census_table, w8a8_table = minilm_tables({"census": census, "w8a8": w8a8})
    assert "| fc | 15.00 | 50.0 | 99 (2 of 2 layers), 223 (1 of 2 layers) |" in census_table
    assert "| query | 2.00 | 3.0 | none |" in census_table
    assert "| naive | 0.9800 | 0.9700 | 0.0700 |" in w8a8_table
    assert minilm_tables({}) == []

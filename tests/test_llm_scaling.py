"""Tests of course_lib.llm.scaling against independent references: moments by hand and scipy's kurtosis,
SmoothQuant's scales by hand, a float64 model whose output must not change when scales are folded in, and a
brute-force evaluation of AWQ's grid written as Python loops."""
import math

import pytest
import scipy.stats
import torch
from torch.func import functional_call

from course_lib.llm import (
    GPT,
    GPTConfig,
    awq_search_scales,
    fake_group_quantize,
    fold_scales,
    outlier_stats,
    smooth_scales,
)
from course_lib.pruning import magnitude_prune

CONFIG = GPTConfig(context=8, n_layer=2, n_head=2, width=8, dropout=0.0)


def _model(seed=0):
    torch.manual_seed(seed)
    model = GPT(CONFIG).double().eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for name, p in model.named_parameters():
            if ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model


# --- outlier_stats ------------------------------------------------------------------------------------

def test_outlier_stats_by_hand():
    x = torch.tensor([[1.0, 0.0, 2.0, 0.1], [-1.0, 0.0, 2.0, -0.1], [1.0, 0.0, 2.0, 0.1], [-1.0, 4.0, 2.0, 30.0]])
    stats = outlier_stats(x)
    assert stats.absmax.tolist() == pytest.approx([1.0, 4.0, 2.0, 30.0])
    # channel 1: mean 1, deviations (-1, -1, -1, 3): m2 = 12 / 4 = 3, m4 = 84 / 4 = 21, kurtosis 21 / 9
    assert stats.kurtosis[0].item() == pytest.approx(1.0) and stats.kurtosis[1].item() == pytest.approx(21 / 9)
    assert math.isnan(stats.kurtosis[2].item())  # a constant channel
    # median of the maxima (1, 2, 4, 30) is 3: only 30 > 6 * 3
    assert stats.outliers.tolist() == [3]
    assert outlier_stats(x, threshold=1.2).outliers.tolist() == [1, 3]


def test_outlier_stats_calls_a_constant_channel_constant_even_when_its_mean_is_not_exact():
    x = torch.full((2, 32, 10), 0.7, dtype=torch.float64)  # the mean of these 64 tokens is off by an ulp
    assert (x.reshape(-1, 10) - x.reshape(-1, 10).mean(0)).abs().max() > 0  # so m2 > 0 by rounding alone
    assert torch.isnan(outlier_stats(x).kurtosis).all()


def test_outlier_stats_match_scipy_and_flatten_leading_dimensions():
    x = torch.randn(2, 50, 6, generator=torch.Generator().manual_seed(0)) ** 3
    stats = outlier_stats(x)
    flat = x.reshape(100, 6).numpy()
    expected = scipy.stats.kurtosis(flat, axis=0, fisher=False, bias=True)
    assert torch.allclose(stats.kurtosis, torch.tensor(expected, dtype=torch.float32), rtol=1e-5)
    assert torch.equal(stats.absmax, x.abs().amax((0, 1)))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        outlier_stats(torch.ones(1, 4))
    with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
        outlier_stats(x, threshold=0)


# --- smooth_scales -------------------------------------------------------------------------------------

def test_smooth_scales_by_hand_and_clamped():
    act, weight = torch.tensor([4.0, 1.0, 0.0]), torch.tensor([1.0, 4.0, 2.0])
    assert smooth_scales(act, weight, 0.5).tolist() == pytest.approx([2.0, 0.5, 1e-5])
    assert smooth_scales(act, weight, 1.0).tolist() == pytest.approx([4.0, 1.0, 1e-5])
    assert smooth_scales(act, weight, 0.0).tolist() == pytest.approx([1.0, 0.25, 0.5])
    assert smooth_scales(act, torch.tensor([1.0, 4.0, 0.0]), 0.0)[2].item() == pytest.approx(1e5)


def test_smoothing_at_one_half_balances_activation_and_weight_maxima():
    g = torch.Generator().manual_seed(0)
    act, weight = torch.rand(16, generator=g) * 50 + 0.1, torch.rand(16, generator=g) + 0.01
    s = smooth_scales(act, weight, 0.5)
    assert torch.allclose(act / s, weight * s)  # max|X_j / s_j| = max|W_j s_j| = sqrt(max|X_j| max|W_j|)


@pytest.mark.parametrize("args, error, match", [
    ((torch.ones(3), torch.ones(4), 0.5), ValueError, r"weight_absmax must have the shape of act_absmax \(3,\)"),
    ((torch.ones(3), torch.ones(3), 1.5), ValueError, r"alpha must be a finite number in \[0, 1\]"),
    ((-torch.ones(3), torch.ones(3), 0.5), ValueError, "act_absmax must be a 1-d tensor of finite values >= 0"),
    ((torch.ones(3, dtype=torch.int64), torch.ones(3), 0.5), TypeError, "act_absmax must be a floating-point"),
])
def test_smooth_scales_errors(args, error, match):
    with pytest.raises(error, match=match):
        smooth_scales(*args)


# --- fold_scales ---------------------------------------------------------------------------------------

def test_folding_scales_leaves_the_float_output_unchanged_and_the_argument_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    scales = {name: torch.rand(8, generator=g, dtype=torch.float64) * 3 + 0.2 for name in model.scale_followers()}
    folded = fold_scales(model, scales=scales)
    ids = torch.randint(0, 257, (3, 8), generator=g)
    assert torch.allclose(folded(ids), model(ids), atol=1e-10)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # what moved: LayerNorm weight and bias / s, the V rows of qkv / s, the following columns * s
    s = scales["blocks.0.ln_1"]
    assert torch.allclose(folded.blocks[0].ln_1.bias, model.blocks[0].ln_1.bias / s)
    assert torch.allclose(folded.blocks[0].attn.qkv.weight[:16], model.blocks[0].attn.qkv.weight[:16] * s)
    v = scales["blocks.0.attn.qkv"]
    assert torch.allclose(folded.blocks[0].attn.qkv.bias[16:], model.blocks[0].attn.qkv.bias[16:] / v)
    assert torch.allclose(folded.blocks[0].attn.proj.weight, model.blocks[0].attn.proj.weight * v)


def test_fold_scales_errors():
    model = _model()
    unknown = r"^the keys of scales must name ops a scale folds into \(blocks.0.ln_1, .*\); 'blocks.0.mlp.proj' is not"
    with pytest.raises(ValueError, match=unknown):
        fold_scales(model, scales={"blocks.0.mlp.proj": torch.ones(32, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"scales\['blocks.0.ln_1'\] must hold 8 positive values"):
        fold_scales(model, scales={"blocks.0.ln_1": torch.zeros(8)})
    with pytest.raises(TypeError, match="model must have a scale_followers"):
        fold_scales(torch.nn.Linear(2, 2), scales={})
    with pytest.raises(TypeError, match=r"^scales must be a mapping \{op name: \(C,\) tensor\}, got \[1\] \(list\)"):
        fold_scales(model, scales=[1])
    with pytest.raises(TypeError, match="takes 1 positional argument"):  # settings are keyword-only
        fold_scales(model, {"blocks.0.ln_1": torch.ones(8)})


def test_fold_scales_refuses_a_parametrized_weight_it_would_scale_without_effect():
    """Before: scaling the weight a parametrization computes changed a temporary; the scales were lost silently."""
    model = magnitude_prune(_model(), sparsity=0.5, layers=["blocks.0.attn.qkv"])
    with pytest.raises(ValueError, match="model must have no parametrized weight where scales fold .*got parametrized "
                                         "blocks.0.attn.qkv$"):
        fold_scales(model, scales={"blocks.0.ln_1": torch.full((8,), 2.0, dtype=torch.float64)})


# --- awq_search_scales ---------------------------------------------------------------------------------

def _loop_group_quantize(rows, bits, group_size):
    out = []
    for row in rows:
        new = []
        for start in range(0, len(row), group_size):
            group = row[start:start + group_size]
            low, high = min(0.0, min(group)), max(0.0, max(group))
            scale = max((high - low) / (2 ** bits - 1), torch.finfo(torch.float32).eps)
            zero = round(-low / scale)
            new += [(min(max(round(v / scale) + zero, 0), 2 ** bits - 1) - zero) * scale for v in group]
        out.append(new)
    return out


def test_awq_search_matches_a_brute_force_over_the_grid():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 8, dtype=torch.float64, generator=g)
    x = torch.randn(10, 8, dtype=torch.float64, generator=g) * torch.tensor([8.0, 1, 1, 0.1, 3, 1, 1, 0.5])
    xs, ws = x.tolist(), w.tolist()
    mean_abs = [sum(abs(r[j]) for r in xs) / len(xs) for j in range(8)]
    reference = [[sum(a * b for a, b in zip(r, wr)) for wr in ws] for r in xs]
    errors = []
    for k in range(20):
        s = [max(m ** (k / 20), 1e-4) for m in mean_abs]
        norm = math.sqrt(max(s) * min(s))
        s = [v / norm for v in s]
        q = _loop_group_quantize([[wr[j] * s[j] for j in range(8)] for wr in ws], 2, 4)
        q = [[qr[j] / s[j] for j in range(8)] for qr in q]
        out = [[sum(a * b for a, b in zip(r, qr)) for qr in q] for r in xs]
        errors.append(sum((o - e) ** 2 for ro, re in zip(out, reference) for o, e in zip(ro, re)) / 30)
    search = awq_search_scales(w, x, 2, 4)
    assert search.alphas.tolist() == [k / 20 for k in range(20)]
    assert search.errors.tolist() == pytest.approx(errors, rel=1e-9)
    best = min(range(20), key=lambda k: (errors[k], k))
    assert search.alpha == best / 20 and best > 0
    assert search.errors[0].item() == pytest.approx(((x @ (fake_group_quantize(w, 2, 4) - w).T) ** 2).mean().item())


def test_awq_scales_fold_into_the_model_as_searched():
    model = _model(3)
    with torch.no_grad():
        model.blocks[0].ln_1.weight[2] = 8.0  # a salient input channel of qkv
    ids = torch.randint(0, 257, (4, 8), generator=torch.Generator().manual_seed(3))
    h = model.tok_emb(ids) + model.pos_emb(torch.arange(8))  # block 0's input (no dropout)
    attn, x = model.blocks[0].attn, model.blocks[0].ln_1(h)

    def forward(weight):
        return functional_call(attn, {"qkv.weight": weight}, (x,))

    search = awq_search_scales(attn.qkv.weight, x, 2, 4, forward=forward)
    assert search.alpha > 0 and search.errors.min() < search.errors[0]  # scaling helps here
    folded = fold_scales(model, scales={"blocks.0.ln_1": search.scales})
    with torch.no_grad():
        folded.blocks[0].attn.qkv.weight.copy_(fake_group_quantize(folded.blocks[0].attn.qkv.weight, 2, 4))
    out = folded.blocks[0].attn(folded.blocks[0].ln_1(h))
    expected = forward(fake_group_quantize(attn.qkv.weight * search.scales, 2, 4) / search.scales)
    assert torch.allclose(out, expected, atol=1e-10)
    error = ((out - forward(attn.qkv.weight)) ** 2).mean().item()
    assert error == pytest.approx(search.errors.min().item(), rel=1e-6)


def test_awq_search_errors():
    w = torch.ones(2, 8)
    with pytest.raises(ValueError, match=r"inputs must have 8 features \(weight's in_features\)"):
        awq_search_scales(w, torch.ones(4, 6), 4, None)
    with pytest.raises(ValueError, match="n_grid must be an integer >= 1"):
        awq_search_scales(w, torch.ones(4, 8), 4, None, n_grid=0)
    with pytest.raises(TypeError, match="forward must be None or a callable"):
        awq_search_scales(w, torch.ones(4, 8), 4, None, forward=3)

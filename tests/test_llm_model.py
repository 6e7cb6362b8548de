"""Tests of course_lib.llm's model, tokenizer, perplexity and training loop, against independent references:
the parameter count by formula, attention written out with an explicit causal softmax, perplexity of models
whose probabilities are known by hand, and the learning-rate schedule at hand-computed steps."""
import math

import pytest
import torch
from torch import nn

from course_lib.llm import (
    BOS,
    GPT,
    VOCAB_SIZE,
    GPTConfig,
    LMHistory,
    LMRecipe,
    bits_per_character,
    decode,
    encode,
    generate,
    perplexity,
    sample_windows,
    train_lm,
)
from course_lib.llm.train import _learning_rate
from course_lib.training import Trained

TINY = GPTConfig(context=8, n_layer=2, n_head=2, width=16, dropout=0.0)
ONE_LAYER = GPTConfig(context=8, n_layer=1, n_head=2, width=16, dropout=0.0)


def _tiny(seed=0, config=TINY):
    torch.manual_seed(seed)
    return GPT(config).eval()


# --- tokenizer --------------------------------------------------------------------------------------

def test_encode_decode_round_trip_and_bos():
    text = "def f(x):\n    return x  # café"
    ids = encode(text)
    assert ids.dtype == torch.int64 and ids.tolist() == list(text.encode("utf-8"))
    assert encode("ab", bos=True).tolist() == [BOS, 97, 98]
    assert decode(encode(text, bos=True)) == text
    assert VOCAB_SIZE == BOS + 1 == 257


def test_tokenizer_errors():
    with pytest.raises(TypeError, match="text must be a str"):
        encode(b"bytes")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 256\]"):
        decode(torch.tensor([97, 300]))


# --- model ------------------------------------------------------------------------------------------

def test_parameter_count_matches_the_formula():
    c = GPTConfig()
    d, v = c.width, c.vocab_size
    per_block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = v * d + c.context * d + c.n_layer * per_block + 2 * d + v * d  # untied head
    model = GPT()
    assert sum(p.numel() for p in model.parameters()) == expected
    assert 1_000_000 < expected < 3_000_000
    assert model.head.weight.data_ptr() != model.tok_emb.weight.data_ptr()


def test_attention_matches_an_explicit_causal_softmax():
    model = _tiny().double()
    attn = model.blocks[0].attn
    x = torch.randn(3, 7, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    q, k, v = attn.qkv(x).split(16, dim=2)
    heads = []
    for h in range(2):
        sl = slice(8 * h, 8 * h + 8)
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(8)
        scores = scores.masked_fill(torch.ones(7, 7).triu(1).bool(), float("-inf"))
        heads.append(torch.softmax(scores, -1) @ v[..., sl])
    expected = attn.proj(torch.cat(heads, -1))
    assert torch.allclose(attn(x), expected, atol=1e-12)


def test_model_is_causal_and_checks_the_context():
    model = _tiny()
    ids = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 256
    assert torch.equal(model(ids)[:, :5], model(changed)[:, :5])
    assert not torch.allclose(model(ids)[:, 5:], model(changed)[:, 5:])
    with pytest.raises(ValueError, match=r"T <= context \(8\)"):
        model(torch.zeros(1, 9, dtype=torch.int64))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"width": 10, "n_head": 3}, ValueError, "width must be divisible by n_head"),
    ({"n_layer": 0}, ValueError, "n_layer must be an integer >= 1"),
    ({"dropout": 1.0}, ValueError, "dropout must be a finite number in"),
    ({"context": True}, TypeError, "context must be an integer"),
])
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        GPTConfig(**kwargs)


def test_scale_followers_name_layers_of_matching_width():
    model = _tiny()
    modules = dict(model.named_modules())
    followers = model.scale_followers()
    assert len(followers) == 3 * TINY.n_layer
    for previous, linears in followers.items():
        width = modules[previous].weight.shape[0] if isinstance(modules[previous], nn.LayerNorm) else TINY.width
        assert all(modules[n].in_features == width for n in linears)


def test_generate_greedy_limit_slides_a_window_that_starts_with_bos():
    model = _tiny()
    prompt = encode("abc")
    out = generate(model, prompt, 10, temperature=1e-6)
    ids = prompt.tolist()
    for _ in range(10):  # greedy decoding written out: [BOS] + the last context - 1 ids
        window = torch.tensor([[BOS] + ids[-(TINY.context - 1):]])
        ids.append(int(model(window)[0, -1].argmax()))
    assert out.tolist() == ids
    sampled = generate(model, prompt, 10, seed=3)
    assert torch.equal(sampled, generate(model, prompt, 10, seed=3)) and torch.equal(sampled[:3], prompt)


def test_generate_and_perplexity_run_in_eval_mode_and_restore_every_module_mode():
    """Before: both left the model in eval mode (model.eval() and no restore)."""
    model = _tiny().train()
    model.blocks[0].attn.drop.eval()  # mixed modes: a careless restore would change them
    modes = [m.training for m in model.modules()]
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(any(x.training for x in m.modules())))
    generate(model, encode("ab"), 2)
    perplexity(model, torch.arange(20), 8)
    assert seen and not any(seen)
    assert [m.training for m in model.modules()] == modes


# --- perplexity -------------------------------------------------------------------------------------

class Uniform(nn.Module):
    def forward(self, ids):
        return torch.zeros(*ids.shape, 11)


class Bigram(nn.Module):
    """Logits of the next token depend only on the current one: ``table[ids]``; records its inputs."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(table)
        self.inputs = []

    def forward(self, ids):
        self.inputs.extend(ids.tolist())
        return self.table[ids]


def _bigram_nll(table, previous, token):
    row = table[previous].tolist()
    return -(row[token] - math.log(sum(math.exp(r) for r in row)))


def test_uniform_logits_give_the_vocabulary_size():
    tokens = torch.randint(0, 11, (50,))
    assert perplexity(Uniform(), tokens, 8) == pytest.approx(11, rel=1e-12)
    assert bits_per_character(perplexity(Uniform(), tokens, 8, stride=3)) == pytest.approx(math.log2(11))


def test_perplexity_of_a_bigram_model_by_hand_non_overlapping():
    table = torch.randn(257, 257, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])  # 11 tokens, context 4: windows of 4, 4, 3
    model = Bigram(table)
    # each window starts afresh: its first token is predicted from BOS
    nll = [_bigram_nll(table, BOS if i % 4 == 0 else tokens[i - 1].item(), t) for i, t in enumerate(tokens.tolist())]
    assert perplexity(model, tokens, 4, batch_size=1) == pytest.approx(math.exp(sum(nll) / 11), rel=1e-12)
    assert model.inputs == [[BOS, 3, 1, 4], [BOS, 5, 9, 2], [BOS, 5, 3]]


def test_strided_perplexity_counts_each_token_once_with_bos_only_at_the_start():
    table = torch.randn(257, 257, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tokens = torch.randint(0, 256, (23,), generator=torch.Generator().manual_seed(2))
    model = Bigram(table)
    nll = [_bigram_nll(table, BOS if i == 0 else tokens[i - 1].item(), t) for i, t in enumerate(tokens.tolist())]
    assert perplexity(model, tokens, 6, stride=2) == pytest.approx(math.exp(sum(nll) / 23), rel=1e-12)
    assert all(row[0] == BOS for row in model.inputs)
    assert [len(row) for row in model.inputs] == [6] * 9 + [5]  # starts 0, 2, ..., 18; the last reaches the end


def test_perplexity_does_not_depend_on_the_batch_size():
    tokens = torch.randint(0, 256, (70,), generator=torch.Generator().manual_seed(0))
    model = _tiny()
    assert perplexity(model, tokens, 8, batch_size=1) == pytest.approx(perplexity(model, tokens, 8), rel=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"tokens": torch.rand(5)}, TypeError, "tokens must be a 1-d integer tensor"),
    ({"tokens": torch.zeros(2, 3, dtype=torch.int64)}, ValueError, "tokens must be a 1-d integer tensor"),
    ({"context": 0}, ValueError, "context must be an integer >= 1"),
    ({"stride": 9}, ValueError, r"stride \(None or, for context 8, an integer\) must be an integer in \[1, 8\]"),
])
def test_perplexity_errors(kwargs, error, match):
    args = {"tokens": torch.arange(10), "context": 8} | kwargs
    with pytest.raises(error, match=match):
        perplexity(_tiny(), args.pop("tokens"), args.pop("context"), **args)
    with pytest.raises(ValueError, match="perplexity must be a finite number >= 1"):
        bits_per_character(0.5)


# --- training ---------------------------------------------------------------------------------------

def test_learning_rate_schedule_by_hand():
    recipe = LMRecipe(steps=11, lr=1.0, min_lr=0.1, warmup_steps=2)
    assert _learning_rate(0, recipe) == pytest.approx(0.5)  # warm-up: (step + 1) / warmup_steps
    assert _learning_rate(1, recipe) == pytest.approx(1.0)
    assert _learning_rate(2, recipe) == pytest.approx(1.0)  # cosine starts at lr ...
    assert _learning_rate(6, recipe) == pytest.approx(0.55)  # ... is halfway at (2 + 10) / 2 ...
    assert _learning_rate(10, recipe) == pytest.approx(0.1)  # ... and ends at min_lr on the last step


def test_sample_windows_start_with_bos_and_shift_by_one():
    tokens = torch.arange(100) + 1000
    inputs, targets = sample_windows(tokens, 6, 5, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (5, 6)
    assert (inputs[:, 0] == BOS).all() and torch.equal(inputs[:, 1:], targets[:, :-1])
    assert torch.equal(targets - targets[:, :1], torch.arange(6).expand(5, 6))  # contiguous slices of the stream


def test_train_lm_lowers_the_loss_on_a_toy_corpus_and_leaves_the_argument_untouched():
    tokens = encode("the cat sat on the mat. " * 40)
    model = _tiny(config=ONE_LAYER)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = LMRecipe(steps=16, batch_size=8, lr=2e-2, min_lr=2e-3, warmup_steps=2, eval_every=8, eval_tokens=64)
    result = train_lm(model, tokens, recipe=recipe, val_tokens=tokens[:64], device="cpu", progress=False)
    assert isinstance(result, Trained) and isinstance(result.history, LMHistory)
    history = result.history
    assert history.step == [8, 16] and len(history.val_perplexity) == 2
    assert history.loss[-1] < 0.7 * history.loss[0]
    assert history.val_perplexity[-1] < history.val_perplexity[0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not result.model.training


def test_train_lm_repeats_with_its_seed():
    tokens = encode("the cat sat on the mat. " * 10)
    recipe = LMRecipe(steps=3, batch_size=4, eval_every=1)
    first, second = (train_lm(_tiny(config=ONE_LAYER), tokens, recipe=recipe, device="cpu", progress=False)
                     for _ in range(2))
    assert first.history.loss == second.history.loss  # same seed, same machine: the same run


def test_train_lm_errors():
    with pytest.raises(ValueError, match="tokens must be a 1-d integer tensor of at least 8 ids"):
        train_lm(_tiny(), torch.arange(5), recipe=LMRecipe(steps=1), progress=False)
    with pytest.raises(TypeError, match="recipe must be an LMRecipe"):
        train_lm(_tiny(), torch.arange(50), recipe={"steps": 1}, progress=False)
    with pytest.raises(ValueError, match=r"min_lr must be a finite number in \[0, 0.001\]"):
        LMRecipe(lr=1e-3, min_lr=1e-2)

r"""A byte-level GPT small enough to train on two CPU cores, and its tokenizer.

The model is GPT-2's decoder (Radford et al., 2019) at toy scale, in the style of nanoGPT/minGPT:

$$h_0 = E[x] + P, \qquad h \leftarrow h + \mathrm{Attn}(\mathrm{LN}_1(h)), \qquad
h \leftarrow h + \mathrm{MLP}(\mathrm{LN}_2(h)), \qquad \mathrm{logits} = \mathrm{LN}_f(h_L)\,W_{\mathrm{head}}^\top,$$

*Pre-LayerNorm* blocks (the normalization sits before each sub-layer, on the residual branch, as in GPT-2),
causal multi-head self-attention computed by :func:`torch.nn.functional.scaled_dot_product_attention`
($\mathrm{softmax}(QK^\top/\sqrt{d_h} + M)V$ with $M$ the causal mask), and an MLP
$W_2\,\mathrm{GELU}(W_1 u + b_1) + b_2$ four times wider than the model. Positions are learned. The output
head is **untied** from the token embedding: every Linear layer (``attn.qkv``, ``attn.proj``, ``mlp.fc``,
``mlp.proj``, ``head``) owns its weight, so quantizing or pruning a Linear never changes the embedding.

Tokens are bytes: ids ``0..255`` are the UTF-8 bytes of the text and :data:`BOS` = 256 is a
beginning-of-sequence token that starts **every** window the model sees, in training and in evaluation,
so that the first position always holds the same token and attention can park on it (the "attention
sink" of Xiao et al., 2024, *Efficient streaming language models with attention sinks*). With the default
:class:`GPTConfig` (4 layers, width 192, 6 heads, context 128) the model has about 1.9 M parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_bool, check_int, check_number, check_tensor, reads_model
from ..training import evaluating

BOS = 256  # the beginning-of-sequence id, after the 256 byte values
VOCAB_SIZE = 257  # 256 bytes + BOS


def encode(text: str, *, bos: bool = False) -> torch.Tensor:
    """The UTF-8 bytes of ``text`` as ``int64`` ids ``(len(bytes),)``, preceded by :data:`BOS` if ``bos``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    ids = torch.from_numpy(np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64))
    return torch.cat([torch.tensor([BOS]), ids]) if check_bool(bos, "bos") else ids


def check_ids(tokens: object, name: str, min_length: int = 1) -> torch.Tensor:
    """``tokens`` if it is a 1-d integer tensor of at least ``min_length`` ids (a token stream, no batch)."""
    allowed = f"a 1-d integer tensor of at least {min_length} ids"
    check_tensor(tokens, name)
    given = f"got a tensor of dtype {tokens.dtype} and shape {tuple(tokens.shape)}"
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(f"{name} must be {allowed}, {given}")
    if tokens.dim() != 1 or len(tokens) < min_length:
        raise ValueError(f"{name} must be {allowed}, {given}")
    return tokens


def decode(ids: torch.Tensor) -> str:
    """The text of byte ids ``(T,)``: :data:`BOS` ids are dropped, invalid UTF-8 becomes U+FFFD."""
    values = check_ids(ids, "ids", 0).tolist()
    if any(not 0 <= v <= BOS for v in values):
        raise ValueError(f"ids must lie in [0, {BOS}], got values from {min(values)} to {max(values)}")
    return bytes(v for v in values if v != BOS).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a :class:`GPT`: ``context`` = positions per window (BOS included), ``width`` = model dimension
    $d$ (divisible by ``n_head``), ``dropout`` = probability on the attention weights and residual branches."""

    vocab_size: int = VOCAB_SIZE
    context: int = 128
    n_layer: int = 4
    n_head: int = 6
    width: int = 192
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context", "n_layer", "n_head", "width"):
            check_int(getattr(self, name), name, 1)
        check_number(self.dropout, "dropout", 0.0, 1.0, high_open=True)
        if self.width % self.n_head:
            raise ValueError(f"width must be divisible by n_head ({self.n_head}), got {self.width}")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one Linear ``qkv`` ``(d -> 3d)`` makes $Q, K, V$ (in that order),
    ``proj`` ``(d -> d)`` mixes the heads. Input and output ``(B, T, d)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """``proj(GELU(fc(x)))`` with hidden width $4d$; input and output ``(B, T, d)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.width, 4 * config.width)
        self.act = nn.GELU()
        self.proj = nn.Linear(4 * config.width, config.width)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """A Pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(config.width), CausalSelfAttention(config)
        self.ln_2, self.mlp = nn.LayerNorm(config.width), MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The byte-level language model: ids ``(B, T)``, ``T <= config.context`` -> next-token logits ``(B, T, V)``.

    Initialized as GPT-2: weights $\\mathcal{N}(0, 0.02^2)$, biases 0, and the two residual projections of each
    block (``attn.proj``, ``mlp.proj``) $\\mathcal{N}(0, (0.02/\\sqrt{2L})^2)$ so that the residual stream's
    variance does not grow with the depth $L$.
    """

    def __init__(self, config: GPTConfig | None = None) -> None:
        super().__init__()
        self.config = config = GPTConfig() if config is None else config
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.tok_emb = nn.Embedding(config.vocab_size, config.width)
        self.pos_emb = nn.Embedding(config.context, config.width)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.shape[1] > self.config.context:
            raise ValueError(f"ids must have shape (B, T) with T <= context ({self.config.context}), "
                             f"got {tuple(ids.shape)}")
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.drop(self.tok_emb(ids) + self.pos_emb(positions))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))

    def scale_followers(self) -> dict[str, list[str]]:
        """Where per-channel scales fold exactly (SmoothQuant, AWQ): ``{previous op: [Linears it feeds]}``.

        ``ln_1 -> attn.qkv`` and ``ln_2 -> mlp.fc`` (the LayerNorm's output is the Linear's input), and
        ``attn.qkv -> attn.proj``: attention output is a convex combination of the rows of $V$, so scaling
        the $V$ part of ``qkv`` (its last $d$ outputs) by $1/s$ and ``proj``'s columns by $s$ is exact.
        ``mlp.proj`` follows a GELU, which does not commute with scaling: it has no exact fold.
        """
        pairs = {}
        for i in range(len(self.blocks)):
            b = f"blocks.{i}"
            pairs |= {f"{b}.ln_1": [f"{b}.attn.qkv"], f"{b}.attn.qkv": [f"{b}.attn.proj"],
                      f"{b}.ln_2": [f"{b}.mlp.fc"]}
        return pairs


@reads_model
@torch.inference_mode()
def generate(model: nn.Module, prompt: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0,
             seed: int = 0) -> torch.Tensor:
    """Sample ``max_new_tokens`` byte ids after ``prompt`` ``(T,)`` (ids without BOS), as the model was trained.

    Each step feeds ``[BOS] + the last context - 1 ids`` and samples from ``softmax(logits / temperature)``
    of the last position with a ``torch.Generator`` seeded with ``seed``. The model runs in eval mode; its
    train/eval modes are restored afterwards. Returns ``prompt`` followed by the new ids,
    ``(T + max_new_tokens,)``; :func:`decode` turns it into text.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {model!r:.80} ({type(model).__name__})")
    check_ids(prompt, "prompt", 0)
    check_int(max_new_tokens, "max_new_tokens", 0)
    check_number(temperature, "temperature", 0.0, None, low_open=True)
    context = model.config.context
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(check_int(seed, "seed", 0))
    ids = prompt.to(device, torch.int64)
    bos = torch.tensor([BOS], device=device)
    with evaluating(model):
        for _ in range(max_new_tokens):
            window = torch.cat([bos, ids[max(0, len(ids) - context + 1):]])
            probs = torch.softmax(model(window[None])[0, -1].double() / temperature, dim=-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)])
    return ids.cpu()

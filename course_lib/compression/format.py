"""The Deep Compression file format: a pruned, weight-shared model written to bytes and read back.

Layout (all integers little-endian), version 1::

    header   magic  b"DCMP"                    4 bytes
             version                           u16   (1)
             total length of the file          u32   (bytes, checksum included)
             architecture name, data set name  u16 length + UTF-8 each ("" = not given)
             number of records                 u32
    records  one per state_dict entry:
             name                              u16 length + UTF-8 (e.g. "net.1.weight")
             kind                              u8    0 = raw tensor, 1 = shared weight
             dtype                             u8    index into DTYPES (the tensor's dtype)
             shape                             u8 ndim, then ndim x u32
      raw    the tensor's bytes, C order
      shared bits b, index_bits r              u8, u8
             code-book dtype                   u8    0 = float32, 1 = float16
             code book                         2**b values
             number of stored entries n        u32
             Huffman code lengths, code-book indices   2**b x u8 (0 = symbol absent)
             Huffman code lengths, relative offsets    2**r x u8
             code-book index stream            u32 length + bytes (n Huffman codes)
             relative offset stream            u32 length + bytes (n Huffman codes)
    trailer  CRC-32 of every byte before it    u32

Sparse storage (Han et al., 2016, Fig. 2 and section 2): the weight is flattened in C order and only
the entries whose code-book index is not 0 are stored, each as (offset, index), where the offset is the
distance to the previous stored entry minus one (the number of skipped entries; the first counts from
position -1). An offset must fit in ``r`` bits: when a gap exceeds $2^r$ a *filler* entry is stored
$2^r$ positions further, with index 0. Code 0 is the "background" of the layer: for a pruned layer
shared with ``skip_zeros`` it is exactly 0.0, so skipping it is the sparse format of the paper; for a
dense layer it is simply the smallest centroid. Both streams are Huffman-coded with canonical codes,
so each table is just the code lengths.

The decoded weight is ``codebook[indices]`` computed in float32, the same operation as a shared layer's
forward pass, so a file reproduces the compressed model's weights bit for bit.
"""
from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validation import check_choice, check_int, check_module, reads_model, weight_layers
from ..models import MODELS, build_model
from ..quantization.kmeans import codebook_of, is_shared
from .huffman import canonical_code, huffman_code, huffman_decode, huffman_encode

MAGIC = b"DCMP"
VERSION = 1
DTYPES = (torch.float32, torch.float16, torch.float64, torch.bfloat16, torch.int64, torch.int32,
          torch.int8, torch.uint8, torch.bool)
CODEBOOK_DTYPES = (torch.float32, torch.float16)
RAW, SHARED = 0, 1
PAPER_CONV_INDEX_BITS = 8  # width of the relative offsets of conv layers in Han et al. (2016)
PAPER_FC_INDEX_BITS = 5  # and of fc layers
MAX_INDEX_BITS = 8  # the format stores offset widths and code-book widths in [1, 8]
_HEADER = struct.Struct("<4sHI")
_TRAILER = struct.Struct("<I")


@dataclass(frozen=True)
class LayerRecord:
    """What the file holds for one shared weight: its widths and the bytes of each part."""

    name: str
    shape: tuple[int, ...]
    bits: int
    index_bits: int
    entries: int
    nonzero: int
    codebook_bytes: int
    table_bytes: int
    index_stream_bytes: int
    offset_stream_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.codebook_bytes + self.table_bytes + self.index_stream_bytes + self.offset_stream_bytes


# --- sparse relative-offset representation (pure functions on integer arrays) --------------------

def sparse_offsets(codes: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored entries of the flat code array ``codes`` ``(n,)``: ``(offsets, codes)``, both ``(m,)``.

    Entries with code 0 are skipped; each stored entry keeps the number of entries skipped before it,
    which must be below ``2**index_bits``; longer gaps get filler entries of code 0.
    """
    limit = 1 << index_bits
    positions = np.flatnonzero(codes)
    gaps = np.diff(positions, prepend=-1)                  # >= 1
    fillers = (gaps - 1) // limit
    last = np.cumsum(fillers + 1) - 1                      # slot of each real entry
    offsets = np.full(int(last[-1]) + 1 if len(last) else 0, limit - 1, dtype=np.int64)
    stored = np.zeros_like(offsets)
    offsets[last] = gaps - 1 - fillers * limit
    stored[last] = codes[positions]
    return offsets, stored


def dense_codes(offsets: np.ndarray, stored: np.ndarray, size: int) -> np.ndarray:
    """Inverse of :func:`sparse_offsets`: the flat code array ``(size,)``."""
    positions = np.cumsum(offsets + 1) - 1
    if len(positions) and positions[-1] >= size:
        raise ValueError(f"relative offsets reach position {int(positions[-1])} past the layer's {size} entries")
    codes = np.zeros(size, dtype=np.int64)
    codes[positions] = stored
    return codes


# --- byte writer and reader -----------------------------------------------------------------------

def _pack_str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<H", len(raw)) + raw


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    tensor = tensor.detach().cpu().contiguous().reshape(-1)  # 1-D: a 0-d tensor cannot be viewed as bytes
    return tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""


def _huffman_part(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    """(code-length table of ``alphabet`` bytes, coded stream with its u32 length)."""
    lengths = bytearray(alphabet)
    stream = b""
    if len(symbols):
        code = huffman_code(dict(Counter(symbols.tolist())))
        for symbol, bits in code.items():
            lengths[symbol] = len(bits)
        stream = huffman_encode(symbols.tolist(), code)
    return bytes(lengths), struct.pack("<I", len(stream)) + stream


def _shared_record(name: str, codebook: torch.Tensor, indices: torch.Tensor, index_bits: int,
                   codebook_dtype: torch.dtype) -> bytes:
    bits = (len(codebook) - 1).bit_length()
    if len(codebook) != 1 << bits or not 1 <= bits <= 8:
        raise ValueError(f"layer {name!r}: the format stores code books of 2**bits entries, 1 <= bits <= 8; "
                         f"got {len(codebook)} entries")
    offsets, stored = sparse_offsets(indices.reshape(-1).cpu().numpy(), index_bits)
    code_table, code_stream = _huffman_part(stored, 1 << bits)
    offset_table, offset_stream = _huffman_part(offsets, 1 << index_bits)
    shape = tuple(indices.shape)
    return b"".join([_pack_str(name), struct.pack("<BB", SHARED, DTYPES.index(torch.float32)),
                     struct.pack(f"<B{len(shape)}I", len(shape), *shape),
                     struct.pack("<BBB", bits, index_bits, CODEBOOK_DTYPES.index(codebook_dtype)),
                     _tensor_bytes(codebook.to(codebook_dtype)), struct.pack("<I", len(stored)),
                     code_table, offset_table, code_stream, offset_stream])


def _raw_record(name: str, tensor: torch.Tensor) -> bytes:
    if tensor.dtype not in DTYPES:
        raise ValueError(f"state_dict entry {name!r} has dtype {tensor.dtype}; the format stores "
                         f"{', '.join(str(d) for d in DTYPES)}")
    shape = tuple(tensor.shape)
    return b"".join([_pack_str(name), struct.pack("<BB", RAW, DTYPES.index(tensor.dtype)),
                     struct.pack(f"<B{len(shape)}I", len(shape), *shape), _tensor_bytes(tensor)])


def _architecture_of(model: nn.Module) -> tuple[str, str]:
    """The ``build_model`` (name, data set) whose class and layer shapes match ``model``, or ("", "")."""
    shapes = {n: tuple(m.weight.shape) for n, m in weight_layers(model).items()}
    for dataset in ("mnist5k", "cifar10"):
        for name in MODELS:
            try:
                candidate = build_model(name, dataset)
            except ValueError:
                continue
            if type(candidate) is type(model) and shapes == {
                    n: tuple(m.weight.shape) for n, m in weight_layers(candidate).items()}:
                return name, dataset
    return "", ""


def index_bits_for(index_bits: int | Mapping[str, int] | None, name: str, module: nn.Module) -> int:
    """The offset width of layer ``name``: from ``index_bits`` (one width, or ``{layer name: width}``), or the
    paper's (:data:`PAPER_CONV_INDEX_BITS` for a Conv2d, :data:`PAPER_FC_INDEX_BITS` otherwise) when ``None``."""
    if index_bits is None:
        return PAPER_CONV_INDEX_BITS if isinstance(module, nn.Conv2d) else PAPER_FC_INDEX_BITS
    width = index_bits.get(name) if isinstance(index_bits, Mapping) else index_bits
    if width is None:
        raise ValueError(f"index_bits names no width for shared layer {name!r}")
    return check_int(width, f"index_bits for layer {name!r}", 1, MAX_INDEX_BITS)


@reads_model
def compress(model: nn.Module, *, index_bits: int | Mapping[str, int] | None = None,
             codebook_dtype: torch.dtype = torch.float32, architecture: str | None = None,
             dataset: str = "mnist5k") -> bytes:
    """Write ``model`` in the Deep Compression format (see the module docstring) and return the bytes.

    Layers shared by :func:`~course_lib.quantization.share_weights` are stored sparse, as relative
    offsets and code-book indices, both Huffman-coded, plus their code book; every other state_dict
    entry (biases, unshared weights, buffers) is stored raw.

    Args:
        index_bits: width of the relative offsets: one for all layers, ``{layer name: bits}``, or
            ``None`` for the paper's choice (:func:`index_bits_for`).
        codebook_dtype: ``torch.float32`` (default; the file then reproduces the weights exactly) or
            ``torch.float16`` (halves the code books; the loaded weights are rounded to float16).
        architecture: the ``build_model`` name stored in the header so that :func:`decompress` can
            rebuild the model; ``None`` finds it among the course's models ("" if none matches).
        dataset: the ``build_model`` data set stored with ``architecture`` when it is given.
    """
    check_module(model)
    check_choice(codebook_dtype, "codebook_dtype", CODEBOOK_DTYPES)
    if architecture is None:
        architecture, dataset = _architecture_of(model)
    else:
        check_choice(architecture, "architecture (None or a model name)", MODELS)
    records: list[bytes] = []
    skip: list[str] = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if parametrize.is_parametrized(module, "weight") and not is_shared(module):
            raise ValueError(f"layer {name!r} carries a weight parametrization other than weight sharing (a pruning "
                             "mask?); fold it first with course_lib.pruning.make_permanent(model)")
        if is_shared(module):
            codebook, indices = codebook_of(module)
            width = index_bits_for(index_bits, name, module)
            records.append(_shared_record(prefix + "weight", codebook, indices, width, codebook_dtype))
            skip.append(prefix + "parametrizations.weight.")  # the code book and the indices, stored above
    for key, tensor in model.state_dict().items():
        if not key.startswith(tuple(skip)):
            records.append(_raw_record(key, tensor))
    body = b"".join([_pack_str(architecture), _pack_str(dataset if architecture else ""),
                     struct.pack("<I", len(records)), *records])
    total = _HEADER.size + len(body) + _TRAILER.size
    head = _HEADER.pack(MAGIC, VERSION, total) + body
    return head + _TRAILER.pack(zlib.crc32(head))


class _Reader:
    """Reads the body of a file, raising ValueError with the position when the bytes run out."""

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.pos, self.end = data, start, end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise ValueError(f"file is malformed: {what} needs {n} bytes at offset {self.pos}, "
                             f"only {self.end - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def text(self, what: str) -> str:
        (n,) = self.unpack("H", what)
        try:
            return self.take(n, what).decode()
        except UnicodeDecodeError:
            raise ValueError(f"file is malformed: {what} is not UTF-8") from None


def _check_header(data: bytes) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) < _HEADER.size + _TRAILER.size:
        raise ValueError(f"file is truncated: {len(data)} bytes, shorter than the {_HEADER.size + _TRAILER.size}-byte "
                         "header and checksum")
    magic, version, total = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"not a Deep Compression file: magic bytes are {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise ValueError(f"unsupported format version {version}; this course_lib reads version {VERSION}")
    if len(data) != total:
        state = "truncated" if len(data) < total else "longer than its header says"
        raise ValueError(f"file is {state}: header says {total} bytes, got {len(data)}")
    (stored,) = _TRAILER.unpack_from(data, total - _TRAILER.size)
    actual = zlib.crc32(data[:total - _TRAILER.size])
    if stored != actual:
        raise ValueError(f"checksum mismatch: file is corrupt (CRC-32 stored {stored:#010x}, computed {actual:#010x})")


def _decode_stream(reader: _Reader, lengths: bytes, count: int, what: str) -> tuple[np.ndarray, int]:
    (size,) = reader.unpack("I", f"{what} stream length")
    stream = reader.take(size, f"{what} stream")
    if count == 0:
        return np.zeros(0, dtype=np.int64), size
    table = {symbol: length for symbol, length in enumerate(lengths) if length}
    if not table:
        raise ValueError(f"file is malformed: {what} has {count} entries but an empty Huffman table")
    code = canonical_code(table)
    return np.asarray(huffman_decode(stream, code, count), dtype=np.int64), size


def _read_record(reader: _Reader) -> tuple[str, torch.Tensor, LayerRecord | None]:
    name = reader.text("record name")
    kind, dtype_id = reader.unpack("BB", f"kind of {name!r}")
    if kind not in (RAW, SHARED) or dtype_id >= len(DTYPES):
        raise ValueError(f"file is malformed: record {name!r} has kind {kind} and dtype {dtype_id}")
    (ndim,) = reader.unpack("B", f"shape of {name!r}")
    shape = reader.unpack(f"{ndim}I", f"shape of {name!r}")
    numel = int(np.prod(shape, dtype=np.int64))
    if kind == RAW:
        dtype = DTYPES[dtype_id]
        raw = bytearray(reader.take(numel * dtype.itemsize, f"values of {name!r}"))
        tensor = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return name, tensor.reshape(shape).clone(), None
    bits, index_bits, cb_dtype = reader.unpack("BBB", f"widths of {name!r}")
    if not 1 <= bits <= 8 or not 1 <= index_bits <= 8 or cb_dtype >= len(CODEBOOK_DTYPES):
        raise ValueError(f"file is malformed: {name!r} has bits={bits}, index_bits={index_bits}, "
                         f"code-book dtype {cb_dtype}")
    dtype = CODEBOOK_DTYPES[cb_dtype]
    raw = bytearray(reader.take((1 << bits) * dtype.itemsize, f"code book of {name!r}"))
    codebook = torch.frombuffer(raw, dtype=dtype).float()
    (count,) = reader.unpack("I", f"entry count of {name!r}")
    code_lengths = reader.take(1 << bits, f"index code lengths of {name!r}")
    offset_lengths = reader.take(1 << index_bits, f"offset code lengths of {name!r}")
    stored, index_bytes = _decode_stream(reader, code_lengths, count, f"index stream of {name!r}")
    offsets, offset_bytes = _decode_stream(reader, offset_lengths, count, f"offset stream of {name!r}")
    indices = torch.from_numpy(dense_codes(offsets, stored, numel)).reshape(shape)
    record = LayerRecord(name, tuple(shape), bits, index_bits, count, int((indices != 0).sum()),
                         len(raw), (1 << bits) + (1 << index_bits), index_bytes + 4, offset_bytes + 4)
    return name, codebook[indices], record


class FileContents(NamedTuple):
    """What :func:`read_records` finds in a file."""

    architecture: str  # the build_model name in the header ("" if not given)
    dataset: str  # its data set name ("" if not given)
    state_dict: dict[str, torch.Tensor]  # every tensor, shared weights decoded to dense float32
    layers: list[LayerRecord]  # one record per shared weight


def read_records(data: bytes) -> FileContents:
    """Check and parse a file: its :class:`FileContents` (architecture, data set, state_dict, shared-layer records).

    Raises ValueError naming the problem: wrong magic bytes, unsupported version, truncated file,
    checksum mismatch, or malformed records.
    """
    _check_header(data)
    reader = _Reader(bytes(data), _HEADER.size, len(data) - _TRAILER.size)
    architecture = reader.text("architecture name")
    dataset = reader.text("data set name")
    (n,) = reader.unpack("I", "record count")
    state: dict[str, torch.Tensor] = {}
    layers: list[LayerRecord] = []
    for _ in range(n):
        name, tensor, record = _read_record(reader)
        if name in state:
            raise ValueError(f"file is malformed: record {name!r} appears twice")
        state[name] = tensor
        if record is not None:
            layers.append(record)
    if reader.pos != reader.end:
        raise ValueError(f"file is malformed: {reader.end - reader.pos} unread bytes after the last record")
    return FileContents(architecture, dataset, state, layers)


def decompress(data: bytes, *, model: nn.Module | None = None) -> nn.Module:
    """Read a file written by :func:`compress` into a model with ordinary dense weights, in eval mode.

    The model is ``model`` (loaded in place) or, when ``None``, ``build_model`` of the architecture
    named in the header. Raises ValueError for a file that is not in the format, of another version,
    truncated or corrupt, or whose tensors do not fit the model.
    """
    architecture, dataset, state, _ = read_records(data)
    if model is not None:
        check_module(model)
    if model is None:
        if not architecture:
            raise ValueError("the file names no architecture; pass the model to load into, decompress(data, model=...)")
        if architecture not in MODELS:
            raise ValueError(f"the file's architecture {architecture!r} is not one of {', '.join(MODELS)}")
        model = build_model(architecture, dataset)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the file's tensors do not fit the model: {e}") from None
    return model.eval()

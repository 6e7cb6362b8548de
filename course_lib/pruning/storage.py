"""Sparse storage formats, really serialized to bytes, so that "smaller" is a file size and not a count of zeros.

A weight of shape ``(r, ...)`` with ``n`` entries and ``nnz`` non-zeros is stored as a 2-D matrix of
``r`` rows and ``c = n / r`` columns (a conv filter per row), behind a header of ``4 + 4 d`` bytes
(3-byte magic, ``d = ndim`` as one byte, then the shape as ``d`` little-endian ``uint32``):

- ``"csr"``: compressed sparse rows: ``r + 1`` row pointers (``uint32``), ``nnz`` column indices
  (``uint16`` when ``c <= 65536``, else ``uint32``) and ``nnz`` values (``float32``):
  $4 + 4d + 4(r + 1) + (b_{idx} + 4)\\,\\mathrm{nnz}$ bytes;
- ``"bitmask"``: one bit per entry (``ceil(n / 8)`` bytes, little-endian bit order) and the ``nnz``
  values: $4 + 4d + \\lceil n/8 \\rceil + 4\\,\\mathrm{nnz}$ bytes.

Dense ``float32`` costs $4n$: CSR with 16-bit indices wins above about 33% sparsity, with 32-bit
indices above about 50%; the bitmask wins from about 3%.
"""
from __future__ import annotations

import struct

import numpy as np
import torch
from torch import nn

from .._validation import check_choice, check_module, check_tensor, reads_model, select_layers, weight_layers

FORMATS = ("csr", "bitmask")
_MAGIC = {"csr": b"SPC", "bitmask": b"SPB"}


def _index_dtype(columns: int) -> np.dtype:
    return np.dtype("<u2") if columns <= 2 ** 16 else np.dtype("<u4")


def encode_sparse(weight: torch.Tensor, *, format: str = "csr") -> bytes:
    """Serialize ``weight`` (any shape with at least one dimension, values as ``float32``) in a sparse ``format``."""
    check_choice(format, "format", FORMATS)
    check_tensor(weight, "weight", min_dim=1)
    if weight.numel() == 0:
        raise ValueError("weight must have at least one entry, got an empty tensor")
    array = weight.detach().cpu().to(torch.float32).numpy()
    header = _MAGIC[format] + struct.pack(f"<B{array.ndim}I", array.ndim, *array.shape)
    matrix = array.reshape(array.shape[0], -1)
    nonzero = matrix != 0
    values = matrix[nonzero].astype("<f4")
    if format == "bitmask":
        return header + np.packbits(nonzero.reshape(-1), bitorder="little").tobytes() + values.tobytes()
    row_pointers = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype("<u4")
    columns = np.nonzero(nonzero)[1].astype(_index_dtype(matrix.shape[1]))
    return header + row_pointers.tobytes() + columns.tobytes() + values.tobytes()


def decode_sparse(data: bytes) -> torch.Tensor:
    """Inverse of :func:`encode_sparse`: the dense ``float32`` tensor, of the stored shape."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    format = next((f for f, magic in _MAGIC.items() if data[:3] == magic), None)
    if format is None:
        raise ValueError(f"data does not start with a sparse-format magic ({', '.join(map(repr, _MAGIC.values()))})")
    ndim = data[3]
    shape = struct.unpack_from(f"<{ndim}I", data, 4)
    offset = 4 + 4 * ndim
    rows = shape[0]
    n = int(np.prod(shape))
    cols = n // rows
    dense = np.zeros(n, dtype=np.float32)
    if format == "bitmask":
        mask_bytes = (n + 7) // 8
        bits = np.unpackbits(np.frombuffer(data, np.uint8, mask_bytes, offset), count=n, bitorder="little")
        dense[bits.astype(bool)] = np.frombuffer(data, "<f4", offset=offset + mask_bytes)
    else:
        pointers = np.frombuffer(data, "<u4", rows + 1, offset)
        nnz = int(pointers[-1])
        index = _index_dtype(cols)
        offset += 4 * (rows + 1)
        columns = np.frombuffer(data, index, nnz, offset).astype(np.int64)
        values = np.frombuffer(data, "<f4", nnz, offset + index.itemsize * nnz)
        row_of = np.repeat(np.arange(rows), np.diff(pointers))
        dense[row_of * cols + columns] = values
    return torch.from_numpy(dense.reshape(shape))


@reads_model
def other_tensor_bytes(model: nn.Module) -> int:
    """Bytes of every ``state_dict`` tensor of ``model`` except the Linear/Conv2d weights (in any
    parametrized form: mask, code book and indices...): biases, BatchNorm parameters and buffers, at their
    element size."""
    prefixes = [f"{name}." if name else "" for name in weight_layers(check_module(model))]
    weight_keys = {p + "weight" for p in prefixes}
    parametrized = tuple(p + "parametrizations.weight." for p in prefixes)
    return sum(t.numel() * t.element_size() for key, t in model.state_dict().items()
               if key not in weight_keys and not key.startswith(parametrized))


@reads_model
def sparse_model_bytes(model: nn.Module, *, format: str = "csr") -> int:
    """Bytes of ``model`` with every Linear/Conv2d weight in a sparse ``format`` and every other tensor dense.

    The weights are the ones the layers compute with (masked), encoded by :func:`encode_sparse`; the rest
    counts as :func:`other_tensor_bytes`. Compare with ``4 * count_parameters(model)`` (raw ``float32``) or
    :func:`course_lib.metrics.model_size_bytes` (``torch.save``, with its overhead).
    """
    check_choice(format, "format", FORMATS)
    layers = select_layers(model, None)
    return other_tensor_bytes(model) + sum(len(encode_sparse(m.weight, format=format)) for m in layers.values())

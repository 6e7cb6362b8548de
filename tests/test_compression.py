import heapq
import itertools
import struct

import pytest
import torch

from course_lib.compression import compress, decompress, huffman_code, huffman_decode, huffman_encode
from course_lib.models import build_model
from course_lib.quantization.kmeans import share_weights


def _reference_cost(counts):
    heap = list(counts.values())
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


@pytest.mark.parametrize("counts", [{0: 5, 1: 2, 2: 1, 3: 1}, {i: (i * 7919) % 23 + 1 for i in range(40)},
                                    {3: 1, 9: 1}, {i: 1 for i in range(9)}])
def test_huffman_optimal_prefix_free_and_roundtrip(counts):
    code = huffman_code(counts)
    assert sum(counts[s] * len(code[s]) for s in counts) == _reference_cost(counts)
    for a, b in itertools.permutations(code.values(), 2):
        assert not b.startswith(a)
    symbols = [s for s, n in counts.items() for _ in range(n)][::-1]
    assert huffman_decode(huffman_encode(symbols, code), code, len(symbols)) == symbols


def test_huffman_edge_cases():
    assert huffman_code({7: 3}) == {7: "0"}
    with pytest.raises(ValueError, match="empty"):
        huffman_code({})


@pytest.fixture(scope="module")
def shared():
    torch.manual_seed(0)
    model = build_model("lenet300")
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p[p.abs() < p.abs().quantile(0.9)] = 0
    return share_weights(model, 4)


def test_roundtrip_bit_identical(shared):
    loaded = decompress(compress(shared))
    for name, module in shared.named_modules():
        if hasattr(module, "weight_indices"):
            assert torch.equal(loaded.get_submodule(name).weight, module.weight)
    x = torch.rand(8, 1, 28, 28)
    assert torch.equal(loaded(x), shared(x))


def test_rejects_bad_files(shared):
    data = compress(shared)
    with pytest.raises(ValueError, match="truncated"):
        decompress(data[:-10])
    with pytest.raises(ValueError, match="magic"):
        decompress(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="version"):
        decompress(data[:4] + struct.pack("<H", 99) + data[6:])
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        decompress(bytes(corrupt))

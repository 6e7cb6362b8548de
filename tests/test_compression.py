"""Huffman codes against the optimal cost computed independently, and the Deep Compression file: bit-identical
round trips, a file written by the previous implementation (the format is unchanged), corrupt files."""
import heapq
import itertools
import struct

import pytest
import torch
from torch import nn

from course_lib.compression import (
    FileContents,
    compress,
    decompress,
    huffman_code,
    huffman_decode,
    huffman_encode,
    read_records,
)
from course_lib.models import build_model
from course_lib.pruning import magnitude_prune, make_permanent
from course_lib.quantization.kmeans import is_shared, share_weights


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
    return share_weights(model, bits=4)


def test_roundtrip_bit_identical(shared):
    loaded = decompress(compress(shared))
    layers = [name for name, module in shared.named_modules() if is_shared(module)]
    assert layers == ["net.1", "net.3", "net.5"]
    for name in layers:
        assert torch.equal(loaded.get_submodule(name).weight, shared.get_submodule(name).weight)
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


# Written by the previous implementation (forward-hook weight sharing), before the move to parametrizations:
# torch.manual_seed(0); Sequential(Conv2d(1, 4, 3), ReLU(), Flatten(), Linear(64, 3)), conv bias uniform(-1, 1),
# each weight magnitude-pruned to 50%, masks folded, shared with {"0": 2, "3": 3} bits, offsets {"0": 3, "3": 4}.
GOLDEN_V1 = bytes.fromhex(
    "44434d5001002d01000000000000040000000800302e7765696768740100040400000001000000030000000300000002"
    "0300000000009b5483be80201dbed9ab803e1200000000010202010303030300000004000000ccdf9a000500000086ec"
    "b294000800332e776569676874010002030000004000000003040000000000a5bddbbdb2b69cbdfcd22abd007c5eb904"
    "16293def1ca33de1b1e33d600000000002020000000202010203050505000005000000000000001800000045ab915acf"
    "c4e1a11e027811aec80a200f2c8b95585b1cc718000000a0cc8d70c507a4c34e07dcd745620ebb5337822c17c5ae8006"
    "00302e6269617300000104000000c6d821bf54a2e53e24f734bf9cffd8be0600332e626961730000010300000080ab7f"
    "3c204ce53d30999c3d9af640ab")


def _golden_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():
        model[0].bias.uniform_(-1, 1)
    pruned = make_permanent(magnitude_prune(model, sparsity=0.5, scope="layer"))
    return share_weights(pruned, bits={"0": 2, "3": 3})


def test_file_format_is_byte_compatible_with_version_1():
    model = _golden_model()
    assert compress(model, index_bits={"0": 3, "3": 4}) == GOLDEN_V1
    contents = read_records(GOLDEN_V1)
    assert isinstance(contents, FileContents) and contents.architecture == "" and len(contents.layers) == 2
    loaded = decompress(GOLDEN_V1, model=nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)))
    x = torch.rand(2, 1, 6, 6)
    assert torch.equal(loaded(x), model(x))


def test_models_with_batchnorm_round_trip():  # 0-d buffers (num_batches_tracked) are stored raw too
    model = share_weights(build_model("student").eval(), bits=3)
    loaded = decompress(compress(model))
    assert torch.equal(loaded.features[1].num_batches_tracked, model.features[1].num_batches_tracked)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))


def test_compress_refuses_masks_and_bad_arguments():
    pruned = magnitude_prune(build_model("lenet300"), sparsity=0.5)
    with pytest.raises(ValueError, match="make_permanent"):
        compress(pruned)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        compress("lenet300")
    with pytest.raises(TypeError, match="data must be bytes"):
        decompress("DCMP")
    with pytest.raises(TypeError, match="counts must be a mapping"):
        huffman_code([1, 2])

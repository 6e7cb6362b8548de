"""Exercise 4, Deep Compression: ``kmeans_codebook``, ``centroid_gradient``, ``sparse_offsets``, ``huffman_code``
and ``huffman_encode``, which together write a compressed layer to a real file.

References: :mod:`course_lib.quantization.kmeans`, :mod:`course_lib.compression`
(:func:`~course_lib.compression.sharing.centroid_gradient` was written for this exercise; the relative indices
are :func:`course_lib.compression.format.sparse_offsets`, the format's own). Every rule the notebook states has a
public case; the errors it names have public and hidden cases.

Two answers are judged by what they must satisfy rather than word for word. A code book (``kmeans_codebook``)
must match the reference's centroids, and its indices may differ only where a weight is equally close to two
centroids (within float32 rounding: a float32 Lloyd iteration may break such a tie the other way). A Huffman
code (``huffman_code``) may be any optimal one when counts tie: it must give every symbol (and only those) a
non-empty bit string, be prefix-free, and have the optimal total length $\\sum_s n_s \\ell_s$ (the reference's).
The public cases of ``huffman_code`` and the absence of error cases for it are relied on by
``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from typing import Any

import torch

from ..spec import Assignment, Case, Exercise, Question, compare_values, describe, fixed_case, generator


# --- kmeans_codebook ---------------------------------------------------------------------------------

def kmeans_public() -> list[Case]:
    w = torch.tensor([-1.0, -0.8, 0.1, 0.3, 2.0])
    return [fixed_case("weight=[-1, -0.8, 0.1, 0.3, 2], bits=1: centroids start at -1 and 2 and end at -0.35 and 2", (w, 1)),
            fixed_case("the same weight, bits=1, iters=0 (the linear initialisation and its assignment only)", (w, 1),
                  {"iters": 0}),
            fixed_case("weight=[0, 4, 4, 4, 5.2, 10], bits=1, iters=1: one update (centroids 3 and 7.6) then one "
                  "reassignment (5.2 moves to the first), not converged yet",
                  (torch.tensor([0.0, 4.0, 4.0, 4.0, 5.2, 10.0]), 1), {"iters": 1}),
            fixed_case("weight=[0, 0.1, 0.2, 3], bits=2: centroids start at 0, 1, 2, 3; the clusters of 1 and 2 are empty "
                  "and keep their centroids", (torch.tensor([0.0, 0.1, 0.2, 3.0]), 2)),
            fixed_case("a (2, 4) weight with zeros, bits=2, skip_zeros=True (code 0 is 0.0 for the zeros; the other 3 "
                  "centroids cluster the non-zero weights)",
                  (torch.tensor([[0.0, 0.5, -0.4, 0.0], [0.9, 0.0, -0.1, 0.6]]), 2), {"skip_zeros": True}),
            fixed_case("bits=0 (must raise ValueError naming bits)", (w, 0), raises="bits")]


def kmeans_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    normal = torch.randn(30, 20, generator=g)
    laplace = torch.log(torch.rand(400, generator=g)) * torch.sign(torch.rand(400, generator=g) - 0.5) * 0.1
    pruned = torch.randn(20, 30, generator=g) * (torch.rand(20, 30, generator=g) > 0.8)
    return [fixed_case("a random (30, 20) weight, bits=3", (normal, 3)),
            fixed_case("a random (30, 20) weight, bits=4, iters=2", (normal, 4), {"iters": 2}),
            fixed_case("400 heavy-tailed weights, bits=5 (empty clusters between the outliers)", (laplace, 5)),
            fixed_case("a random (20, 30) weight with 80% zeros, bits=3, skip_zeros=True", (pruned, 3), {"skip_zeros": True}),
            fixed_case("the same weight, bits=2, skip_zeros=False (the zeros are clustered like any weight)", (pruned, 2)),
            fixed_case("bits=17 (must raise ValueError naming bits)", (normal, 17), raises="bits")]


def compare_codebook(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """``None`` if ``got`` is ``(codebook, indices)`` with the reference's centroids and assignment (an index may
    differ only where the weight is, within float32 rounding, as close to both centroids)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"returned {describe(got)}, expected a tuple (codebook, indices)"
    codebook, indices = got
    msg = compare_values(codebook, expected[0], rtol=1e-4, atol=1e-6, where="the code book")
    if msg:
        return msg
    if not isinstance(indices, torch.Tensor) or indices.is_floating_point() or indices.dtype == torch.bool:
        return f"returned {describe(indices)} as the indices, expected an integer tensor {describe(expected[1])}"
    if indices.shape != expected[1].shape:
        return (f"returned indices of shape {tuple(indices.shape)}, expected the weight's shape "
                f"{tuple(expected[1].shape)}")
    if bool(((indices < 0) | (indices >= len(expected[0]))).any()):
        return f"returned indices outside [0, {len(expected[0])}): {describe(indices)}"
    weight = args[0].detach().double()
    centroids = expected[0].double()
    differ = indices != expected[1]
    mine, theirs = (weight - centroids[indices]).abs(), (weight - centroids[expected[1]]).abs()
    tie = (mine - theirs).abs() <= 1e-6 * (1 + weight.abs())
    if bool((differ & ~tie).any()):
        return compare_values(indices, expected[1], rtol=0.0, atol=0.0, where="the indices")
    return None


# --- centroid_gradient ---------------------------------------------------------------------------------

G = torch.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]])
I = torch.tensor([[0, 1, 1], [2, 1, 0]])


def centroid_public() -> list[Case]:
    return [fixed_case("weight_grad=[[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], indices=[[0, 1, 1], [2, 1, 0]], codes=4 "
                  "(sums: -0.5, 0.6, 0.4, and 0 for the unused code 3)", (G, I, 4)),
            fixed_case("the same, skip_zeros=True (code 0 is the pinned zero: its gradient is 0)", (G, I, 4),
                  {"skip_zeros": True}),
            fixed_case("the same gradient in float64 (the result is float64)", (G.double(), I, 4)),
            fixed_case("indices of shape (3, 2) for a (2, 3) gradient (must raise ValueError naming indices)",
                  (G, I.reshape(3, 2), 4), raises="indices"),
            fixed_case("an index 4 with codes=4 (must raise ValueError naming indices)", (G, I + 2, 4), raises="indices")]


def centroid_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    grad = torch.randn(100, 78, generator=g) * 1e-3
    idx = torch.randint(0, 32, (100, 78), generator=g)
    conv = torch.randn(8, 4, 3, 3, generator=g)
    return [fixed_case("a random (100, 78) gradient, 32 codes", (grad, idx, 32)),
            fixed_case("the same, skip_zeros=True", (grad, idx, 32), {"skip_zeros": True}),
            fixed_case("a (8, 4, 3, 3) conv gradient, 4 codes", (conv, torch.randint(0, 4, conv.shape, generator=g), 4)),
            fixed_case("a float64 gradient, 256 codes, most unused", (grad.double(), idx, 256)),
            fixed_case("a negative index (must raise ValueError naming indices)", (grad, idx - 1, 32), raises="indices"),
            fixed_case("a flattened index tensor (must raise ValueError naming indices)", (grad, idx.reshape(-1), 32),
                  raises="indices")]


# --- sparse_offsets ------------------------------------------------------------------------------------

def _codes(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def relative_public() -> list[Case]:
    return [fixed_case("codes=[0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 2], index_bits=3: offsets [2, 7, 3, 0], "
                  "codes [4, 0, 7, 2] (a gap of 11 zeros needs one filler)",
                  (_codes([0, 0, 4] + [0] * 11 + [7, 2]), 3)),
            fixed_case("codes=[5, 0, 1, 3, 0, 0, 2, 0, 0], index_bits=8 (no filler; trailing zeros are not stored)",
                  (_codes([5, 0, 1, 3, 0, 0, 2, 0, 0]), 8)),
            fixed_case("index_bits=2: a gap of 3 zeros fits in the offset (3), a gap of 4 needs a filler",
                  (_codes([1, 0, 0, 0, 2, 0, 0, 0, 0, 3]), 2)),
            fixed_case("index_bits=1: 5 zeros before the first code need two fillers", (_codes([0, 0, 0, 0, 0, 6]), 1)),
            fixed_case("codes all zero: nothing is stored", (_codes([0, 0, 0, 0]), 3))]


def relative_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    sparse = torch.randint(1, 32, (2000,), generator=g) * (torch.rand(2000, generator=g) > 0.9)
    very = torch.randint(1, 16, (3000,), generator=g) * (torch.rand(3000, generator=g) > 0.99)
    dense = torch.randint(0, 8, (300,), generator=g)
    return [fixed_case("2,000 codes, 90% zeros, index_bits=5", (sparse, 5)),
            fixed_case("3,000 codes, 99% zeros, index_bits=3 (many fillers)", (very, 3)),
            fixed_case("300 codes, few zeros, index_bits=4", (dense, 4)),
            fixed_case("2,000 codes, 90% zeros, index_bits=8", (sparse, 8)),
            fixed_case("a single non-zero code at the end of 1,000, index_bits=4", (_codes([0] * 999 + [9]), 4))]


def relative_observe(result: Any, args: tuple, kwargs: dict) -> Any:
    """``{"the offsets": ..., "the codes": ...}`` as int64 tensors (NumPy arrays, tensors and lists are all
    accepted); anything but a pair as it is."""
    if isinstance(result, (tuple, list)) and len(result) == 2:
        try:
            offsets, codes = (torch.as_tensor(r).to(torch.int64) for r in result)
        except (TypeError, ValueError, RuntimeError):
            return result
        return {"the offsets": offsets, "the codes": codes}
    return result


def compare_offsets(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    if not isinstance(got, dict):
        return f"returned {describe(got)}, expected a pair (offsets, codes) of 1-D integer tensors or arrays"
    return compare_values(got, expected, rtol=0.0, atol=0.0)


# --- huffman_code --------------------------------------------------------------------------------------

def _counts_case(text: str, counts: dict[int, int]) -> Case:
    return Case(text, lambda: ((dict(counts),), {}))


def huffman_public() -> list[Case]:
    return [_counts_case("counts={0: 5, 1: 2, 2: 1, 3: 1}", {0: 5, 1: 2, 2: 1, 3: 1}),
            _counts_case("counts={0: 1, 1: 1, 2: 1, 3: 1} (all equal)", {0: 1, 1: 1, 2: 1, 3: 1}),
            _counts_case("counts={7: 3} (a single symbol still needs one bit)", {7: 3})]


def huffman_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    random10 = {s: int(c) for s, c in enumerate(torch.randint(1, 100, (10,), generator=g))}
    random32 = {s: int(c) for s, c in enumerate(torch.randint(1, 1000, (32,), generator=g))}
    powers = {s: 2 ** s for s in range(12)}
    scattered = {-5: 40, 3: 7, 17: 7, 250: 1, 1000: 13}
    large = {s: int(c) for s, c in enumerate(torch.randint(10 ** 5, 10 ** 7, (16,), generator=g))}
    return [_counts_case("random counts over 10 symbols", random10), _counts_case("random counts over 32 symbols", random32),
            _counts_case("counts 1, 2, 4, ..., 2048 (a skewed tree)", powers), _counts_case("two symbols", {0: 9, 1: 1}),
            _counts_case("scattered and negative symbols", scattered), _counts_case("counts in the millions", large)]


def compare_codes(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """``None`` if ``got`` is an optimal prefix code for ``args[0]``, else what is wrong with it."""
    counts: dict[int, int] = args[0]
    if not isinstance(got, dict):
        return f"returned {describe(got)}, expected a dict {{symbol: bit string}}"
    if set(got) != set(counts):
        missing, extra = sorted(set(counts) - set(got)), sorted(set(got) - set(counts), key=repr)
        return f"gave codes for the wrong symbols (missing {missing}, not in counts {extra})"
    for s, code in got.items():
        if not isinstance(code, str) or not code or set(code) - {"0", "1"}:
            return f"gave symbol {s} the code {code!r}; a code is a non-empty string of '0' and '1'"
    ordered = sorted(got.items(), key=lambda item: item[1])
    for (s1, c1), (s2, c2) in zip(ordered, ordered[1:]):
        if c2.startswith(c1):
            return f"is not prefix-free: the code {c1!r} of symbol {s1} begins the code {c2!r} of symbol {s2}"
    total = sum(counts[s] * len(got[s]) for s in counts)
    best = sum(counts[s] * len(expected[s]) for s in counts)
    if total != best:
        return f"needs {total} bits in total for these counts; an optimal (Huffman) code needs {best}"
    return None


# --- huffman_encode ------------------------------------------------------------------------------------------

CODE = {0: "0", 1: "10", 2: "11"}


def _encode_case(text: str, symbols: list[int], code: dict[int, str], raises: str | None = None) -> Case:
    return Case(text, lambda: ((list(symbols), dict(code)), {}), raises)


def encode_observe(result: Any, args: tuple, kwargs: dict) -> Any:
    """The returned bytes as a hex string (``bytes`` and ``bytearray``); anything else as it is."""
    return bytes(result).hex() if isinstance(result, (bytes, bytearray)) else result


def _bits(hex_string: str) -> str:
    return "".join(format(b, "08b") for b in bytes.fromhex(hex_string))


def compare_bytes(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """``None`` if the same bytes came back, else the two bit strings side by side."""
    if not isinstance(got, str) or not isinstance(expected, str):
        return f"returned {describe(got)}, expected bytes (b'{expected}' in hex)"
    try:
        same = bytes.fromhex(got) == bytes.fromhex(expected)
    except ValueError:
        same = False
    if same:
        return None
    mine, theirs = _bits(got), _bits(expected)
    return (f"returned {len(mine) // 8} bytes, bits {mine[:64]}{'...' if len(mine) > 64 else ''}; expected "
            f"{len(theirs) // 8} bytes, bits {theirs[:64]}{'...' if len(theirs) > 64 else ''}")


def encode_public() -> list[Case]:
    return [_encode_case("symbols=[0, 1, 2, 0], code={0: '0', 1: '10', 2: '11'}: bits 010110, padded with two 0 bits "
                         "to one byte 01011000", [0, 1, 2, 0], CODE),
            _encode_case("symbols=[2, 2, 1, 0, 1, 1, 2, 0], the same code: 14 bits, two bytes",
                         [2, 2, 1, 0, 1, 1, 2, 0], CODE),
            _encode_case("symbols=[1, 1, 2, 2], the same code: exactly 8 bits, one byte and no padding", [1, 1, 2, 2],
                         CODE),
            _encode_case("no symbols: no bytes", [], CODE),
            _encode_case("symbol 9 has no code (must raise ValueError naming the symbol 9)", [0, 9], CODE, "9")]


def encode_hidden(seed: int) -> list[Case]:
    g = generator(seed)
    symbols = torch.randint(0, 6, (1000,), generator=g).tolist()
    code = {0: "00", 1: "01", 2: "100", 3: "101", 4: "110", 5: "111"}
    return [_encode_case("1,000 random symbols over a 6-symbol code", symbols, code),
            _encode_case("999 copies of a 1-bit code", [0] * 999, CODE),
            _encode_case("a 12-bit code word", [5, 4], {5: "111111111111", 4: "0"}),
            _encode_case("a symbol outside the code (must raise ValueError naming the symbol 6)", symbols[:50] + [6],
                         code, "6")]


ASSIGNMENT = Assignment(
    name="deep_compression",
    title="Deep Compression",
    exercises=(
        Exercise("kmeans_codebook", "course_lib.quantization:kmeans_codebook", kmeans_public, kmeans_hidden,
                 hint="a code book of 2**bits centroids from 1-D k-means with linear initialisation, and the index of "
                      "each weight's centroid",
                 compare=compare_codebook, public_points=1.0, hidden_points=3.0,
                 hints=("bits outside [1, 16] is a ValueError naming bits. Work on weight.detach().reshape(-1) in "
                        "float64; with skip_zeros only on the non-zero entries, with 2**bits - 1 centroids.",
                        "Linear initialisation: torch.linspace(values.min(), values.max(), k).",
                        "Assignment: the nearest centroid, (values[:, None] - centroids[None, :]).abs().argmin(1) "
                        "(argmin picks the lower index on a tie).",
                        "Update: each centroid becomes the mean of its cluster: sums with torch.zeros(k).index_add_"
                        "(0, assignment, values), counts with torch.bincount(assignment, minlength=k); a centroid "
                        "with count 0 keeps its value (torch.where).",
                        "Loop up to iters times: update, reassign, stop when the assignment did not change. With "
                        "skip_zeros, code 0 is 0.0 and the non-zero entries get their cluster index + 1.")),
        Exercise("centroid_gradient", "course_lib.compression.sharing:centroid_gradient", centroid_public,
                 centroid_hidden,
                 hint="the gradient of each centroid: the sum of the gradients of the weights in its cluster (0 for "
                      "code 0 with skip_zeros)",
                 dtypes=True,
                 hints=("Check first: indices must have weight_grad's shape and lie in [0, codes) (ValueError naming "
                        "indices).",
                        "Flatten both, then torch.zeros(codes).index_add_(0, indices, weight_grad) adds each "
                        "gradient into its centroid's entry (a sum, not a mean).",
                        "With skip_zeros, set entry 0 to 0.")),
        Exercise("sparse_offsets", "course_lib.compression.format:sparse_offsets", relative_public, relative_hidden,
                 hint="the (offsets, codes) of the non-zero codes stored with relative indices of index_bits bits, "
                      "with filler entries where a gap is too long",
                 observe=relative_observe, compare=compare_offsets, public_points=1.0, hidden_points=3.0,
                 hints=("Walk the codes keeping the position of the last stored entry (-1 at the start); the offset "
                        "of a code at position p is p - last - 1, the number of zeros skipped.",
                        "An offset must stay below 2**index_bits. While the gap is too long, store a filler: offset "
                        "2**index_bits - 1 and code 0, which moves the last stored position 2**index_bits further.",
                        "Then store the real entry with the offset that remains; zeros after the last non-zero code "
                        "are never stored.")),
        Exercise("huffman_code", "course_lib.compression:huffman_code", huffman_public, huffman_hidden,
                 hint="an optimal prefix code {symbol: bit string} for the counts",
                 compare=compare_codes, public_points=1.0, hidden_points=3.0,
                 hints=("A lone symbol gets '0'. Otherwise keep a heap of (count, tie-breaker, {symbol: code so "
                        "far}), one entry per symbol with code ''.",
                        "Pop the two smallest, prefix '0' to every code of the first and '1' to every code of the "
                        "second, push the merged dict with the summed count and a new tie-breaker.",
                        "When one entry is left, its dict is the code.")),
        Exercise("huffman_encode", "course_lib.compression.huffman:huffman_encode", encode_public, encode_hidden,
                 hint="the bytes of the concatenated code words of symbols, most significant bit first, the last "
                      "byte padded with 0 bits",
                 observe=encode_observe, compare=compare_bytes,
                 hints=("Join the code words into one string of '0' and '1'; a symbol without a code is a "
                        "ValueError that names it.",
                        "Pad with '0' to a multiple of 8 bits (-len(bits) % 8 of them).",
                        "int(bits, 2).to_bytes(len(bits) // 8, 'big') turns the string into bytes (b'' for no bits).")),
    ),
    questions=(
        Question("zeros", "Huffman-coding the dense index stream (zeros included) and the sparse stream (offsets "
                          "and codes of the non-zero weights): which did your file use, which is smaller, and why "
                          "is Huffman coding far from the entropy when one symbol has probability above one half?"),
        Question("sum", "Why is the gradient of a centroid the sum of its weights' gradients, not their mean? What "
                        "would the mean do to a centroid shared by thousands of weights?"),
        Question("bytes", "Where do the bytes of your file go (code books, index stream, offset stream, tables)? "
                          "Which stage of the pipeline gave the largest factor, and what would you change to go "
                          "further?"),
    ),
)

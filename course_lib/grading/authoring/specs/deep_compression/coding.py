"""The file of exercise 4: ``sparse_offsets``, ``huffman_code`` and ``huffman_encode``."""
from __future__ import annotations

from typing import Any

import torch

from ...compare import compare_values, describe
from ...exercise import Case, Exercise, fixed_case
from ...seeds import generator

# --- sparse_offsets --------------------------------------------------------------------------------------

def _codes(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def relative_public() -> list[Case]:
    return [fixed_case("codes=[0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 2], index_bits=3: offsets [2, 7, 3, 0], "
                       "codes [4, 0, 7, 2] (a gap of 11 zeros needs one filler)",
                       (_codes([0, 0, 4] + [0] * 11 + [7, 2]), 3)),
            fixed_case("codes=[5, 0, 1, 3, 0, 0, 2, 0, 0], index_bits=8 (no filler; trailing zeros are not stored)",
                       (_codes([5, 0, 1, 3, 0, 0, 2, 0, 0]), 8)),
            fixed_case("codes=[1, 0, 0, 0, 2, 0, 0, 0, 0, 3], index_bits=2: a gap of 3 zeros fits in the offset "
                       "(3), a gap of 4 needs a filler",
                       (_codes([1, 0, 0, 0, 2, 0, 0, 0, 0, 3]), 2)),
            fixed_case("codes=[0, 0, 0, 0, 0, 6], index_bits=1: 5 zeros before the first code need two fillers",
                       (_codes([0, 0, 0, 0, 0, 6]), 1)),
            fixed_case("codes=[0, 0, 0, 0], index_bits=3: codes all zero, nothing is stored",
                       (_codes([0, 0, 0, 0]), 3))]


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


# --- huffman_code ----------------------------------------------------------------------------------------

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
    return [_counts_case("random counts over 10 symbols", random10),
            _counts_case("random counts over 32 symbols", random32),
            _counts_case("counts 1, 2, 4, ..., 2048 (a skewed tree)", powers),
            _counts_case("two symbols", {0: 9, 1: 1}),
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


# --- huffman_encode --------------------------------------------------------------------------------------

CODE = {0: "0", 1: "10", 2: "11"}


def _encode_case(text: str, symbols: list[int], code: dict[int, str], raises: str | None = None) -> Case:
    return Case(text, lambda: ((list(symbols), dict(code)), {}), raises)


def encode_observe(result: Any, args: tuple, kwargs: dict) -> Any:
    """The returned ``bytes`` as a hex string; anything else (a ``bytearray`` too: the notebook asks for ``bytes``)
    as it is."""
    return result.hex() if type(result) is bytes else result


def _bits(hex_string: str) -> str:
    return "".join(format(b, "08b") for b in bytes.fromhex(hex_string))


def compare_bytes(got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
    """``None`` if the same bytes came back, else the two bit strings side by side."""
    if not isinstance(got, str) or not isinstance(expected, str):
        return f"returned {describe(got)}, expected bytes ({_count(len(expected) // 2)}, hex {expected!r})"
    try:
        same = bytes.fromhex(got) == bytes.fromhex(expected)
    except ValueError:
        same = False
    if same:
        return None
    mine, theirs = _bits(got), _bits(expected)
    return (f"returned {_count(len(mine) // 8)}, bits {mine[:64]}{'...' if len(mine) > 64 else ''}; expected "
            f"{_count(len(theirs) // 8)}, bits {theirs[:64]}{'...' if len(theirs) > 64 else ''}")


def _count(n: int) -> str:
    return f"{n} byte{'s' * (n != 1)}"


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


EXERCISES = (
    Exercise("sparse_offsets", "course_lib.compression.format", relative_public, relative_hidden,
             hint="the (offsets, codes) of the non-zero codes stored with relative indices of index_bits bits, "
                  "with filler entries where a gap is too long",
             observe=relative_observe, compare=compare_offsets, public_points=1.0, hidden_points=3.0,
             hints=("Walk the codes keeping the position of the last stored entry (-1 at the start); the offset "
                    "of a code at position p is p - last - 1, the number of zeros skipped.",
                    "An offset must stay below 2**index_bits. While the gap is too long, store a filler: offset "
                    "2**index_bits - 1 and code 0, which moves the last stored position 2**index_bits further.",
                    "Then store the real entry with the offset that remains; zeros after the last non-zero code "
                    "are never stored.")),
    Exercise("huffman_code", "course_lib.compression", huffman_public, huffman_hidden,
             hint="an optimal prefix code {symbol: bit string} for the counts",
             compare=compare_codes, public_points=1.0, hidden_points=3.0,
             hints=("A lone symbol gets '0'. Otherwise keep a heap of (count, tie-breaker, {symbol: code so "
                    "far}), one entry per symbol with code ''.",
                    "Pop the two smallest, prefix '0' to every code of the first and '1' to every code of the "
                    "second, push the merged dict with the summed count and a new tie-breaker.",
                    "When one entry is left, its dict is the code.")),
    Exercise("huffman_encode", "course_lib.compression.huffman", encode_public, encode_hidden,
             hint="the bytes of the concatenated code words of symbols, most significant bit first, the last "
                  "byte padded with 0 bits",
             observe=encode_observe, compare=compare_bytes,
             hints=("Join the code words into one string of '0' and '1'; a symbol without a code is a "
                    "ValueError that names it.",
                    "Pad with '0' to a multiple of 8 bits (-len(bits) % 8 of them).",
                    "int(bits, 2).to_bytes(len(bits) // 8, 'big') turns the string into bytes (b'' for no bits).")),
)

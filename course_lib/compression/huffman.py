"""Huffman coding (Huffman, 1952), the last stage of Deep Compression (Han et al., 2016, section 4).

A prefix code gives symbol $s$, seen $n_s$ times, a bit string of length $\\ell_s$; no code is a prefix
of another, so a concatenation decodes without separators. Huffman's greedy construction (merge the two
least frequent subtrees, repeatedly) minimizes the total length $\\sum_s n_s \\ell_s$ over all prefix
codes, within one bit per symbol of the entropy bound $n H = -\\sum_s n_s \\log_2 (n_s / n)$.

Codes are returned in *canonical* form (as in DEFLATE): symbols sorted by (length, symbol) receive
consecutive binary numbers, so a code is fully described by its lengths, which is all a file needs
to store (:func:`canonical_code`).
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from .._validation import check_int


def _check_counts(counts: Mapping[int, int]) -> None:
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a mapping {{symbol: count}}, got {type(counts).__name__}")
    if not counts:
        raise ValueError("counts must hold at least one symbol, got an empty mapping")
    for symbol, count in counts.items():
        check_int(symbol, "each symbol of counts")
        check_int(count, f"counts[{symbol}]", 1)


def huffman_lengths(counts: Mapping[int, int]) -> dict[int, int]:
    """Optimal code length (bits) of each symbol of ``counts`` ``{symbol: occurrences >= 1}``.

    Huffman's algorithm with a heap; ties between equal weights go to the subtree created first,
    leaves (in increasing symbol order) before merged subtrees, so the result is deterministic.
    A single symbol gets length 1 (a code must have at least one bit).
    """
    _check_counts(counts)
    symbols = sorted(counts)
    if len(symbols) == 1:
        return {symbols[0]: 1}
    heap = [(counts[s], order, (s,)) for order, s in enumerate(symbols)]
    heapq.heapify(heap)
    lengths = dict.fromkeys(symbols, 0)
    order = len(symbols)
    while len(heap) > 1:
        w1, _, group1 = heapq.heappop(heap)
        w2, _, group2 = heapq.heappop(heap)
        for s in group1 + group2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, order, group1 + group2))
        order += 1
    return lengths


def canonical_code(lengths: Mapping[int, int]) -> dict[int, str]:
    """The canonical prefix code with the given ``{symbol: length}``: symbols sorted by (length, symbol)
    get consecutive binary numbers, shifted left whenever the length grows.

    Raises ValueError if the lengths violate Kraft's inequality $\\sum_s 2^{-\\ell_s} \\le 1$ (no prefix
    code has them).
    """
    if not lengths:
        raise ValueError("lengths must hold at least one symbol, got an empty mapping")
    for symbol, length in lengths.items():
        check_int(length, f"lengths[{symbol!r}]", 1)
    longest = max(lengths.values())
    if sum(1 << (longest - length) for length in lengths.values()) > 1 << longest:
        raise ValueError(f"code lengths {dict(lengths)} violate Kraft's inequality: no prefix code has them")
    code, value, previous = {}, 0, None
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        if previous is not None:
            value = (value + 1) << (length - previous)
        code[symbol] = format(value, f"0{length}b")
        previous = length
    return code


def huffman_code(counts: Mapping[int, int]) -> dict[int, str]:
    """Optimal prefix code ``{symbol: bit string}`` for ``counts`` ``{symbol: occurrences >= 1}``, in canonical form.

    Minimizes $\\sum_s n_s \\ell_s$; a lone symbol gets ``"0"``. Raises ValueError on an empty mapping or
    a count that is not a positive integer.

    >>> huffman_code({0: 5, 1: 2, 2: 1, 3: 1})
    {0: '0', 1: '10', 2: '110', 3: '111'}
    """
    return canonical_code(huffman_lengths(counts))


def huffman_encode(symbols: Sequence[int], code: Mapping[int, str]) -> bytes:
    """Concatenate the codes of ``symbols`` into bytes (most significant bit first, last byte zero-padded)."""
    try:
        bits = "".join(code[s] for s in symbols)
    except KeyError as e:
        raise ValueError(f"symbol {e.args[0]!r} has no code; the code covers {sorted(code)}") from None
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def huffman_decode(data: bytes, code: Mapping[int, str], count: int) -> list[int]:
    """The first ``count`` symbols coded in ``data`` by the prefix code ``code`` (inverse of :func:`huffman_encode`).

    Raises ValueError when ``data`` ends before ``count`` symbols or holds a bit string that is no code.
    """
    check_int(count, "count", 0)
    lookup = {bits: symbol for symbol, bits in code.items()}
    longest = max(map(len, lookup), default=0)
    bits = format(int.from_bytes(data, "big"), f"0{8 * len(data)}b") if data else ""
    symbols, start = [], 0
    for _ in range(count):
        end = start + 1
        while bits[start:end] not in lookup:
            if end - start >= longest or end >= len(bits):
                what = "ends" if end >= len(bits) else "holds a bit string that is no code"
                raise ValueError(f"Huffman data {what} after {len(symbols)} of {count} symbols")
            end += 1
        symbols.append(lookup[bits[start:end]])
        start = end
    return symbols

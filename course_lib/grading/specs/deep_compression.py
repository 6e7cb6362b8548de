"""Exercise 4, Deep Compression's last stage: ``huffman_code``.

Reference: :mod:`course_lib.compression`. Several codes are optimal when counts tie, so an answer is
not compared with the reference's code word for word: it must give every symbol (and only those) a
non-empty bit string, be prefix-free, and have the optimal total length $\\sum_s n_s \\ell_s$ (the
reference's). Hidden cases: random counts over 10 and 32 symbols, powers of two (a deep, skewed
tree), two symbols, scattered and negative symbol values, counts in the millions.
"""
from __future__ import annotations

from typing import Any

import torch

from ..spec import Assignment, Case, Exercise, describe


def _case(text: str, counts: dict[int, int]) -> Case:
    return Case(text, lambda: ((dict(counts),), {}))


def huffman_public() -> list[Case]:
    return [_case("counts={0: 5, 1: 2, 2: 1, 3: 1}", {0: 5, 1: 2, 2: 1, 3: 1}),
            _case("counts={0: 1, 1: 1, 2: 1, 3: 1} (all equal)", {0: 1, 1: 1, 2: 1, 3: 1}),
            _case("counts={7: 3} (a single symbol still needs one bit)", {7: 3})]


def huffman_hidden(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    random10 = {s: int(c) for s, c in enumerate(torch.randint(1, 100, (10,), generator=g))}
    random32 = {s: int(c) for s, c in enumerate(torch.randint(1, 1000, (32,), generator=g))}
    powers = {s: 2 ** s for s in range(12)}
    scattered = {-5: 40, 3: 7, 17: 7, 250: 1, 1000: 13}
    large = {s: int(c) for s, c in enumerate(torch.randint(10 ** 5, 10 ** 7, (16,), generator=g))}
    return [_case("random counts over 10 symbols", random10), _case("random counts over 32 symbols", random32),
            _case("counts 1, 2, 4, ..., 2048 (a skewed tree)", powers), _case("two symbols", {0: 9, 1: 1}),
            _case("scattered and negative symbols", scattered), _case("counts in the millions", large)]


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


ASSIGNMENT = Assignment(
    name="deep_compression",
    title="Deep Compression: Huffman coding",
    exercises=(
        Exercise("huffman_code", "course_lib.compression:huffman_code", huffman_public, huffman_hidden,
                 hint="repeatedly merge the two least frequent subtrees (heapq), then read each symbol's path",
                 compare=compare_codes, public_points=1.0, hidden_points=3.0),
    ),
)

"""Tolerant comparison of a notebook cell's outputs whose numbers come from training.

nbval compares a re-executed cell's outputs with the committed ones exactly. A cell whose numbers come from
training (an accuracy after fine-tuning, a loss) gets other last digits on another CPU, so it declares a
tolerance in its cell metadata (invisible in the book)::

    {"tolerance": {"abs": 1.0, "rel": 0.0, "integers": false,
                   "why": "test accuracy in % after 2 epochs of fine-tuning: a few test images move"}}

A number of the new output passes if ``|new - old| <= abs + rel * |old|``. Only numbers written with a
decimal point or an exponent are tolerated, unless ``integers`` is true; everything else, the text around the
numbers and how many numbers there are, must match exactly. ``why`` is required.

:func:`snap` does the comparison on one text: it returns the new text with every tolerated number replaced by
the committed one, so that nbval's own exact comparison (and its diff) then sees only real differences.
"""
from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nbformat

# A number not glued to a word or a dot on its left (so "conv1" and the ".1" of "2.14.1" are text), with
# optional sign, thousands separators, decimals and exponent.
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
KEYS = {"abs", "rel", "integers", "why"}


@dataclass(frozen=True)
class Tolerance:
    """How far a number may move: ``abs + rel * |committed|``; integers only if ``integers``."""

    abs: float = 0.0
    rel: float = 0.0
    integers: bool = False
    why: str = ""

    @classmethod
    def from_metadata(cls, spec: Any) -> Tolerance | None:
        """The tolerance a cell's ``metadata["tolerance"]`` declares (``None`` if it declares none)."""
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ValueError(f"cell metadata 'tolerance' must be an object like {{\"abs\": 1.0, \"why\": ...}}, "
                             f"got {spec!r}")
        unknown = set(spec) - KEYS
        if unknown:
            raise ValueError(f"cell metadata 'tolerance' has unknown keys {sorted(unknown)}; allowed: {sorted(KEYS)}")
        for key in ("abs", "rel"):
            value = spec.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"tolerance '{key}' must be a finite number >= 0, got {value!r}")
        if not isinstance(spec.get("integers", False), bool):
            raise ValueError(f"tolerance 'integers' must be true or false, got {spec['integers']!r}")
        why = spec.get("why")
        if not isinstance(why, str) or not why.strip():
            raise ValueError("tolerance 'why' is required: say what the numbers are, in which unit, and why the "
                             "tolerance is wide enough and no wider")
        return cls(float(spec.get("abs", 0.0)), float(spec.get("rel", 0.0)), spec.get("integers", False), why)

    def accepts(self, old: str, new: str) -> bool:
        """Whether the number written ``new`` may stand for the committed ``old``."""
        if old == new:
            return True
        if not self.integers and not any(c in old + new for c in ".eE"):
            return False
        a, b = (float(s.replace(",", "")) for s in (old, new))
        return abs(b - a) <= self.abs + self.rel * abs(a)


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """``text`` as (the pieces between numbers, the numbers): ``len(pieces) == len(numbers) + 1``."""
    pieces, numbers, last = [], [], 0
    for m in NUMBER.finditer(text):
        pieces.append(text[last:m.start()])
        numbers.append(m.group())
        last = m.end()
    pieces.append(text[last:])
    return pieces, numbers


def snap(old: str, new: str, tolerance: Tolerance) -> str:
    """``new`` with each number that ``tolerance`` accepts in place of ``old``'s replaced by ``old``'s.

    If the texts differ other than in their numbers (or have different counts of numbers), ``new`` is
    returned unchanged, so the exact comparison fails and shows the difference.
    """
    if old == new:
        return new
    old_pieces, old_numbers = split_numbers(old)
    new_pieces, new_numbers = split_numbers(new)
    if old_pieces != new_pieces:
        return new
    kept = [o if tolerance.accepts(o, n) else n for o, n in zip(old_numbers, new_numbers)]
    return "".join(p + n for p, n in zip(new_pieces, kept)) + new_pieces[-1]


def snap_outputs(new: list, old: list, tolerance: Tolerance, sanitize: Callable[[str], str] = lambda s: s) -> list:
    """The new outputs of a cell (nbformat nodes, streams coalesced, as nbval compares them) with every tolerated
    number set back to the committed value.

    Outputs are paired in order; within a pair of the same type, every text field (a stream's ``text``) and
    every textual MIME entry present in both are sanitized (nbval's ``--nbval-sanitize-with`` patterns) and
    snapped. Anything else is left as it was. The outputs passed in are not modified.
    """
    snapped = []
    for i, out in enumerate(new):
        ref = old[i] if i < len(old) else None
        out = nbformat.from_dict(copy.deepcopy(dict(out)))
        if ref is not None and ref.get("output_type") == out.get("output_type"):
            for fields, ref_fields in ((out, ref), (out.get("data"), ref.get("data"))):
                if not isinstance(fields, dict) or not isinstance(ref_fields, dict):
                    continue
                for key, value in fields.items():
                    if key != "output_type" and isinstance(value, str) and isinstance(ref_fields.get(key), str):
                        fields[key] = snap(sanitize(ref_fields[key]), sanitize(value), tolerance)
        snapped.append(out)
    return snapped

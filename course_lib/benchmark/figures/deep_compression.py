"""The ``deep_compression`` section as the report reads it: its table, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import MISSING, difference, number, numbers, percent, points, times
from .section import Claim, Evidence, Point, Section


def compressed_networks(c: dict) -> list[tuple[str, dict]]:
    """The networks of a ``deep_compression`` section: ``[("LeNet-300-100", top level), ("LeNet-5", c["lenet5"])]``."""
    nets = [("LeNet-300-100", c)] if "compression_ratio" in c else []
    return nets + ([("LeNet-5", c["lenet5"])] if isinstance(c.get("lenet5"), dict) else [])


def tables(c: dict) -> list[str]:
    """Each network's dense and compressed bytes and accuracies, run by run."""
    rows = []
    for name, f in compressed_networks(c):
        sizes, accs = numbers(f.get("compressed_bytes_per_seed")), numbers(f.get("compressed_accuracy_per_seed"))
        each = ", ".join(f"{int(b):,} B: {100 * a:.1f}%" for b, a in zip(sizes, accs)) if sizes and accs else MISSING
        mean_bytes = number(f.get("compressed_bytes"))
        rows.append([name, f"{f['dense_bytes']:,}" if isinstance(f.get("dense_bytes"), int) else MISSING,
                     percent(number(f.get("dense_accuracy"))),
                     MISSING if mean_bytes is None else f"{mean_bytes:,.0f}",
                     percent(number(f.get("compressed_accuracy"))),
                     times(number(f.get("compression_ratio")), 1), each])
    return [markdown_table(["network", "dense bytes", "dense accuracy", "file bytes (mean)", "accuracy (mean)",
                            "smaller (mean file)", "each run: file and the accuracy of the model it holds"], rows)]


def _points(c: dict) -> list[Point]:
    """Each network's mean file against its dense weights (no speed: the file is for storage)."""
    return [Point(f"Deep Compression, {name}", number(f.get("compressed_accuracy")), number(f.get("dense_accuracy")),
                  number(f.get("compression_ratio"))) for name, f in compressed_networks(c)]


def _ratio(c: dict) -> Evidence:
    rows = [(n, number(f.get("compression_ratio"))) for n, f in compressed_networks(c)]
    rows = [(n, r) for n, r in rows if r is not None]
    if not rows:
        return None
    return "; ".join(f"{n}: {times(r, 1)}" for n, r in rows), all(r >= 40 for _, r in rows)


def _accuracy(c: dict) -> Evidence:
    rows = [(n, difference(f.get("compressed_accuracy"), f.get("dense_accuracy"))) for n, f in compressed_networks(c)]
    rows = [(n, d) for n, d in rows if d is not None]
    if not rows:
        return None
    return "; ".join(f"{n}: {points(d)}" for n, d in rows), all(d >= -0.02 for _, d in rows)


def _roundtrip(c: dict) -> Evidence:
    equal = [f.get("roundtrip_equal") for _, f in compressed_networks(c) if isinstance(f.get("roundtrip_equal"), bool)]
    return None if not equal else (f"identical logits on the test split: {all(equal)}", all(equal))


SECTION = Section(
    "deep_compression", tables, points=_points, marker="*", marker_scale=2.0,
    claims=(
        Claim("Deep Compression makes the files of LeNet-300-100 and LeNet-5 at least 40 times smaller than their "
              "float32 weights, as in the paper.", _ratio),
        Claim("Deep Compression costs at most two points of test accuracy.", _accuracy),
        Claim("The compressed file loads back to a model with identical predictions.", _roundtrip),
    ))

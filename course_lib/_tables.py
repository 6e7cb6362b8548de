"""Markdown tables, the one builder behind every table the package prints (stage and layer tables of Deep
Compression, the benchmark report)."""
from __future__ import annotations

from collections.abc import Sequence

ALIGNMENTS = {"left": "---", "right": "---:", "center": ":---:"}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]],
                   align: Sequence[str] | None = None) -> str:
    """A Markdown table: ``header`` cells, one line per row (cells formatted with ``str``), and per column an
    alignment among ``"left"``, ``"right"``, ``"center"`` (default: all left)."""
    align = ["left"] * len(header) if align is None else list(align)
    if len(align) != len(header) or any(a not in ALIGNMENTS for a in align):
        raise ValueError(f"align must give one of {', '.join(ALIGNMENTS)} per column ({len(header)}), got {align!r}")
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"every row must have {len(header)} cells like the header, got {len(row)}: {row!r}")
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join(ALIGNMENTS[a] for a in align) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)

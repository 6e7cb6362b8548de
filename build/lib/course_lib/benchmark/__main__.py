"""``python -m course_lib.benchmark``: run the technique benchmarks, write one JSON file and print a table."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import SECTIONS, run_section
from .report import format_table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.benchmark",
        description="Measure every technique of the course on this machine and write the figures as JSON.")
    parser.add_argument("--out", default="results.json", type=Path,
                        help="JSON file to write (default: results.json; the book reads book/data/benchmark.json)")
    parser.add_argument("--only", nargs="+", metavar="SECTION", default=list(SECTIONS),
                        help=f"sections to run, among: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per trained model (default: 3)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run (about a minute per section): checks that it runs, not the targets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = [name for name in args.only if name not in SECTIONS]
    if unknown:
        print(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}",
              file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds must be a positive integer, got {args.seeds}", file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    for name in dict.fromkeys(args.only):  # keeps order, drops repeats
        print(f"[benchmark] {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name, quick=args.quick, seeds=args.seeds)
        status = f"failed: {results[name]['error']}" if "error" in results[name] else "done"
        print(f"[benchmark] {name} {status} in {results[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
        if args.out.parent != Path(""):
            args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(format_table(results))
    print(f"\nwrote {args.out}")
    failed = [name for name, r in results.items() if "error" in r]
    if failed:
        print(f"error: section(s) failed: {', '.join(failed)} (see their 'error' entries in {args.out})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

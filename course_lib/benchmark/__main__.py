"""``python -m course_lib.benchmark``: run the technique benchmarks, write one JSON file and print a table.

After each section it lists, on stderr, the timings the section could not measure reliably (a loaded machine, a
wide spread: :mod:`course_lib.timing`), which the book will show as such: re-run that section on a quiet machine
(``--only <section> --update``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._validation import check_int
from ..resources import resource
from . import SECTIONS, check_sections, run_section
from .results import load_results, unreliable_timings
from .tradeoffs import format_table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.benchmark",
        description="Measure every technique of the course on this machine and write the figures as JSON.")
    parser.add_argument("--out", default=resource("benchmark.json"), type=Path,
                        help="JSON file to write (default: the package's benchmark.json, which the chapters read)")
    parser.add_argument("--only", nargs="+", metavar="SECTION", default=list(SECTIONS),
                        help=f"sections to run, among: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per trained model (default: 3)")
    parser.add_argument("--update", action="store_true",
                        help="keep the other sections already in --out and replace only those run now")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run (about a minute per section): checks that it runs, not the targets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        check_sections(args.only)
        check_int(args.seeds, "--seeds", 1)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    if args.update and args.out.is_file():
        results = {name: r for name, r in load_results(args.out).items() if name in SECTIONS}
    for name in dict.fromkeys(args.only):  # keeps order, drops repeats
        print(f"[benchmark] {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name, quick=args.quick, seeds=args.seeds)
        status = f"failed: {results[name]['error']}" if "error" in results[name] else "done"
        print(f"[benchmark] {name} {status} in {results[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
        for where, why in unreliable_timings(results[name], name):  # the book will say these were not measured
            print(f"[benchmark]   not measured reliably: {where}: {why}", file=sys.stderr, flush=True)
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

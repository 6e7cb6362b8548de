"""Command line: ``python -m course_lib.grading {grade,generate,check-generated}`` (also ``course-grade``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading",
                                     description="Grade exercise notebooks and generate them from their solutions.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a notebook: score table on stdout, Gradescope results.json")
    g.add_argument("notebook")
    g.add_argument("--json", metavar="PATH", help="write Gradescope's results.json here")
    g.add_argument("--timeout", type=float, default=900, metavar="SECONDS",
                   help="time limit for executing the whole notebook (default 900)")
    g.add_argument("--cell-timeout", type=float, default=300, metavar="SECONDS",
                   help="time limit per cell (default 300)")
    g.add_argument("--exercise-timeout", type=float, default=60, metavar="SECONDS",
                   help="time limit for the tests of one exercise (default 60)")
    g.add_argument("--assignment", help="assignment name, if the file name and metadata do not say it")
    g.add_argument("--seed", type=int, help="seed of the hidden cases (default $COURSE_GRADING_SEED or fixed)")
    for name, text in (("generate", "write exercises/ from solutions/"),
                       ("check-generated", "exit 1 if exercises/ is not what generate would write")):
        p = sub.add_parser(name, help=text)
        p.add_argument("solutions", nargs="?", default="solutions")
        p.add_argument("exercises", nargs="?", default="exercises")
    args = parser.parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    from .generate import generate
    try:
        changed = generate(args.solutions, args.exercises, check=args.command == "check-generated")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "check-generated":
        for p in changed:
            print(f"out of date: {p} (run `make exercises`)", file=sys.stderr)
        return 1 if changed else 0
    for p in changed:
        print(f"wrote {p}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .reading import GradingError, read_notebook
    try:
        read_notebook(args.notebook)  # before importing torch: a bad file name is answered at once
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .grader import grade, score_table
    try:
        results = grade(args.notebook, assignment=args.assignment, cell_timeout=args.cell_timeout,
                        total_timeout=args.timeout, exercise_timeout=args.exercise_timeout, seed=args.seed)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(results["output"])
    print(score_table(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``python -m course_lib.grading COMMAND`` (also ``course-grade``); ``--help`` for each."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from pathlib import Path

# jsonschema (through nbformat) imports its optional IRI format check, which builds some 40 grammars: about 1.5 s of
# CPU in every grading process of grade-all. Notebooks' schemas check no format: it is left out.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from .grade.setup import SETUP_FAILED  # noqa: E402 - after the line above

COMMANDS = ("grade", "grade-all", "doctor", "gradescope-bundle", "classroom-workflow", "generate", "check-generated")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _secret_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed-file", metavar="PATH", help="file holding the hidden cases' secret (default "
                                                        "$COURSE_GRADING_SEED; neither: the run stops)")
    p.add_argument("--practice", action="store_true", help="formative grading: without a secret, draw the hidden "
                                                           "cases from a public seed")
    p.add_argument("--sandbox-user", default="auto", metavar="USER",
                   help="when run as root, the user learner code runs as: 'auto' (a uid of its own), a name or "
                        "uid, or 'current' (no change: formative grading)")


def _grading_options(p: argparse.ArgumentParser) -> None:
    from .confinement.options import Options
    default = Options()
    p.add_argument("--assignment", required=True, help="the assignment to grade against (required: the notebook's "
                                                       "name and metadata belong to the learner)")
    _secret_options(p)
    p.add_argument("--no-execute", action="store_true",
                   help="do not execute the notebook (its execution never changes the score)")
    p.add_argument("--execution-timeout", type=_positive, default=default.execution_timeout, metavar="S",
                   help=f"time for executing the notebook (default {default.execution_timeout:g})")
    p.add_argument("--cell-timeout", type=_positive, default=default.cell_timeout, metavar="S",
                   help=f"time per cell when executing (default {default.cell_timeout:g})")
    p.add_argument("--case-timeout", type=_positive, default=default.time.case_cpu, metavar="S",
                   help=f"CPU seconds per test case (default {default.time.case_cpu:g}; wall clock: twice that)")
    p.add_argument("--exercise-timeout", type=_positive, default=default.time.exercise, metavar="S",
                   help=f"seconds charged to one exercise's cases before the rest are skipped "
                        f"(default {default.time.exercise:g})")
    p.add_argument("--memory", type=_positive, default=default.memory.data_bytes / (1 << 30), metavar="GIB",
                   help=f"data memory of each learner process, in GiB (default {default.memory.data_bytes >> 30})")


def options_from(args: argparse.Namespace):
    """The :class:`~course_lib.grading.confinement.options.Options` of parsed arguments."""
    from .confinement.options import Memory, Options, TimeLimits

    time_limits = TimeLimits(case_cpu=args.case_timeout, case_wall=2 * args.case_timeout,
                             exercise=args.exercise_timeout)
    return Options(time=time_limits, memory=Memory(data_bytes=int(args.memory * (1 << 30))),
                   execute=not args.no_execute, cell_timeout=args.cell_timeout,
                   execution_timeout=args.execution_timeout, user=args.sandbox_user)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m course_lib.grading",
                                   description="Grade exercise notebooks and generate them from their solutions.")
    sub = root.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one notebook: score table on stdout, Gradescope results.json")
    g.add_argument("notebook", help="the notebook, or a folder holding exactly one")
    g.add_argument("--json", metavar="PATH", help="write Gradescope's results.json here, and the learner's "
                                                  "feedback as Markdown beside it (PATH with .md): always, even if "
                                                  "the notebook cannot be graded; never when the machine's setup "
                                                  "stops the run")
    g.add_argument("--learner-id", metavar="ID", help="who submitted: the hidden cases are drawn for this learner "
                                                      "(default: the notebook's file name)")
    g.add_argument("--classroom-output", metavar="PATH", help="append GitHub Classroom's `result=...` line here "
                                                              "(a step's $GITHUB_OUTPUT)")
    _grading_options(g)
    a = sub.add_parser("grade-all", help="grade every notebook of a folder in parallel: one CSV row per learner")
    a.add_argument("submissions", help="folder of submissions: NAME.ipynb files or NAME/ folders holding one each")
    a.add_argument("--csv", required=True, metavar="PATH", help="where to write the grades")
    a.add_argument("--jobs", type=_positive_int, default=1, help="gradings at a time (default 1)")
    a.add_argument("--results", metavar="FOLDER", help="also keep each learner's results.json here")
    _grading_options(a)
    d = sub.add_parser("doctor", help="check this grading machine: which of the grader's guarantees hold here")
    _secret_options(d)
    b = sub.add_parser("gradescope-bundle", help="build a Gradescope autograder zip for one assignment")
    b.add_argument("--assignment", required=True)
    b.add_argument("--out", required=True, metavar="ZIP")
    b.add_argument("--seed-file", metavar="PATH",
                   help="the secret seed to put in the bundle (default: a new random one)")
    b.add_argument("--wheel", metavar="WHL", help="the course_lib wheel to ship (default: built from this checkout)")
    w = sub.add_parser("classroom-workflow", help="print the GitHub Classroom workflow for one assignment")
    w.add_argument("--assignment", required=True)
    w.add_argument("--notebook", metavar="PATH", help="path of the notebook in the learner's repository "
                                                      "(default exercises/NN_<assignment>.ipynb)")
    for name, text in (("generate", "write exercises/ from solutions/"),
                       ("check-generated", "exit 1 if exercises/ is not what generate would write")):
        p = sub.add_parser(name, help=text)
        p.add_argument("solutions", nargs="?", default="solutions")
        p.add_argument("exercises", nargs="?", default="exercises")
    return root


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a real command line: SIGTERM (a batch's deadline, a platform's) ends it through its
        # cleanup, which kills the learner's processes and removes the temporary folders
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args = parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "grade-all":
        from .deploy.batch import grade_all
        return grade_all(args)
    if args.command == "doctor":
        from .grade.setup import doctor
        lines, summative = doctor(args.seed_file, args.sandbox_user, args.practice)
        print("\n".join(lines))
        return 0 if summative else 1
    if args.command == "gradescope-bundle":
        from .deploy.bundle import build_bundle
        try:
            path = build_bundle(args.assignment, args.out, seed_file=args.seed_file, wheel=args.wheel)
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0
    if args.command == "classroom-workflow":
        from .deploy.classroom import workflow
        try:
            print(workflow(args.assignment, args.notebook), end="")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    from .authoring.generate import generate
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


def _write(results: dict, args: argparse.Namespace) -> None:
    """``--json``'s results.json, the learner's feedback as Markdown beside it (``results.md``), and
    ``--classroom-output``'s line."""
    if args.json:
        from .grade.reports import feedback_markdown
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        learner = results["extra_data"].get("learner") or args.learner_id or Path(args.notebook).stem
        out.with_suffix(".md").write_text(feedback_markdown(results, learner))
    if args.classroom_output:
        from .grade.reports import classroom_output
        with open(args.classroom_output, "a") as f:
            f.write(classroom_output(results) + "\n")


def _grade(args: argparse.Namespace) -> int:
    """Grade; whatever happens, ``--json`` gets a results.json (score 0 and the reason if not graded)."""
    start = time.monotonic()
    from .grade.reading import GradingError, read_notebook
    from .grade.reports import fatal
    from .grade.setup import SetupError, check_platform, read_secret
    try:
        check_platform()
        read_secret(args.seed_file, args.practice)
        read_notebook(args.notebook)  # before importing torch: a bad file name is answered at once
        options = options_from(args)
        from .grade.grader import grade
        from .grade.reports import instructor_notes, score_table
        results = grade(args.notebook, args.assignment, seed_file=args.seed_file, options=options,
                        practice=args.practice, learner=args.learner_id)
    except SetupError as e:  # the machine, not the learner: no results.json, no score
        print(f"setup error (no learner scored): {e}", file=sys.stderr)
        return SETUP_FAILED
    except (GradingError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        _write(fatal(str(e), time.monotonic() - start), args)
        return 2
    except Exception as e:  # noqa: BLE001 - a grader failure must still leave a results.json
        traceback.print_exc()
        _write(fatal(f"the grader failed ({type(e).__name__}: {e}); tell your instructor",
                     time.monotonic() - start), args)
        return 1
    print(results["output"])
    print(score_table(results))
    print(instructor_notes(results))
    _write(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

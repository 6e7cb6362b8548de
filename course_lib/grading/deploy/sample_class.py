"""A class of sample submissions, to time ``grade-all`` on a machine: masters, blanks and partial ones.

``python -m course_lib.grading.deploy.sample_class MASTER BLANK OUT [--count 100] [--seed 0]`` writes ``COUNT``
notebooks ``OUT/learner-NNN.ipynb``: a third the master (``solutions/NN_topic.ipynb``), a third the blank exercise
(``exercises/NN_topic.ipynb``), a third partial (the master with each of its solution cells replaced by the blank's
with probability one half). Then, for example::

    python -m course_lib.grading grade-all OUT --assignment distillation --practice --no-execute --jobs 2 \\
        --csv OUT-grades.csv

prints the batch's time on its last line.
"""
from __future__ import annotations

import argparse
import copy
import random
from pathlib import Path

import nbformat


def sample_class(master: Path, blank: Path, out: Path, count: int, seed: int = 0) -> list[Path]:
    """Write ``count`` submissions into ``out`` (see the module docstring); return their paths.

    Raises ``ValueError`` if ``count`` is not positive or the two notebooks do not have the same cells (the blank
    must be generated from the master).
    """
    if count < 1:
        raise ValueError(f"count must be a positive number of submissions, got {count}")
    solved, empty = nbformat.read(master, as_version=4), nbformat.read(blank, as_version=4)
    if [c.cell_type for c in solved.cells] != [c.cell_type for c in empty.cells]:
        raise ValueError(f"{blank} is not the exercise generated from {master}: their cells differ")
    differing = [k for k, (a, b) in enumerate(zip(solved.cells, empty.cells)) if a.source != b.source]
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        nb = copy.deepcopy(empty if n % 3 == 1 else solved)
        if n % 3 == 2:
            for k in differing:
                if rng.random() < 0.5:
                    nb.cells[k] = copy.deepcopy(empty.cells[k])
        path = out / f"learner-{n:03d}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m course_lib.grading.deploy.sample_class", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("master", type=Path, help="the master notebook (solutions/NN_topic.ipynb)")
    p.add_argument("blank", type=Path, help="its exercise (exercises/NN_topic.ipynb)")
    p.add_argument("out", type=Path, help="folder to write the submissions in")
    p.add_argument("--count", type=int, default=100, help="number of submissions (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the partial submissions' choice of cells")
    args = p.parse_args(argv)
    paths = sample_class(args.master, args.blank, args.out, args.count, args.seed)
    print(f"{len(paths)} submissions in {args.out}")


if __name__ == "__main__":
    main()

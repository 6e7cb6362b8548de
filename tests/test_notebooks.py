"""The committed notebooks: book/ and solutions/ executed with outputs (nbval passes vacuously on
cells without outputs), exercises/ without outputs, the install cell first everywhere, outputs ignored by
nbval only where they are times, and every declared tolerance well formed."""
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.notebooks import has_install_cell, install_cell_source
from nbval_tolerance import Tolerance

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted(p for d in ("book", "solutions") for p in (ROOT / d).rglob("*.ipynb")
                  if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
TIMING = re.compile(r"\b(compare_latency|measure_latency|perf_counter|time\.time|timeit|thread_latency|"
                    r"batch_throughput|try_compile)\(|%%?timeit")
IGNORED = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT")


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and c.source.strip()]


def test_there_are_notebooks_to_check():
    assert EXECUTED, "no notebooks found in book/ or solutions/"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_executed_in_order(path):
    cells = code_cells(path)
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cells were never executed"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), \
        f"{path.name}: cells were executed out of order ({counts}); re-run it top to bottom"
    assert any(c.outputs for c in cells), f"{path.name} has no outputs at all"
    errors = [c for c in cells if any(o.output_type == "error" for o in c.outputs)
              and "raises-exception" not in c.metadata.get("tags", [])]
    assert not errors, f"{path.name}: a cell raised an error:\n{errors[0].source[:200]}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_timing_cells_are_ignored_by_nbval(path):
    unmarked = [c.source.splitlines()[0] for c in code_cells(path)
                if TIMING.search(c.source) and c.outputs
                and "NBVAL_IGNORE_OUTPUT" not in c.source and "nbval-ignore-output" not in c.metadata.get("tags", [])]
    assert not unmarked, f"{path.name}: cells that time things print their output but are not marked " \
                         f"# NBVAL_IGNORE_OUTPUT: {unmarked}"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercises_are_committed_without_outputs(path):
    assert all(not c.outputs and c.execution_count is None for c in code_cells(path))


@pytest.mark.parametrize("path", EXECUTED + EXERCISES, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_installs_the_course_outside_its_environment(path):
    nb = nbformat.read(path, as_version=4)
    assert has_install_cell(nb), f"{path.name}: the first cell must be\n{install_cell_source()}\n(tagged remove-cell); " \
                                 "run `python -m course_lib.notebooks install-cells book solutions` and `make exercises`"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_outputs_are_ignored_only_where_they_are_times(path):
    for cell in code_cells(path):
        markers = {m for m in IGNORED if m in cell.source} | \
                  {t.upper().replace("-", "_") for t in cell.metadata.get("tags", []) if t.startswith("nbval")}
        assert not markers or (markers == {"NBVAL_IGNORE_OUTPUT"} and TIMING.search(cell.source)), \
            f"{path.name}: {markers} on a cell that times nothing; declare a tolerance instead:\n{cell.source[:200]}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_declared_tolerances_are_well_formed(path):
    for cell in code_cells(path):
        Tolerance.from_metadata(cell.metadata.get("tolerance"))

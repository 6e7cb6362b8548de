"""The committed notebooks: book/ and solutions/ executed with outputs (nbval passes vacuously on
cells without outputs), exercises/ without outputs, the install cell first everywhere, outputs ignored by
nbval only where they are times, and every declared tolerance well formed. The book's notebooks (what the
launch buttons open) read in Jupyter and Colab: no myst-nb markup, every figure in the prose the one its code
recorded (course_lib.notebooks.record and fill). No committed output carries the executing machine's traces."""
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import Markdown
from IPython.utils.capture import capture_output
from nbval_tolerance import Tolerance

from course_lib.notebooks import (
    fill_notebook,
    has_install_cell,
    install_cell_source,
    machine_roots,
    record,
    recorded,
    unused_figures,
    without_traces,
)

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted(p for d in ("book", "solutions") for p in (ROOT / d).rglob("*.ipynb")
                  if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
BOOK = [p for p in EXECUTED if p.is_relative_to(ROOT / "book")]
MYST_ONLY = re.compile(r"\{glue|\{dropdown\}|\bmyst_nb\b")  # shown as raw markup, or failing, outside the HTML book
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ABSOLUTE = re.compile(r"(?<![\w.~+-])/(?:work|root|home|tmp|usr|opt|var|srv|mnt|private|Users|Library)/"
                      r"|site-packages|dist-packages|\.venv\b|\b[A-Z]:\\Users\\")
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
    assert not unmarked, f"{path.name}: cells that time things print their output but are not tagged " \
                         f"nbval-ignore-output: {unmarked}"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercises_are_committed_without_outputs(path):
    assert all(not c.outputs and c.execution_count is None for c in code_cells(path))


@pytest.mark.parametrize("path", EXECUTED + EXERCISES, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_installs_the_course_outside_its_environment(path):
    nb = nbformat.read(path, as_version=4)
    assert has_install_cell(nb), f"{path.name}: the first cell must be\n{install_cell_source()}\n(tagged " \
                                 "remove-cell); run `python -m course_lib.notebooks install-cells book solutions` " \
                                 "and `make exercises`"


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


# ---------------------------------------------------------------------------------------------------------
# The book's notebooks read in Jupyter and Colab: numbers and answers, not MyST roles

@pytest.mark.parametrize("path", BOOK, ids=lambda p: str(p.relative_to(ROOT)))
def test_book_notebooks_have_no_markup_only_the_html_book_renders(path):
    found = [m.group() for c in nbformat.read(path, as_version=4).cells for m in MYST_ONLY.finditer(c.source)]
    assert not found, f"{path.name}: {sorted(set(found))}: quote figures as <span data-figure=\"name\">value</span>, " \
                      "write answers as <details><summary>Answer</summary>, record with course_lib.notebooks.record"


@pytest.mark.parametrize("path", BOOK, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_in_the_prose_is_the_one_its_code_recorded(path):
    _, stale, problems = fill_notebook(path)
    assert not problems and not stale, "\n".join(problems + stale) + \
        f"\nrun `python -m course_lib.notebooks fill {path.relative_to(ROOT)}`"


def test_every_recorded_figure_is_quoted_somewhere_in_the_book():
    assert not unused_figures(ROOT / "book"), "recorded but never quoted (drop them from record()):\n" + \
        "\n".join(unused_figures(ROOT / "book"))


# ---------------------------------------------------------------------------------------------------------
# No committed output shows the machine that executed it

def shown_texts(output) -> list[str]:
    """The texts an output shows (images left out), without terminal colours."""
    if output.output_type == "stream":
        texts = [output.text]
    elif output.output_type == "error":
        texts = [output.evalue, *output.traceback]
    else:
        texts = [v if isinstance(v, str) else json.dumps(v) for k, v in output.get("data", {}).items()
                 if not k.startswith("image/")]
    return [ANSI.sub("", t) for t in texts]


@pytest.mark.parametrize("path", EXECUTED + EXERCISES, ids=lambda p: str(p.relative_to(ROOT)))
def test_outputs_show_no_stderr_no_absolute_paths_and_no_stray_tracebacks(path):
    for index, cell in enumerate(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"):
        lesson = "raises-exception" in cell.metadata.get("tags", [])
        for output in cell.outputs:
            assert not (output.output_type == "stream" and output.name == "stderr"), \
                f"{path.name}, code cell {index}: stored stderr {output.text[:300]!r}; silence it in the code or " \
                "re-execute with `python -m course_lib.notebooks execute`, which drops it"
            for text in shown_texts(output):
                paths = ABSOLUTE.findall(text) + ([str(ROOT)] if str(ROOT) in text else [])
                assert not paths, f"{path.name}, code cell {index}: the executing machine's paths {paths} in " \
                                  f"{text[:300]!r}"
                assert lesson or "Traceback (most recent call last)" not in text, \
                    f"{path.name}, code cell {index}: a traceback outside a cell tagged raises-exception"


# ---------------------------------------------------------------------------------------------------------
# The tools: record, fill, unused_figures, without_traces

@pytest.fixture
def shell():
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def notebook(tmp_path, name, outputs, prose):
    """A notebook ``name`` whose one code cell has ``outputs`` and whose markdown cell is ``prose``."""
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("record(...)", execution_count=1)
    code.outputs = [nbformat.v4.new_output("display_data", data=o.data, metadata=o.metadata) for o in outputs]
    nb.cells = [code, nbformat.v4.new_markdown_cell(prose)]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_record_shows_each_figure_under_its_name_in_mysts_glue_format(shell):
    with capture_output() as captured:
        record(found_train="3,500", why=Markdown("*few* labels"))
    assert [o.data["text/plain"] for o in captured.outputs] == ["found_train = 3,500", "why = *few* labels"]
    assert captured.outputs[0].data["application/papermill.record/text/plain"] == "'3,500'"
    assert captured.outputs[1].data["application/papermill.record/text/markdown"] == "*few* labels"
    assert [o.metadata["scrapbook"] for o in captured.outputs] == [
        {"name": "found_train", "mime_prefix": "application/papermill.record/"},
        {"name": "why", "mime_prefix": "application/papermill.record/"}]


def test_record_without_ipython_prints_the_figures(capsys):
    record(found_train="3,500")
    assert capsys.readouterr().out == "found_train = 3,500\n"


@pytest.mark.parametrize("value, error", [(3.5, TypeError), (3, TypeError), ("one\n\ntwo", ValueError),
                                          (Markdown("a</span>"), ValueError)])
def test_record_rejects_what_prose_cannot_quote(value, error):
    with pytest.raises(error, match="figure x must"):
        record(x=value)


def test_fill_writes_each_recorded_figure_into_its_marker_and_reports_the_stale_ones(shell, tmp_path):
    with capture_output() as captured:
        record(n="3,500", name="deep_compression <x>", why=Markdown("*few* labels"))
    path = notebook(tmp_path, "a.ipynb", captured.outputs,
                    'train on <span data-figure="n">3,000</span> images (<span data-figure="name">x</span>); '
                    '<span data-figure="why"></span>.')
    nb, stale, problems = fill_notebook(path)
    assert nb.cells[1].source == ('train on <span data-figure="n">3,500</span> images '
                                  '(<span data-figure="name">deep\\_compression \\<x\\></span>); '
                                  '<span data-figure="why">*few* labels</span>.')
    assert len(stale) == 3 and not problems
    nbformat.write(nb, path)
    assert fill_notebook(path)[1:] == ([], [])


def test_fill_reads_other_notebooks_and_reports_unknown_figures(shell, tmp_path):
    with capture_output() as captured:
        record(regrown="12.5")
    notebook(tmp_path, "other.ipynb", captured.outputs, "")
    path = notebook(tmp_path, "a.ipynb", [], '<span data-figure="other.ipynb::regrown"></span> <span '
                                             'data-figure="missing"></span> <span data-figure="no.ipynb::x"></span>')
    nb, stale, problems = fill_notebook(path)
    assert nb.cells[1].source.startswith('<span data-figure="other.ipynb::regrown">12.5</span> ')
    assert len(stale) == 1 and len(problems) == 2
    assert "missing is not recorded" in problems[0] and "no.ipynb" in problems[1]


def test_unused_figures_counts_markers_and_glue_roles_of_markdown_pages(shell, tmp_path):
    with capture_output() as captured:
        record(a="1", b="2", c="3", d="4")
    (tmp_path / "code").mkdir()
    notebook(tmp_path / "code", "n.ipynb", captured.outputs, '<span data-figure="a">1</span>')
    (tmp_path / "page.md").write_text("{glue:text}`code/n.ipynb::b:s` and\n```{glue} c\n:doc: code/n.ipynb\n```\n")
    assert [u.rsplit(": ", 1)[1] for u in unused_figures(tmp_path)] == ["d"]
    assert sorted(recorded(nbformat.read(tmp_path / "code" / "n.ipynb", as_version=4))) == ["a", "b", "c", "d"]


def test_without_traces_drops_stderr_and_makes_the_machines_paths_relative():
    site = machine_roots()[0]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{site}/torch/a.py:1: UserWarning\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="kept\n"),
                    nbformat.v4.new_output("error", ename="ValueError", evalue="bad",
                                           traceback=[f"\x1b[32m{ROOT}/course_lib/data.py:226\x1b[39m, in f"])]
    nb.cells = [cell]
    outputs = without_traces(nb, machine_roots()).cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream", "error"] and outputs[0].text == "kept\n"
    assert outputs[1].traceback == ["\x1b[32mcourse_lib/data.py:226\x1b[39m, in f"]
    assert sys.prefix in machine_roots()

"""The tolerant comparison of trained numbers in notebooks (tests/nbval_tolerance.py, used by nbval_settings)."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval_tolerance import Tolerance, snap, snap_outputs, split_numbers

POINT = Tolerance(abs=1.0, why="accuracy in %")


def test_split_numbers_keeps_words_versions_and_separators_as_text():
    pieces, numbers = split_numbers("conv1: 824,554 weights, 98.6% (torch 2.14.1), loss 1.5e-03, -0.25")
    assert numbers == ["824,554", "98.6", "2.14", "1.5e-03", "-0.25"]
    assert "".join(p + n for p, n in zip(pieces, numbers)) + pieces[-1] == \
        "conv1: 824,554 weights, 98.6% (torch 2.14.1), loss 1.5e-03, -0.25"


@pytest.mark.parametrize("old,new,expected", [
    ("accuracy 98.6%", "accuracy 98.1%", "accuracy 98.6%"),     # 0.5 points: within 1
    ("accuracy 98.6%", "accuracy 97.5%", "accuracy 97.5%"),     # 1.1 points: kept, the exact comparison fails
    ("accuracy 98.6%", "accuracy 99.60%", "accuracy 98.6%"),    # exactly 1 point, another number of digits
    ("accuracy 98.6%", "precision 98.6%", "precision 98.6%"),   # other text: unchanged
    ("98.6% 97.0%", "98.6%", "98.6%"),                           # another count of numbers: unchanged
    ("rank 24, 93.5%", "rank 16, 93.4%", "rank 16, 93.5%"),     # integers are exact: the rank stays wrong
])
def test_snap_replaces_only_numbers_within_the_tolerance(old, new, expected):
    assert snap(old, new, POINT) == expected


def test_relative_tolerance_and_integers():
    size = Tolerance(rel=0.01, integers=True, why="bytes of a file that depends on trained weights")
    assert snap("24,881 B", "24,990 B", size) == "24,881 B"        # 0.44 %
    assert snap("24,881 B", "25,300 B", size) == "25,300 B"        # 1.7 %
    assert not Tolerance(rel=0.5, why="x").accepts("10", "11")     # integers need integers=True


def test_outputs_are_paired_by_position_and_type():
    old = [nbformat.v4.new_output("stream", name="stdout", text="val 98.6% at 0x7f00aa11\n"),
           nbformat.v4.new_output("execute_result", {"text/plain": "0.9861", "text/html": "<td>98.6</td>"})]
    new = [nbformat.v4.new_output("stream", name="stdout", text="val 98.2% at 0x7f00bb22\n"),
           nbformat.v4.new_output("execute_result", {"text/plain": "0.9857", "text/html": "<td>97.0</td>"})]
    def hide_address(s: str) -> str:
        return s.replace("0x7f00aa11", "0xADDRESS").replace("0x7f00bb22", "0xADDRESS")

    snapped = snap_outputs(new, old, POINT, hide_address)
    assert snapped[0].text == "val 98.6% at 0xADDRESS\n"
    assert snapped[1].data == {"text/plain": "0.9861", "text/html": "<td>97.0</td>"}
    assert new[0].text == "val 98.2% at 0x7f00bb22\n", "the new outputs themselves are not modified"


@pytest.mark.parametrize("spec,message", [
    ({"abs": 1.0}, "'why' is required"),
    ({"abs": -1, "why": "x"}, "'abs' must be a finite number >= 0"),
    ({"rel": "1%", "why": "x"}, "'rel' must be a finite number >= 0"),
    ({"abs": 1, "why": "x", "integer": True}, "unknown keys \\['integer'\\]"),
    ([1.0], "must be an object"),
])
def test_bad_declarations_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        Tolerance.from_metadata(spec)


def _notebook(path: Path, printed: str, committed: str, tolerance: dict | None) -> None:
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=committed + "\n")]
    if tolerance is not None:
        cell.metadata["tolerance"] = tolerance
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
@pytest.mark.parametrize("printed,tolerance,passes", [
    ("accuracy 98.2%", {"abs": 1.0, "why": "accuracy in %"}, True),
    ("accuracy 97.2%", {"abs": 1.0, "why": "accuracy in %"}, False),
    ("accuracy 98.2%", None, False),
    ("accuracy 98.2% of 1000", {"abs": 1.0, "why": "accuracy in %"}, False),
])
def test_nbval_uses_the_declared_tolerance(tmp_path, printed, tolerance, passes):
    """A real nbval run with this plugin: a committed 98.6% against a re-executed number."""
    _notebook(tmp_path / "nb.ipynb", printed, "accuracy 98.6%", tolerance)
    tests = Path(__file__).resolve().parent
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                          "-p", "nbval_settings", "--nbval", "--nbval-current-env", str(tmp_path / "nb.ipynb")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(tests)})
    assert (run.returncode == 0) == passes, run.stdout[-2000:] + run.stderr[-2000:]
    if not passes:
        assert "accuracy 98.6%" in run.stdout  # nbval's own diff shows the committed output

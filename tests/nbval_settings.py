"""pytest plugin (loaded with ``-p nbval_settings``): how nbval compares the committed notebooks.

- stderr is not compared (warnings and progress bars differ between runs and machines);
- a cell whose ``metadata["tolerance"]`` declares a tolerance (numbers that come from training) is compared
  with it (:mod:`nbval_tolerance`); every other output is compared exactly, except cells tagged
  ``nbval-ignore-output``, which print times (``tests/test_notebooks.py`` checks that they do).
"""
from nbval.plugin import IPyNbCell
from nbval_tolerance import Tolerance, snap_outputs

_exact_compare = IPyNbCell.compare_outputs


def _compare_outputs(self, test, ref, skip_compare=None):
    tolerance = Tolerance.from_metadata(self.cell.metadata.get("tolerance"))
    if tolerance is not None:
        test = snap_outputs(test, ref, tolerance, self.sanitize)
    return _exact_compare(self, test, ref, skip_compare)


IPyNbCell.compare_outputs = _compare_outputs


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)

"""pytest plugin (loaded with ``-p nbval_settings``): how nbval compares the committed notebooks.

stderr is not compared (warnings and progress bars differ between runs and machines); everything
else in a cell's output is, except cells marked ``# NBVAL_IGNORE_OUTPUT`` (timings).
"""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)

"""pytest plugin (loaded with ``-p xdist_groups``): how ``make test`` shares the work between pytest-xdist workers.

With ``--dist loadgroup``, tests that carry the same ``xdist_group`` run in one worker, in order; every other test
goes to whichever worker is free. Grouped here:

- the cells of one notebook (nbval): they run one after another in one kernel;
- the book's tests (``test_book.py``): they share one build of the book, a session fixture, which two workers
  would each make.
"""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        path = item.path
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(str(path)))
        elif path.name == "test_book.py":
            item.add_marker(pytest.mark.xdist_group("book"))

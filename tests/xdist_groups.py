"""pytest plugin (loaded with ``-p xdist_groups``): how ``make test`` shares the work between pytest-xdist workers.

``make test`` runs ``--dist loadgroup``, which this plugin replaces with its own scheduling: the tests of
one file (or one notebook validated by nbval) run in one worker, in collection order (a notebook's cells run one
after another in one kernel; a module's fixtures, such as the book's build or a graded batch, are made once), except
that each book notebook validated from the installed wheel (``test_package_install.py``) is a unit of its own:
those are the longest tests, and spreading them over the workers is what keeps ``make test`` short. The learner's
venv they share is built once per run (see that module's ``learner_python``). The longest units are handed out
first (:data:`FIRST`), so that no worker starts a long one when the others are about to finish. Each worker
compiles into an Inductor cache of its own (``TORCHINDUCTOR_CACHE_DIR``), shared with its notebooks' kernels.

pytest-xdist's own ``loadgroup`` reads ``xdist_group`` marks by rewriting each item's node id, which pytest 9.2's
read-only node ids ignore; a scheduler that computes the unit from the node id needs no marks.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import PurePosixPath

import pytest

SPREAD = ("test_package_install.py",)  # each parametrized test of these files is a unit of its own
FIRST = ("test_package_install.py", "test_grading_attacks.py", "test_exercises_grading.py", "test_book.py",
         "test_grading_batch.py", "test_grading_filesystem.py")  # the longest units, in this order, before the rest


def unit_of(nodeid: str) -> str:
    """The unit of work ``nodeid`` belongs to: its file, or itself for a parametrized test of :data:`SPREAD`."""
    path = nodeid.split("::", 1)[0]
    return nodeid if PurePosixPath(path).name in SPREAD and nodeid.endswith("]") else path


def _rank(nodeid: str) -> int:
    name = PurePosixPath(nodeid.split("::", 1)[0]).name
    return FIRST.index(name) if name in FIRST else len(FIRST)


class _Scheduler:
    """The plugin object that answers pytest-xdist's scheduler hook (registered only where xdist is loaded)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class CourseScheduling(LoadScopeScheduling):
            """pytest-xdist's scope scheduling, :func:`unit_of` as the scope, the units of :data:`FIRST` first."""

            def _split_scope(self, nodeid: str) -> str:
                return unit_of(nodeid)

            handed = 0  # units handed out so far

            def _assign_work_unit(self, node) -> None:
                # The first of the best rank (collection order within a rank); the second unit handed out needs no
                # learner venv, so that the second worker has work while the first builds that venv.
                units = [u for u in self.workqueue if self.handed != 1 or "::" not in u]  # "::": a SPREAD unit
                best = min(units or self.workqueue, key=_rank)
                self.workqueue.move_to_end(best, last=False)
                self.handed += 1
                super()._assign_work_unit(node)

        config.option.loadscopereorder = False  # keep the order above, not "most tests first"
        return CourseScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # each worker (and its notebooks' kernels) compiles
        # into a cache of its own: two workers compiling the same kernels at once must not share files half written.
        # One cache per CPU profile too: Inductor reuses code generated under ATEN_CPU_CAPABILITY=avx2 (8 floats per
        # vector) when run without it (16 per vector), and its stores then write past the buffers ("free(): invalid
        # pointer", an aborted worker)
        profile = os.environ.get("ATEN_CPU_CAPABILITY", "native")
        cache = os.path.join(tempfile.gettempdir(), f"torchinductor-{os.getuid()}-{profile}-{worker}")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    if config.pluginmanager.hasplugin("xdist"):  # not with `-p no:xdist`
        config.pluginmanager.register(_Scheduler(), "course-xdist-scheduler")

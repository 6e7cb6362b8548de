"""The sandboxes of one grading: every exercise's public cases, then every hidden case, out of the grader's reach.

:class:`Sandboxes` starts one sandbox per exercise (:mod:`~course_lib.grading.grade.sandbox_client`; forked by the
grading's fork server, :mod:`~course_lib.grading.confinement.forkserver`, when the grader is root) and runs
the cases in two phases: the public ones first, then the hidden ones, whose seed a sandbox receives with the
first of them. A case that fails (hangs, crashes the process, answers too much) costs that case: the process
and everything it started are killed, and a fresh sandbox goes on with the next case while the exercise's
budget of time lasts. Reaching a fenced reference ends the exercise, which scores 0.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from ..authoring.exercise import Assignment, Exercise
from ..authoring.seeds import hidden_seed
from ..confinement.fence import tripwire_names
from ..confinement.forkserver import ForkServer
from ..confinement.options import Options
from ..confinement.supervise import Sweep, descendants
from ..confinement.workspace import Workspace
from .extract import Statement
from .observations import CaseOutcome, Observations
from .sandbox_client import Context, SandboxProcess, run_cases, until_ready
from .status import Status


class _ExerciseRun:
    """The cases of one exercise, the sandbox running them (kept between the two phases), the observations."""

    def __init__(self, ctx: Context, exercise: Exercise, statements: list[Statement]) -> None:
        self.ctx, self.exercise = ctx, exercise
        self.obs = Observations()
        self.todo = {"public": [("public", i) for i in range(len(exercise.public()))],
                     "hidden": [("hidden", i) for i in range(len(exercise.hidden(
                         hidden_seed(ctx.secret, ctx.assignment.name, exercise.name))))]}
        self.budget = ctx.options.time.exercise
        self.box: SandboxProcess | None = None
        self.job = {"assignment": ctx.assignment.name, "exercise": exercise.name,
                    "definition_seconds": ctx.options.time.definitions,
                    "statements": [{"cell": s.cell, "line": s.line, "source": s.source} for s in statements]}

    def advance(self, kind: str) -> None:
        """Run the ``kind`` cases (public or hidden) while the exercise's budget lasts."""
        todo = self.todo[kind]
        while todo and self.obs.status is Status.OK:
            if self.budget <= 0:
                for key in todo:
                    self.obs.cases[key] = CaseOutcome(Status.NOT_RUN)
                todo.clear()
                break
            if self.box is None and not self._start(kind):
                break
            self.budget -= run_cases(self.box, todo, self.exercise, self.ctx, self.budget, self.obs)
            if self.box.failed or self.obs.status is not Status.OK:  # not to be trusted with another case
                self.close()

    def _start(self, kind: str) -> bool:
        self.box = SandboxProcess(self.ctx.workspace, self.ctx.fenced, self.ctx.options, self.ctx.server)
        self.ctx.live.add(self.box.proc.pid)
        ready = Observations()
        started = until_ready(self.box, self.job, self.ctx.options.time, ready, self.ctx.references)
        if kind == "public":  # what defining said is shown to the learner only before any hidden input exists
            self.obs.definition_errors, self.obs.skipped = ready.definition_errors, ready.skipped
        if started:
            return True
        self.close()
        if kind == "public" or ready.status is Status.CALLS_REFERENCE:
            self.obs.status, self.obs.detail = ready.status, ready.detail
            self.obs.hidden_detail = ready.hidden_detail or ready.detail
        else:  # a fresh process for the hidden cases failed to start: those cases fail, the public scores stay
            status = Status.TIMEOUT if ready.status is Status.START_TIMEOUT else Status.CRASHED
            for key in self.todo[kind]:
                self.obs.cases[key] = CaseOutcome(status, detail=ready.detail)
            self.todo[kind].clear()
        return False

    def close(self) -> None:
        if self.box is not None:
            self.ctx.live.discard(self.box.proc.pid)
            self.box.close(self.ctx.sweep, self.ctx.live, self.ctx.spared)
            self.box = None


class Sandboxes:
    """The sandboxes of one grading: ``run("public")`` runs every exercise's public cases, ``run("hidden")``
    every hidden case; until every public case has been answered no process holds a hidden seed, so
    nothing shown before grades are published (definition errors, the function's own error messages,
    crashes, and the notebook's execution, which :meth:`paused` makes room for between the two phases)
    can carry hidden inputs, whatever the learner's processes leave behind. One sandbox per exercise
    serves both phases unless a case fails. Used as a context manager, it kills them all at the end.
    """

    def __init__(self, workspace: Workspace, assignment: Assignment, statements: dict[str, list[Statement]],
                 secret: int, options: Options, fenced: dict, sweep: Sweep) -> None:
        self.ctx = Context(workspace, assignment, secret, options, fenced, sweep, tripwire_names(fenced))
        self.runs = [_ExerciseRun(self.ctx, ex, statements[ex.name]) for ex in assignment.exercises]
        if os.geteuid() == 0 and self.runs:  # a privileged grader: one fork server forks every sandbox
            try:
                self.ctx.server = ForkServer(workspace, fenced, assignment.name, options)
            except (RuntimeError, OSError):  # each sandbox then starts as a fresh interpreter, confined the same
                self.ctx.server = None

    def run(self, kind: str) -> None:
        for exercise_run in self.runs:
            exercise_run.advance(kind)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Inside the block the sandboxes (and what they started) are stopped (SIGSTOP), and any other
        process they left is killed before and after it: the notebook's kernel runs there alone."""
        self.ctx.sweep.sweep(self.ctx.live, spared=self.ctx.spared)
        stopped = self.ctx.live.union(*(descendants(pid) for pid in self.ctx.live))
        _signal_all(stopped, signal.SIGSTOP)
        try:
            yield
        finally:
            self.ctx.sweep.sweep(self.ctx.live, spared=self.ctx.spared)
            _signal_all(stopped, signal.SIGCONT)

    @property
    def observations(self) -> dict[str, Observations]:
        return {r.exercise.name: r.obs for r in self.runs}

    def __enter__(self) -> Sandboxes:
        return self

    def __exit__(self, *exc: object) -> None:
        for exercise_run in self.runs:
            exercise_run.close()
        if self.ctx.server is not None:
            self.ctx.server.close()


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

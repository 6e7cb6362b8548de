"""The grader's side of a sandbox: run one exercise's cases on the learner's function, out of reach.

:func:`observe_exercise` starts a sandbox (:mod:`course_lib.grading.sandbox`) for one exercise,
sends it the job, waits until it is *ready* (Python, torch and the notebook's definitions loaded;
the exercise's clock starts only then), and sends the cases one at a time: the public ones first,
then the hidden ones, whose seed the sandbox receives with the first of them. Each case has a
deadline in CPU seconds (so that a loaded machine does not fail a correct function) and a more
generous one in wall-clock seconds (for a function that sleeps). A case that hangs, crashes the
process or answers too much costs that case: the process and everything it started are killed,
and a fresh sandbox goes on with the next case while the exercise's budget lasts. Reaching a
fenced reference (:mod:`course_lib.grading.tripwire`) ends the exercise, which scores 0.

Everything a sandbox says is read from its own pipe, as frames of :mod:`course_lib.grading.channel`,
size-capped, and accepted only for the exercise that sandbox runs. Free text from a process that
has received hidden inputs (its stderr, its crash) is kept for the hidden feedback only, so a
learner cannot carry hidden inputs into the feedback shown before grades are published.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .channel import ChannelError, Reader, decode, send
from .confine import Limits
from .options import TimeLimits
from .extract import Statement
from .fence import tripwire_names
from .sandbox import BOOT
from .spec import Assignment, Exercise, hidden_seed, rng_seed
from .status import Status
from .supervise import Sweep, cpu_seconds, descendants, kill, spawn
from .workspace import Workspace

STDERR_TAIL = 2000


@dataclass
class CaseOutcome:
    """What happened to one case: ``status`` ANSWERED with the decoded ``result``, or why not."""

    status: Status
    result: dict[str, Any] | None = None
    detail: str = ""


@dataclass
class Observations:
    """Everything the sandboxes said about one exercise (raw: the grader judges it)."""

    status: Status = Status.OK
    detail: str = ""
    hidden_detail: str = ""
    cases: dict[tuple[str, int], CaseOutcome] = field(default_factory=dict)
    definition_errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Sandbox:
    """One running sandbox process and its pipes."""

    def __init__(self, workspace: Workspace, fenced: dict, limits: TimeLimits, memory: Limits):
        self.folder = workspace.folder("sandbox", fenced)
        in_r, self.in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cpu = int(limits.start + limits.definitions + limits.exercise + limits.case_cpu) + 1
        confinement = workspace.confinement(self.folder, Limits(**{**memory.__dict__, "cpu_seconds": cpu}))
        try:
            self.proc, _ = spawn(
                [sys.executable, "-s", "-B", "-c", BOOT, str(self.folder), str(in_r), str(out_w)], confinement,
                workspace.environment(self.folder), stdout=subprocess.DEVNULL, stderr=err_w, pass_fds=(in_r, out_w))
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        self.reader = Reader(out_r, limits.message_bytes)
        self.err_fd, self.stderr = err_r, bytearray()
        self.saw_hidden = False
        self.failed = False  # a case hung, crashed it or got no readable answer

    def send(self, message: dict[str, Any]) -> bool:
        try:
            send(self.in_w, message)
            return True
        except OSError:  # the process is gone
            return False

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """Frames received within ``timeout`` seconds (draining stderr meanwhile); raises ChannelError."""
        ready = select.select([self.reader.fd, self.err_fd], [], [], timeout)[0]
        if self.err_fd in ready:
            chunk = os.read(self.err_fd, 1 << 16)
            self.stderr = (self.stderr + chunk)[-STDERR_TAIL:]
        return self.reader.poll(0) if self.reader.fd in ready else []

    def ended(self) -> bool:
        return self.reader.closed and self.proc.poll() is not None

    def why_ended(self) -> str:
        """How the process ended; one that closed its command pipe but runs on is killed first."""
        code = self.proc.poll()
        if code is None:
            kill(self.proc)
            return "it stopped reading the grader's commands"
        lines = self.stderr.decode(errors="replace").strip().splitlines()
        tail = f": {lines[-1][:300]}" if lines else ""
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return how + tail

    def close(self, sweep: Sweep, keep: set[int]) -> None:
        """Kill this process, and every process started since ``sweep`` began but ``keep`` and theirs."""
        kill(self.proc)
        sweep.sweep(keep - {self.proc.pid})
        for fd in (self.in_w, self.reader.fd, self.err_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


class _ExerciseRun:
    """The cases of one exercise, the sandbox running them (kept between the two phases), the observations."""

    def __init__(self, ctx: _Context, exercise: Exercise, statements: list[Statement]):
        self.ctx, self.exercise = ctx, exercise
        self.obs = Observations()
        self.todo = {"public": [("public", i) for i in range(len(exercise.public()))],
                     "hidden": [("hidden", i) for i in range(len(exercise.hidden(
                         hidden_seed(ctx.secret, ctx.assignment.name, exercise.name))))]}
        self.budget = ctx.limits.exercise
        self.box: _Sandbox | None = None
        self.job = {"assignment": ctx.assignment.name, "exercise": exercise.name,
                    "definition_seconds": ctx.limits.definitions,
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
            self.budget -= _run_cases(self.box, todo, self.exercise, self.ctx, self.budget, self.obs)
            if self.box.failed or self.obs.status is not Status.OK:  # not to be trusted with another case
                self.close()

    def _start(self, kind: str) -> bool:
        self.box = _Sandbox(self.ctx.workspace, self.ctx.fenced, self.ctx.limits, self.ctx.memory)
        self.ctx.live.add(self.box.proc.pid)
        ready = Observations()
        started = _until_ready(self.box, self.job, self.ctx.limits, ready, self.ctx.references)
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
            self.box.close(self.ctx.sweep, self.ctx.live)
            self.box = None


@dataclass
class _Context:
    workspace: Workspace
    assignment: Assignment
    secret: int
    limits: TimeLimits
    memory: Limits
    fenced: dict
    sweep: Sweep
    references: set[str] = field(default_factory=set)
    live: set[int] = field(default_factory=set)  # the sandboxes still running


class Sandboxes:
    """The sandboxes of one grading: ``run("public")`` runs every exercise's public cases, ``run("hidden")``
    every hidden case; until every public case has been answered no process holds a hidden seed, so
    nothing shown before grades are published (definition errors, the function's own error messages,
    crashes, and the notebook's execution, which :meth:`paused` makes room for between the two phases)
    can carry hidden inputs, whatever the learner's processes leave behind. One sandbox per exercise
    serves both phases unless a case fails. Used as a context manager, it kills them all at the end.
    """

    def __init__(self, workspace: Workspace, assignment: Assignment, statements: dict[str, list[Statement]],
                 secret: int, limits: TimeLimits, memory: Limits, fenced: dict, sweep: Sweep):
        self.ctx = _Context(workspace, assignment, secret, limits, memory, fenced, sweep, tripwire_names(fenced))
        self.runs = [_ExerciseRun(self.ctx, ex, statements[ex.name]) for ex in assignment.exercises]

    def run(self, kind: str) -> None:
        for exercise_run in self.runs:
            exercise_run.advance(kind)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Inside the block the sandboxes (and what they started) are stopped (SIGSTOP), and any other
        process they left is killed before and after it: the notebook's kernel runs there alone."""
        self.ctx.sweep.sweep(self.ctx.live)
        stopped = self.ctx.live.union(*(descendants(pid) for pid in self.ctx.live))
        _signal_all(stopped, signal.SIGSTOP)
        try:
            yield
        finally:
            self.ctx.sweep.sweep(self.ctx.live)
            _signal_all(stopped, signal.SIGCONT)

    @property
    def observations(self) -> dict[str, Observations]:
        return {r.exercise.name: r.obs for r in self.runs}

    def __enter__(self) -> Sandboxes:
        return self

    def __exit__(self, *exc: object) -> None:
        for exercise_run in self.runs:
            exercise_run.close()


def _signal_all(pids: set[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _tripped(obs: Observations, message: dict[str, Any], known: set[str], hidden: bool) -> None:
    reference = message.get("reference")
    obs.status = Status.CALLS_REFERENCE
    name = reference if isinstance(reference, str) and reference in known else "a fenced reference"
    obs.detail = name if not hidden else "a fenced reference"
    obs.hidden_detail = name


def _until_ready(box: _Sandbox, job: dict, limits: TimeLimits, obs: Observations, known: set[str]) -> bool:
    """Send the job and wait for "ready"; on anything else set ``obs.status`` and return False."""
    box.send(job)
    deadline = time.monotonic() + limits.start + limits.definitions + 5
    while time.monotonic() < deadline:
        try:
            messages = box.wait(0.05)
        except ChannelError as e:
            obs.status, obs.detail = Status.START_CRASHED, str(e)
            return False
        for message in messages:
            kind = message.get("type")
            if kind == "tripped":
                _tripped(obs, message, known, hidden=box.saw_hidden)
                return False
            if kind == "ready":
                status = Status.from_sandbox(message.get("status"))
                obs.definition_errors = [str(e)[:300] for e in message.get("errors", [])][:20]
                obs.skipped = [str(e)[:60] for e in message.get("skipped", [])][:50]
                if status is not Status.OK:
                    obs.status, obs.detail = status, str(message.get("detail", ""))[:200]
                    return False
                return True
        if box.ended():
            obs.status, obs.detail = Status.START_CRASHED, box.why_ended()
            return False
    obs.status, obs.detail = Status.START_TIMEOUT, f"{limits.start + limits.definitions:g} s"
    return False


def _run_cases(box: _Sandbox, todo: list[tuple[str, int]], exercise: Exercise, ctx: _Context, budget: float,
               obs: Observations) -> float:
    """Send the cases of ``todo`` one by one (removing the ones done) until one fails or the budget is
    spent; return the seconds charged."""
    charged, limits = 0.0, ctx.limits
    while todo and charged < budget:
        kind, index = key = todo[0]
        command = {"kind": kind, "index": index, "rng_seed": rng_seed(exercise.name, kind, index, ctx.secret)}
        if kind == "hidden":
            command["hidden_seed"] = hidden_seed(ctx.secret, ctx.assignment.name, exercise.name)
            box.saw_hidden = True
        cpu0, wall0 = cpu_seconds(box.proc.pid), time.monotonic()
        outcome, cost = None, 0.0
        if not box.send(command):
            outcome = CaseOutcome(Status.CRASHED, detail=box.why_ended())
        while outcome is None:
            try:
                messages = box.wait(0.05)
            except ChannelError as e:
                outcome, cost = CaseOutcome(Status.TOO_LARGE, detail=str(e)), limits.case_cpu
                break
            cpu, wall = cpu_seconds(box.proc.pid) - cpu0, time.monotonic() - wall0
            for message in messages:
                if message.get("type") == "tripped":
                    _tripped(obs, message, ctx.references, hidden=box.saw_hidden)
                    todo.clear()
                    return charged
                if message.get("type") == "case" and (message.get("kind"), message.get("index")) == key:
                    outcome, cost = _case_outcome(message.get("result")), cpu
                    break
            if outcome is not None:
                break
            if box.ended():
                outcome, cost = CaseOutcome(Status.CRASHED, detail=box.why_ended()), cpu
            elif cpu > limits.case_cpu:
                outcome, cost = CaseOutcome(Status.TIMEOUT, detail=f"{limits.case_cpu:g} s of CPU time"), limits.case_cpu
            elif wall > limits.case_wall:
                outcome, cost = CaseOutcome(Status.TIMEOUT, detail=f"{limits.case_wall:g} s"), limits.case_wall
        obs.cases[key] = outcome
        todo.pop(0)
        charged += cost
        if outcome.status is not Status.ANSWERED:
            box.failed = True
            break
    return charged


def _case_outcome(raw: Any) -> CaseOutcome:
    """The decoded observation of one case, or UNREADABLE if it is not ``{"value": ...}`` / ``{"error": str}``."""
    try:
        result = decode(raw)
    except (ChannelError, RecursionError, ValueError, TypeError) as e:
        return CaseOutcome(Status.UNREADABLE, detail=str(e)[:200])
    if isinstance(result, dict) and ("value" in result or isinstance(result.get("error"), str)):
        return CaseOutcome(Status.ANSWERED, result)
    return CaseOutcome(Status.UNREADABLE, detail="not an observation")

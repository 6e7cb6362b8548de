"""The grader's side of one sandbox: start it, send it the job and the cases, read what it answers.

A :class:`SandboxProcess` is one confined process (:mod:`course_lib.grading.confinement.sandbox`) and its pipes.
:func:`until_ready` sends the job and waits until the process is *ready* (Python, torch and the notebook's
definitions loaded; the exercise's clock starts only then); :func:`run_cases` sends the cases one at a time.
Each case has a deadline in CPU seconds (so that a loaded machine does not fail a correct function) and a more
generous one in wall-clock seconds (for a function that sleeps). A case that hangs, crashes the process or
answers too much costs that case, and the process is not trusted with another. Reaching a fenced reference
(:mod:`course_lib.grading.confinement.tripwire`) ends the exercise.

Everything a sandbox says is read from its own pipe, as frames of :mod:`course_lib.grading.confinement.channel`,
size-capped, and accepted only for the exercise and the case it was sent. Free text from a process that has
received hidden inputs (its stderr, its crash) is kept for the hidden feedback only.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..authoring.exercise import Assignment, Exercise
from ..authoring.seeds import hidden_seed, rng_seed
from ..authoring.served import CountingLoader, counted_loaders, served_modules
from ..confinement.channel import ChannelError, Reader, decode, encode, send
from ..confinement.forkserver import Forked, ForkServer
from ..confinement.options import Options, TimeLimits
from ..confinement.sandbox import BOOT
from ..confinement.supervise import Sweep, cpu_seconds, kill, spawn
from ..confinement.workspace import Workspace
from .observations import CaseOutcome, Observations
from .status import Status

STDERR_TAIL = 2000


@dataclass
class Context:
    """What every sandbox of one grading shares: where and how they run, the secret, the fenced ``course_lib``
    files, the sweep, the references a genuine tripwire can name, the sandboxes still running and the fork server
    that forks them (``None``: each starts as a fresh interpreter)."""

    workspace: Workspace
    assignment: Assignment
    secret: int
    options: Options
    fenced: dict
    sweep: Sweep
    references: set[str] = field(default_factory=set)
    live: set[int] = field(default_factory=set)
    server: ForkServer | None = None

    @property
    def spared(self) -> set[int]:
        """The fork server, which a sweep spares (but not its sandboxes that are no longer live)."""
        return {self.server.proc.pid} if self.server is not None else set()


class SandboxProcess:
    """One running sandbox process and its pipes."""

    def __init__(self, workspace: Workspace, fenced: dict, options: Options, server: ForkServer | None = None) -> None:
        in_r, self.in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        limits = options.time
        process_limits = options.process_limits(cpu_seconds=limits.sandbox_cpu)
        try:
            if server is not None:  # forked by the grading's server: torch and the course already imported
                self.folder = workspace.box()
                confinement = workspace.confinement(self.folder, process_limits)
                self.proc: subprocess.Popen | Forked = server.fork(self.folder, confinement.limits,
                                                                   (in_r, out_w, err_w))
            else:  # a fresh confined interpreter
                self.folder = workspace.folder("sandbox", fenced)
                confinement = workspace.confinement(self.folder, process_limits)
                self.proc, _ = spawn(
                    [sys.executable, "-s", "-B", "-c", BOOT, str(self.folder), str(in_r), str(out_w)], confinement,
                    workspace.environment(self.folder), stdout=subprocess.DEVNULL, stderr=err_w,
                    pass_fds=(in_r, out_w))
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

    def close(self, sweep: Sweep, keep: set[int], spared: set[int] = frozenset()) -> None:
        """Kill this process, and every process started since ``sweep`` began but ``keep`` and theirs, and
        ``spared`` (the fork server: not its other sandboxes)."""
        kill(self.proc)
        sweep.sweep(keep - {self.proc.pid}, spared=spared)
        for fd in (self.in_w, self.reader.fd, self.err_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


def tripped(obs: Observations, message: dict[str, Any], known: set[str], hidden: bool) -> None:
    """Record that the learner's code reached a fenced reference (the exercise scores 0). The public feedback
    names it only if the process held no hidden input yet, and only a name in ``known`` (a genuine tripwire's)."""
    reference = message.get("reference")
    obs.status = Status.CALLS_REFERENCE
    name = reference if isinstance(reference, str) and reference in known else "a fenced reference"
    obs.detail = name if not hidden else "a fenced reference"
    obs.hidden_detail = name


def until_ready(box: SandboxProcess, job: dict, limits: TimeLimits, obs: Observations, known: set[str]) -> bool:
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
                tripped(obs, message, known, hidden=box.saw_hidden)
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


class Served:
    """The grader's side of one case's served loaders and modules (:mod:`course_lib.grading.authoring.served`): it
    builds the case itself, answers each pass the sandbox asks for with its own loader's batches (at most
    :data:`MAX_PASSES`) and each forward pass with its own module's output (at most :data:`MAX_FORWARDS`), and
    writes into the observation its counts and its modules' parameters and buffers after the case."""

    MAX_PASSES = 16  # a pass more is never answered (the learner's pass waits until the case's time is up)
    MAX_FORWARDS = 64  # likewise for forward passes of a served module

    def __init__(self, exercise: Exercise, ctx: Context, kind: str, index: int) -> None:
        self.exercise, self.ctx, self.kind, self.index = exercise, ctx, kind, index
        self._args: tuple | None = None
        self.forwards = 0

    def _case_args(self) -> tuple:
        if self._args is None:
            cases = (self.exercise.public() if self.kind == "public" else
                     self.exercise.hidden(hidden_seed(self.ctx.secret, self.ctx.assignment.name, self.exercise.name)))
            self._args = cases[self.index].make()[0]
        return self._args

    def loaders(self) -> dict[int, CountingLoader]:
        return counted_loaders(self._case_args())

    def answer(self, box: SandboxProcess, message: dict[str, Any]) -> None:
        position = message.get("position")
        loader = self.loaders().get(position) if isinstance(position, int) else None
        if loader is not None and loader.passes < self.MAX_PASSES:
            box.send({"type": "batches", "batches": [encode(batch) for batch in loader]})

    def run_forward(self, box: SandboxProcess, message: dict[str, Any]) -> None:
        """One forward pass of a served module, in the modes the sandbox sent, without a graph; counted as a
        pass that builds one if the sandbox said so."""
        position, modes = message.get("position"), message.get("modes")
        module = served_modules(self._case_args()).get(position) if isinstance(position, int) else None
        if module is None or self.forwards >= self.MAX_FORWARDS:
            return
        self.forwards += 1
        module.graph_passes += message.get("graph") is True
        submodules = list(module.modules())
        try:
            inputs = decode(message.get("inputs"))
            if not isinstance(modes, list) or len(modes) != len(submodules) or not all(
                    isinstance(m, bool) for m in modes):
                raise ValueError(f"expected the modes of its {len(submodules)} submodules")
            if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
                raise TypeError(f"expected a floating-point input tensor, got {type(inputs).__name__}")
            for submodule, training in zip(submodules, modes):
                submodule.training = training
            with torch.no_grad():
                output = module(inputs)
        except Exception as e:  # noqa: BLE001 - the learner's input may be anything: say what went wrong
            box.send({"type": "output", "error": f"the served module's forward pass failed: "
                                                 f"{type(e).__name__}: {str(e)[:200]}"})
            return
        box.send({"type": "output", "output": encode(output)})

    def observe(self, outcome: CaseOutcome) -> CaseOutcome:
        """``outcome`` with the grader's counts and states in place of the sandbox's (what the learner could have
        altered)."""
        value = outcome.result.get("value") if outcome.status is Status.ANSWERED else None
        if isinstance(value, dict):
            for loader in self.loaders().values():
                value[loader.counted_as] = loader.passes
            for module in served_modules(self._case_args()).values():
                state_as, graph_passes_as = module.served_as
                if state_as in value:
                    value[state_as] = [v.detach() for v in module.state_dict().values()]
                if graph_passes_as in value:
                    value[graph_passes_as] = module.graph_passes
        return outcome


def run_cases(box: SandboxProcess, todo: list[tuple[str, int]], exercise: Exercise, ctx: Context, budget: float,
              obs: Observations) -> float:
    """Send the cases of ``todo`` one by one (removing the ones done) until one fails or the budget is
    spent; return the seconds charged."""
    charged, limits = 0.0, ctx.options.time
    while todo and charged < budget:
        kind, index = key = todo[0]
        command = {"kind": kind, "index": index, "rng_seed": rng_seed(exercise.name, kind, index, ctx.secret)}
        if kind == "hidden":
            command["hidden_seed"] = hidden_seed(ctx.secret, ctx.assignment.name, exercise.name)
            box.saw_hidden = True
        cpu0, wall0 = cpu_seconds(box.proc.pid), time.monotonic()
        outcome, cost, served = None, 0.0, Served(exercise, ctx, kind, index)
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
                    tripped(obs, message, ctx.references, hidden=box.saw_hidden)
                    todo.clear()
                    return charged
                if message.get("type") == "fetch" and (message.get("kind"), message.get("index")) == key:
                    served.answer(box, message)
                if message.get("type") == "forward" and (message.get("kind"), message.get("index")) == key:
                    served.run_forward(box, message)
                if message.get("type") == "case" and (message.get("kind"), message.get("index")) == key:
                    outcome, cost = served.observe(_case_outcome(message.get("result"))), cpu
                    break
            if outcome is not None:
                break
            if box.ended():
                outcome, cost = CaseOutcome(Status.CRASHED, detail=box.why_ended()), cpu
            elif cpu > limits.case_cpu:
                outcome = CaseOutcome(Status.TIMEOUT, detail=f"{limits.case_cpu:g} s of CPU time")
                cost = limits.case_cpu
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

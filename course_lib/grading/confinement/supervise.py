"""Starting, watching and ending the learner's processes (Linux ``/proc``; degrades gracefully elsewhere).

- :func:`spawn` starts a command through :mod:`course_lib.grading.confinement.confine` and returns the process
  and the :class:`~course_lib.grading.confinement.confine.Isolation` the launcher achieved;
- :func:`cpu_seconds` is a process's CPU time (all its threads), read from ``/proc``;
- :class:`Sweep` makes this process a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): a
  learner's process that forks, calls ``setsid`` and lets its parent exit (a daemon) is re-parented
  here instead of to ``init``, so :meth:`Sweep.sweep` finds and kills every process started since
  the sweep began, however detached, and waits until each is gone.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .confine import Confinement, Isolation

CONFINE = str(Path(__file__).with_name("confine.py"))
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (field 3, the state, first), or ``None``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (every thread), 0 if it is gone."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS if fields else 0.0


def _parents() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, state)}`` of every process visible in ``/proc``."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    """Every living descendant of process ``pid`` (zombies excluded)."""
    table = _parents()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if table[p][1] != "Z"}


class Sweep:
    """Every process started by this one from now on can be killed, detached or not (see the module docstring).

    It also makes this process non-dumpable (``PR_SET_DUMPABLE`` 0): a learner's process running as the same
    user (grading without root) can then neither trace it nor read its memory or environment in ``/proc``.
    """

    def __init__(self) -> None:
        self.subreaper = False
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            self.subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        self.before = descendants(os.getpid()) if Path("/proc/self/stat").exists() else set()

    def sweep(self, keep: set[int] = frozenset(), rounds: int = 100, spared: set[int] = frozenset()) -> list[int]:
        """SIGKILL every descendant that was not there at the start, but ``keep`` and their own descendants, and
        ``spared`` (not theirs), until none is left; return their ids."""
        if not Path("/proc/self/stat").exists():
            return []
        killed: set[int] = set()
        spared = set(keep).union(spared, *(descendants(pid) for pid in keep))
        for _ in range(rounds):
            alive = descendants(os.getpid()) - self.before - spared
            if not alive:
                break
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGSTOP)  # first stop them all, so that none forks a replacement
                except ProcessLookupError:
                    pass
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            self._reap(alive)
            time.sleep(0.01)
        return sorted(killed)

    @staticmethod
    def _reap(pids: set[int]) -> None:
        """Collect the killed processes that are (now) this process's children; the others' parents will."""
        deadline = time.monotonic() + 5
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:  # not ours: gone once it is a zombie or absent
                    fields = _stat_fields(pid)
                    if fields is None or fields[0] in "ZX":
                        break
                    time.sleep(0.005)
                    continue
                if done:
                    break
                time.sleep(0.005)


def spawn(command: list[str], confinement: Confinement, env: dict[str, str], *, stdin: int | None = None,
          stdout: int | None = None, stderr: int | None = None,
          pass_fds: tuple[int, ...] = ()) -> tuple[subprocess.Popen, Isolation]:
    """Start ``command`` confined as ``confinement`` says (see :mod:`course_lib.grading.confinement.confine`).

    Raises ``RuntimeError`` if the launcher could not confine it (the command is then not run).
    """
    status_r, status_w = os.pipe()
    spec = Confinement(**{**confinement.__dict__, "status_fd": status_w})
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", CONFINE, spec.to_json(), "--", *command],
                                env=env, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, pass_fds=(status_w, *pass_fds), start_new_session=True,
                                cwd=confinement.cwd)
    finally:
        os.close(status_w)
    with os.fdopen(status_r, "rb") as f:
        raw = f.read(1 << 16)
    try:
        status = json.loads(raw or b"{}")
    except ValueError:
        status = {"error": "unreadable launcher status"}
    if "error" in status or not raw:
        proc.wait()
        raise RuntimeError(f"could not confine the learner's process: {status.get('error', 'the launcher died')}")
    return proc, Isolation(**status)


def kill(proc: subprocess.Popen | Any) -> None:
    """SIGKILL ``proc``'s process group and wait for ``proc`` (a ``Popen``, or a sandbox forked by the fork
    server: anything with ``pid``, ``kill`` and ``wait``)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()

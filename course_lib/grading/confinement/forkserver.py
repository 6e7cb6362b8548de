"""One confined parent per grading that imports torch once and forks every sandbox (a *fork server*).

Starting a sandbox as a fresh interpreter costs importing torch and the course (seconds of CPU) each time; a
grading starts one per exercise. Instead, :class:`ForkServer` starts, through
:mod:`~course_lib.grading.confinement.confine`, one process per grading (:func:`serve`) that holds the
confinement steps every sandbox shares (no network, the fresh root with the references hidden), stays privileged,
imports torch, the fenced ``course_lib`` (a snapshot written once, read-only for the sandboxes) and each
exercise's first case, and then, on each request of the grader, forks a sandbox. The forked process confines
itself before any learner code runs (:func:`~course_lib.grading.confinement.confine.enter_box`): a mount namespace
of its own with private temporary folders and, of the sandboxes' folders, only its own; its resource limits
(its CPU seconds count from the fork), the learner's user, no new privileges, SIGKILL with its parent. It then
serves its exercise (:func:`course_lib.grading.confinement.sandbox.main`) over the pipes the grader sent with the
request (``SCM_RIGHTS``), exactly as a sandbox started alone. The server runs no learner code and holds nothing a
learner may not see (no seed, no expected answer); a learner's process cannot signal or trace it (another user,
``/proc`` showing only the learner's processes) and holds none of its descriptors.

Control messages (JSON, one per ``SOCK_SEQPACKET`` packet): the server sends ``{"type": "ready"}`` once, then
``{"type": "forked", "pid"}`` for each request and ``{"type": "exit", "pid", "code"}`` when a sandbox ends
(``code`` as :attr:`subprocess.Popen.returncode`: negative for a signal).
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .confine import LAUNCH_FAILED, Confinement, ProcessLimits, enter_box
from .supervise import spawn

BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from course_lib.grading.confinement.forkserver import serve; serve(sys.argv[2], int(sys.argv[3]))")
PACKET = 1 << 20


def _send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


# --- the server (in the confined parent) --------------------------------------------------------------------

def serve(assignment: str, control: int) -> None:
    """The confined parent: import what every sandbox needs, say ready, fork a sandbox per request until the
    grader closes ``control``."""
    import torch

    torch.set_num_threads(1)
    from ..authoring.specs import get_assignment
    from . import sandbox  # noqa: F401 - imported here once, for every sandbox

    for exercise in get_assignment(assignment).exercises:  # what building a case imports (torch._dynamo, ...)
        public = exercise.public()
        if public:
            public[0].make()
    gc.collect()  # what the cases left, then every object so far out of the collector's sight: a sandbox's
    gc.freeze()  # collections (one per case with a served loader) then neither scan nor copy the server's memory
    sock = socket.socket(fileno=control)
    _send(sock, {"type": "ready"})
    children: set[int] = set()
    while True:
        readable = select.select([sock], [], [], 0.05)[0]
        _reap(sock, children)
        if not readable:
            continue
        data, fds, _, _ = socket.recv_fds(sock, PACKET, 3)
        if not data:
            return
        if len(fds) == 3:
            pid = _fork(json.loads(data), fds, control)
            children.add(pid)
            _send(sock, {"type": "forked", "pid": pid})
        for fd in fds:
            os.close(fd)


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"type": "exit", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(request: dict[str, Any], fds: list[int], control: int) -> int:
    """Fork one sandbox: ``fds`` are its command pipe's read end, its answer pipe's write end, its stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = LAUNCH_FAILED
    try:
        in_fd, out_fd, err_fd = fds
        null = os.open(os.devnull, os.O_RDWR)
        for target, fd in ((0, null), (1, null), (2, err_fd)):
            os.dup2(fd, target)
        for fd in {int(name) for name in os.listdir("/proc/self/fd")} - {0, 1, 2, in_fd, out_fd}:
            try:  # the control socket, the other sandboxes' descriptors: none stays with the learner's code
                os.close(fd)
            except OSError:
                pass
        os.setsid()
        enter_box(request["folder"], tuple(request["keep"]), ProcessLimits(**request["limits"]), request["uid"],
                  request["gid"], request["mounts"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None
        code = 1  # from here on, a failure is the sandbox's, not its confinement's
        from .sandbox import main

        main(in_fd, out_fd)
        code = 0
    except BaseException:  # noqa: BLE001 - reported on the sandbox's stderr, then the process ends
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


# --- the grader's side -------------------------------------------------------------------------------------

class Forked:
    """A sandbox forked by the server, for the grader: what :class:`subprocess.Popen` offers that the grader uses
    (``pid``, :meth:`poll`, :meth:`kill`, :meth:`wait`)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server, self.pid = server, pid

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        self.server.pump(0)
        return self.server.exits.get(self.pid)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 30) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            self.server.pump(0.01)
        return self.poll()


class ForkServer:
    """The grader's handle on one grading's fork server (see the module docstring).

    ``workspace`` gives the user, the folders and what is hidden or reached; ``fenced`` the fenced ``course_lib``
    files; ``cpu_seconds`` each sandbox's CPU limit. Raises ``RuntimeError`` if the server cannot start.
    """

    def __init__(self, workspace: Any, fenced: dict, assignment: str, options: Any) -> None:
        self.workspace, self.options = workspace, options
        self.exits: dict[int, int] = {}
        self.forked: list[int] = []
        folder = workspace.server_folder(fenced)
        self.keep = (*workspace.reach, str(folder))
        confinement = Confinement(cwd=str(folder), limits=options.process_limits(cpu_seconds=options.time.sandbox_cpu),
                                  hide=workspace.hide, reach=self.keep, writable=(str(workspace.boxes),),
                                  new_root=str(workspace.mount_point))
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        errors = tempfile.TemporaryFile(dir=workspace.root)
        try:
            self.proc, self.isolation = spawn(
                [sys.executable, "-s", "-B", "-c", BOOT, str(folder), assignment, str(theirs.fileno())], confinement,
                workspace.environment(folder), stdout=subprocess.DEVNULL, stderr=errors.fileno(),
                pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        ready = self._receive(options.time.start)
        if not ready or ready.get("type") != "ready":
            self.close()
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"the grading's fork server did not start: {tail or 'no answer'}")
        errors.close()

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        if not select.select([self.sock], [], [], timeout)[0]:
            return None
        data = self.sock.recv(PACKET)
        return json.loads(data) if data else {"type": "closed"}

    def pump(self, timeout: float) -> dict[str, Any] | None:
        """Read one control message (within ``timeout`` seconds); record exits; a server gone ends every sandbox."""
        message = self._receive(timeout) if self.proc.poll() is None else {"type": "closed"}
        if message is None:
            return None
        if message.get("type") == "exit":
            self.exits[int(message["pid"])] = int(message["code"])
        elif message.get("type") == "closed":
            for pid in self.forked:
                self.exits.setdefault(pid, -signal.SIGKILL)
        return message

    def fork(self, folder: Path, limits: ProcessLimits, fds: tuple[int, int, int]) -> Forked:
        """Fork a sandbox in ``folder`` with ``limits``, its command pipe, answer pipe and stderr ``fds``."""
        uid, gid = self.workspace.ids()
        request = {"folder": str(folder), "keep": list(self.keep), "uid": uid, "gid": gid,
                   "limits": limits.__dict__, "mounts": self.isolation.mounts,
                   "env": self.workspace.environment(folder)}
        try:
            _send(self.sock, request, fds)
        except OSError as e:
            raise RuntimeError(f"the grading's fork server is gone ({e})") from None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = self.pump(deadline - time.monotonic())
            if message is not None and message.get("type") == "forked":
                self.forked.append(int(message["pid"]))
                return Forked(self, int(message["pid"]))
            if message is not None and message.get("type") == "closed":
                break
        raise RuntimeError("the grading's fork server did not fork a sandbox")

    def close(self) -> None:
        """End the server; the sandboxes it forked die with it (SIGKILL with their parent)."""
        self.sock.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.kill()
        self.proc.wait()


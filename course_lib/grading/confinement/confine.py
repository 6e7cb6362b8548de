"""Start one learner process confined: ``python -I -S confine.py SPEC_JSON -- COMMAND...``.

The grader never runs the learner's code itself: it starts this small launcher (standard library
only, so it starts in milliseconds), which, still with the grader's privileges,

1. leaves the network: a new network namespace (no interface but a loopback that is down); as root
   directly, otherwise inside a new user namespace where the kernel allows it;
2. in a new mount namespace, where possible: covers every folder in ``hide`` (the checkout of the
   real ``course_lib``) with a read-only tmpfs holding only the entries on the way to ``reach`` (the
   interpreter, its libraries, the learner's folder), and every file in ``hide`` (the seed) with
   ``/dev/null``; gives the learner a private ``/tmp``, ``/var/tmp`` and ``/dev/shm``; and, when it
   changes user, makes ``reach`` reachable for that user (a folder on the way that the user may not
   enter, such as ``/root`` for a pyenv Python, is covered the same way);
3. sets resource limits (:class:`ProcessLimits`): data memory, address space, CPU seconds, file size,
   open files, processes, no core files;
4. as root, becomes the unprivileged ``uid``/``gid`` with no supplementary groups, so that the
   grader's files, the instructor's seed and the other gradings' processes are out of reach;
5. forbids new privileges (no set-uid), asks for SIGKILL if the grader dies, moves to ``cwd`` and
   replaces itself by ``COMMAND`` (``execve``), with the environment the grader chose.

Before the last step it writes what it achieved (:class:`Isolation` as JSON) on ``status_fd`` and
closes it, so the learner's code never holds that channel. A step the platform refuses (a
container without ``CAP_SYS_ADMIN``, a laptop without user namespaces) is skipped and reported,
never fatal; only a failure to change user is fatal (the learner's code would run as root). On a
system without Linux's ``unshare`` and ``prctl`` (macOS), only the limits and the user change apply.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys
from dataclasses import asdict, dataclass, field

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
LAUNCH_FAILED = 70  # exit status of a launcher that could not confine the command


@dataclass(frozen=True)
class ProcessLimits:
    """Per-process resource limits (``setrlimit``); ``None`` leaves one as it is (the grader's values are
    :class:`~course_lib.grading.confinement.options.Options`).

    ``data_bytes`` bounds the heap and private mappings (what tensors use); ``address_bytes`` the
    whole address space (importing torch alone reserves about 3.3 GB of it); ``cpu_seconds`` the
    process's CPU time (SIGKILL one second after SIGXCPU); ``nproc`` the processes and threads of
    the user, meaningful only for a user of its own.
    """

    data_bytes: int | None = None
    address_bytes: int | None = None
    cpu_seconds: int | None = None
    file_bytes: int | None = None
    open_files: int | None = None
    nproc: int | None = None


@dataclass(frozen=True)
class Confinement:
    """How to start one learner process (the launcher's ``SPEC_JSON``)."""

    cwd: str
    limits: ProcessLimits = field(default_factory=ProcessLimits)
    uid: int | None = None
    gid: int | None = None
    hide: tuple[str, ...] = ()
    reach: tuple[str, ...] = ()
    private_tmp: bool = True
    chown: tuple[str, ...] = ()
    status_fd: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Confinement:
        raw = json.loads(text)
        raw["limits"] = ProcessLimits(**raw["limits"])
        for key in ("hide", "reach", "chown"):
            raw[key] = tuple(raw[key])
        return cls(**raw)


@dataclass
class Isolation:
    """What the launcher achieved; ``notes`` says what the platform refused."""

    network: bool = False
    mounts: bool = False
    user: int | None = None
    limits: bool = False
    notes: list[str] = field(default_factory=list)


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def _enter_namespaces(isolation: Isolation) -> None:
    """New network and mount namespaces: directly as root, else inside a new user namespace."""
    if os.geteuid() == 0:
        attempts = [CLONE_NEWNET | CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWNS]
    else:
        attempts = [CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS, CLONE_NEWUSER | CLONE_NEWNET]
    uid, gid = os.getuid(), os.getgid()
    if not hasattr(_libc, "unshare"):
        isolation.notes.append("no namespaces on this system")
        return
    for flags in attempts:
        try:
            _unshare(flags)
        except OSError as e:
            isolation.notes.append(f"namespaces {flags:#x} refused ({e.strerror})")
            continue
        if flags & CLONE_NEWUSER:  # the same user inside as outside, so that no capability survives execve
            try:
                for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                                   ("gid_map", f"{gid} {gid} 1")):
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(text)
            except OSError as e:  # an unmapped user still runs, and still has no network
                isolation.notes.append(f"user namespace map refused ({e.strerror})")
        isolation.network = bool(flags & CLONE_NEWNET)
        isolation.mounts = bool(flags & CLONE_NEWNS)
        return


def _enterable(path: str, uid: int, gid: int) -> bool:
    """Whether a process of ``uid``/``gid`` (no other groups) may traverse the directory ``path``."""
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _cover(directory: str, keep: set[str], mode: int, read_only: bool) -> None:
    """Mount an empty tmpfs over ``directory``; its entries named in ``keep`` (those that exist) are bound back in."""
    handles = {name: os.open(os.path.join(directory, name), os.O_PATH) for name in keep
               if os.path.exists(os.path.join(directory, name))}
    flags = MS_NOSUID | MS_NODEV
    _mount("tmpfs", directory, "tmpfs", flags, f"mode={mode:o},size=64m")
    for name, fd in handles.items():
        target = os.path.join(directory, name)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(target)
        else:
            open(target, "w").close()
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
    if read_only:
        _mount("tmpfs", directory, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def _blocked_dirs(paths: tuple[str, ...], uid: int, gid: int) -> dict[str, set[str]]:
    """Directories on the way to ``paths`` that ``uid`` may not enter, each with the entries needed in it."""
    blocked: dict[str, set[str]] = {}
    for path in paths:
        parts = os.path.realpath(path).strip("/").split("/")
        for depth in range(len(parts) if parts != [""] else 0):
            directory = "/" + "/".join(parts[:depth])
            if os.path.isdir(directory) and not _enterable(directory, uid, gid):
                blocked.setdefault(directory, set()).add(parts[depth])
    return blocked


def _needed_in(directory: str, paths: tuple[str, ...]) -> set[str]:
    """The entries of ``directory`` on the way to ``paths``."""
    inside = (os.path.relpath(os.path.realpath(p), directory) for p in paths)
    return {rel.split("/")[0] for rel in inside if rel != "." and not rel.startswith("..")}


def _arrange_mounts(spec: Confinement) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if spec.uid is not None:
        blocked = _blocked_dirs(spec.reach, spec.uid, spec.gid if spec.gid is not None else spec.uid)
        for directory in sorted(blocked, key=lambda d: d.count("/")):  # outer directories first
            _cover(directory, blocked[directory], 0o755, read_only=True)
    if spec.private_tmp:
        for directory in PRIVATE_TMP:
            if os.path.isdir(directory):
                _cover(directory, _needed_in(directory, spec.reach), 0o1777, read_only=False)
    for path in spec.hide:
        if os.path.isdir(path):
            _cover(path, _needed_in(path, spec.reach), 0o755, read_only=True)
        elif os.path.exists(path):
            _mount("/dev/null", path, None, MS_BIND)


def _set_limits(limits: ProcessLimits) -> list[int]:
    pairs = [(resource.RLIMIT_DATA, limits.data_bytes), (resource.RLIMIT_AS, limits.address_bytes),
             (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NOFILE, limits.open_files),
             (resource.RLIMIT_NPROC, limits.nproc), (resource.RLIMIT_CORE, 0)]
    if limits.cpu_seconds is not None:
        pairs.append((resource.RLIMIT_CPU, limits.cpu_seconds))
    refused = []
    for which, value in pairs:
        if value is not None:
            hard = value + 1 if which == resource.RLIMIT_CPU else value  # SIGKILL one second after SIGXCPU
            try:
                resource.setrlimit(which, (value, hard))
            except (ValueError, OSError):  # above the current hard limit, or not supported (RLIMIT_AS on macOS)
                refused.append(which)
    return refused


def confine(spec: Confinement) -> Isolation:
    """Steps 1 to 4 of the module docstring, in this process; raises ``OSError`` if the user cannot change."""
    isolation = Isolation()
    _enter_namespaces(isolation)
    if isolation.mounts:
        try:
            _arrange_mounts(spec)
        except OSError as e:
            isolation.mounts = False
            isolation.notes.append(f"mounts refused ({e})")
    if spec.uid is not None:
        for path in spec.chown:
            os.chown(path, spec.uid, spec.gid if spec.gid is not None else spec.uid)
    refused = _set_limits(spec.limits)
    isolation.limits = not refused
    if refused:
        isolation.notes.append(f"limits refused: {refused}")
    if spec.uid is not None and spec.uid != os.getuid():
        os.setgroups([])
        os.setgid(spec.gid if spec.gid is not None else spec.uid)
        os.setuid(spec.uid)
    isolation.user = os.getuid()
    if hasattr(_libc, "prctl"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    os.chdir(spec.cwd)
    return isolation


def main(argv: list[str]) -> None:
    """``SPEC_JSON -- COMMAND...``: confine this process, report on ``status_fd``, exec ``COMMAND``."""
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: confine.py SPEC_JSON -- COMMAND...\n")
        os._exit(LAUNCH_FAILED)
    spec = Confinement.from_json(argv[0])
    try:
        isolation = confine(spec)
        message = json.dumps(asdict(isolation))
    except Exception as e:  # noqa: BLE001 - reported to the grader, which refuses to go on
        message = json.dumps({"error": f"{type(e).__name__}: {e}"})
        isolation = None
    if spec.status_fd is not None:
        os.write(spec.status_fd, message.encode())
        os.close(spec.status_fd)
    if isolation is None:
        os._exit(LAUNCH_FAILED)
    os.execve(argv[2], argv[2:], dict(os.environ))


if __name__ == "__main__":
    main(sys.argv[1:])

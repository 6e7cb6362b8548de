"""Start one learner process confined: ``python -I -S confine.py SPEC_JSON -- COMMAND...``.

The grader never runs the learner's code itself: it starts this small launcher (standard library
only, so it starts in milliseconds), which, still with the grader's privileges,

1. leaves the network: a new network namespace (no interface but a loopback that is down); as root
   directly, otherwise inside a new user namespace where the kernel allows it;
2. in a new mount namespace, where possible, gives the process a **fresh root** (deny by default,
   :func:`fresh_root`): an empty tmpfs holding only ``reach`` (the interpreter, its standard library, the
   venv's packages, the system's shared libraries), bound read-only, ``writable`` (the learner's folder),
   private ``/tmp``, ``/var/tmp`` and ``/dev/shm``, a few devices, ``/proc`` and a minimal ``/etc``; it
   becomes the root (``pivot_root``) and the old one is detached. Inside it (or, where the fresh root is
   refused, in the whole file system) every folder in ``hide`` (the checkout of the real ``course_lib``) is
   covered with a read-only tmpfs holding only the entries on the way to ``reach``, and every file in
   ``hide`` (the seed) with ``/dev/null``. Without a fresh root, the learner gets private temporary
   folders and, when it changes user, ``reach`` is made reachable for that user (a folder on the way that
   the user may not enter, such as ``/root`` for a pyenv Python, is covered the same way); everything
   else world-readable stays readable, and :class:`Isolation` says so (``root`` false);
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
import signal
import stat
import sys
from dataclasses import asdict, dataclass, field

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME, ST_RELATIME, MNT_DETACH = 8, 1024, 2048, 1 << 21, 4096, 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
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
    writable: tuple[str, ...] = ()
    new_root: str | None = None
    private_tmp: bool = True
    chown: tuple[str, ...] = ()
    status_fd: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Confinement:
        raw = json.loads(text)
        raw["limits"] = ProcessLimits(**raw["limits"])
        for key in ("hide", "reach", "writable", "chown"):
            raw[key] = tuple(raw[key])
        return cls(**raw)


@dataclass
class Isolation:
    """What the launcher achieved; ``notes`` says what the platform refused. ``root``: a fresh root held (the
    process sees only what it needs); ``proc``: its ``/proc`` shows only its user's processes."""

    network: bool = False
    mounts: bool = False
    root: bool = False
    proc: bool = False
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


def _hide(spec: Confinement) -> None:
    for path in spec.hide:
        if os.path.isdir(path):
            _cover(path, _needed_in(path, spec.reach), 0o755, read_only=True)
        elif os.path.exists(path):
            _mount("/dev/null", path, None, MS_BIND)


def _arrange_mounts(spec: Confinement, isolation: Isolation) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if spec.new_root is not None:
        try:
            isolation.proc = fresh_root(spec)
            isolation.root = True
        except OSError as e:
            isolation.notes.append(f"fresh root refused ({e}): every world-readable file stays readable")
            try:
                _umount(spec.new_root)
            except OSError:
                pass
    if not isolation.root:
        if spec.uid is not None:
            blocked = _blocked_dirs(spec.reach, spec.uid, spec.gid if spec.gid is not None else spec.uid)
            for directory in sorted(blocked, key=lambda d: d.count("/")):  # outer directories first
                _cover(directory, blocked[directory], 0o755, read_only=True)
        if spec.private_tmp:
            for directory in PRIVATE_TMP:
                if os.path.isdir(directory):
                    _cover(directory, _needed_in(directory, (*spec.reach, *spec.writable)), 0o1777, read_only=False)
    _hide(spec)


# --- the fresh root ------------------------------------------------------------------------------------------

def _umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def _inside(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _mirror(root: str, path: str) -> str:
    """Make ``path`` exist under ``root`` as on the host (each symbolic link on the way recreated, folders made,
    an empty file for a file); return the real path it leads to, the one to bind there."""
    done, parts = "/", [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        host = os.path.join(done, part)
        inside = _inside(root, host)
        if os.path.islink(host):
            if not os.path.lexists(inside):
                os.symlink(os.readlink(host), inside)
            return _mirror(root, os.path.join(os.path.realpath(host), *parts[i + 1:]))
        if not os.path.lexists(inside):
            if i == len(parts) - 1 and not os.path.isdir(host):
                open(inside, "w").close()
            else:
                os.mkdir(inside, 0o755)
        done = host
    return done


def _bind(source: str, target: str, read_only: bool) -> None:
    """Bind ``source`` (and the mounts below it) on ``target``; read-only keeps the flags the kernel locks."""
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        flag = os.statvfs(source).f_flag
        kept = (flag & (MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)) | (MS_RELATIME if flag & ST_RELATIME else 0)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _etc(root: str, uid: int, gid: int) -> None:
    """A minimal ``/etc``: the dynamic linker's files, the time zone, and users that name only root and the learner."""
    for name, text in (("passwd", f"root:x:0:0::/:/bin/false\nlearner:x:{uid}:{gid}::/tmp:/bin/false\n"),
                       ("group", f"root:x:0:\nlearner:x:{gid}:\n"), ("hosts", "127.0.0.1 localhost\n")):
        with open(_inside(root, f"/etc/{name}"), "w") as f:
            f.write(text)


def _dev(root: str) -> None:
    """A minimal ``/dev``: a few character devices bound from the host, the usual links, a private ``/dev/shm``."""
    dev = _inside(root, "/dev")
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=1m")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            open(os.path.join(dev, name), "w").close()
            _mount(f"/dev/{name}", os.path.join(dev, name), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    os.mkdir(os.path.join(dev, "shm"))
    _mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")


def _proc(root: str) -> bool:
    """``/proc``: a new instance showing only the processes of the learner's user where the kernel allows it
    (root), else the host's (a user namespace): True for the first."""
    target = _inside(root, "/proc")
    for options in ("hidepid=invisible", "hidepid=2"):
        try:
            _mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, options)
            return True
        except OSError:
            continue
    _mount("/proc", target, None, MS_BIND | MS_REC)
    return False


def _pivot(root: str) -> None:
    """Make ``root`` the root of this mount namespace and detach the old one (``chroot`` where no ``pivot_root``)."""
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None:
        os.mkdir(".old", 0o700)
        _check(_libc.syscall(number, b".", b".old"), "pivot_root")
        os.chdir("/")
        _umount("/.old")
        os.rmdir("/.old")
    else:
        _mount(root, "/", None, 1 << 13)  # MS_MOVE
        os.chroot(".")
        os.chdir("/")


def fresh_root(spec: Confinement) -> bool:
    """Step 2's fresh root at ``spec.new_root`` (see the module docstring); True if ``/proc`` shows only the
    learner's own processes."""
    root = spec.new_root
    uid = spec.uid if spec.uid is not None else os.getuid()
    gid = spec.gid if spec.gid is not None else (spec.uid if spec.uid is not None else os.getgid())
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m")
    for folder in ("/proc", "/dev", "/etc", *PRIVATE_TMP[:2]):
        os.makedirs(_inside(root, folder), 0o755, exist_ok=True)
    for folder in PRIVATE_TMP[:2]:
        _mount("tmpfs", _inside(root, folder), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    writable = [_mirror(root, p) for p in spec.writable if os.path.exists(p)]
    reach = sorted({_mirror(root, p) for p in (*spec.reach, *SYSTEM_FILES) if os.path.exists(p)}, key=len)
    bound: list[str] = []
    for path in reach:
        if not _under(path, bound) and not _under(path, writable):
            _bind(path, _inside(root, path), read_only=True)
            bound.append(path)
    for path in writable:
        _bind(path, _inside(root, path), read_only=False)
    _etc(root, uid, gid)
    _dev(root)
    own_proc = _proc(root)
    _pivot(root)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return own_proc


def _set_limits(limits: ProcessLimits) -> list[int]:
    import resource  # here: importing this module (the grader's options) must work where it is missing (Windows)

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
            _arrange_mounts(spec, isolation)
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


def enter_box(folder: str, keep: tuple[str, ...], limits: ProcessLimits, uid: int | None, gid: int | None,
              mounts: bool) -> None:
    """Confine a process that the fork server (:mod:`~course_lib.grading.confinement.forkserver`) forked, before it
    runs learner code. The server holds steps 1 and 2 (no network, the fresh root) and is still privileged; here,
    where ``mounts``, in a mount namespace of its own: private ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (the entries
    on the way to ``keep`` bound back) and, of the folder holding every process's folder, only ``folder``; then
    steps 3 to 5 as :func:`confine` (limits, the user ``uid``/``gid``, no new privileges, SIGKILL with its parent,
    ``folder`` as working directory). Raises ``OSError`` if a step fails: the process must then not go on."""
    if mounts:
        boxes = os.path.dirname(folder)
        _unshare(CLONE_NEWNS)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        for directory in PRIVATE_TMP:
            if os.path.isdir(directory):
                _cover(directory, _needed_in(directory, (*keep, boxes)), 0o1777, read_only=False)
        _cover(boxes, {os.path.basename(folder)}, 0o711, read_only=True)
    refused = _set_limits(limits)
    if refused:
        raise OSError(f"limits refused: {refused}")
    if uid is not None and uid != os.getuid():
        os.setgroups([])
        os.setgid(gid if gid is not None else uid)
        os.setuid(uid)
    if hasattr(_libc, "prctl"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.chdir(folder)


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

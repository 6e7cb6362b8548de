"""Where and as whom the learner's processes run during one grading.

A :class:`Workspace` is a temporary folder (``0711``, the grader's) holding one private folder per
learner process (``0700``, the learner user's): its working directory, ``HOME`` and ``TMPDIR``,
and a fresh ``course_lib`` snapshot (fenced for sandboxes, so that no process can change what the
next one imports); sandboxes forked by a fork server have theirs in :attr:`Workspace.boxes`, without a snapshot:
they import the server's (:meth:`Workspace.server_folder`, the grader's files). It decides

- the **user**: when the grader runs as root, a user of this grading alone (:func:`auto_uid`, from the
  grader's pid and the grading's number, unless told otherwise; the notebook's kernel the next uid), so that learner
  processes can neither write the grader's files nor read root-only ones (the installed ``course_lib``,
  the seed file), nor signal or trace other gradings' processes; without root, the grader's own user
  (formative grading);
- what learner processes **see** where the platform allows a mount namespace: a fresh root holding only what
  they need (:func:`~course_lib.grading.confinement.confine.fresh_root`): the interpreter and its libraries
  (:func:`interpreter_paths`), the system's shared libraries (:func:`system_paths`) and their own folder; in it,
  and everywhere where only the old covering holds, what is **hidden**: the ``course_lib`` sources the grader
  runs from (and their checkout, with the solutions), any ``course_lib`` the interpreter would find otherwise,
  and the seed file;
- the **environment**: an allow-list, nothing inherited (no seed, no tokens, no ``PYTHONPATH``).
"""
from __future__ import annotations

import importlib.machinery
import itertools
import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import replace
from pathlib import Path

from .confine import Confinement, Isolation, ProcessLimits
from .fence import PACKAGE, write_snapshot
from .supervise import spawn

UID_BASE = 2_000_000_000  # far above any real user; + a block per grader process, a pair per grading in it
_GRADINGS_PER_PROCESS = 256  # uid pairs (learner, kernel) a grader process cycles through, one per Workspace
_gradings = itertools.count()  # numbers the Workspaces made by this process
PROCESSES = 256  # processes and threads of a learner user of its own (RLIMIT_NPROC)
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "USER": "learner",
            "LOGNAME": "learner", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "COURSE_LIB_PROGRESS": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def course_sources() -> list[Path]:
    """The ``course_lib`` folders learner code could read the references from: the one running, and the
    one a fresh interpreter would import (an editable install's checkout), each with its checkout."""
    found = {PACKAGE}
    for finder in sys.meta_path:
        try:
            spec = finder.find_spec("course_lib", None)
        except Exception:  # noqa: BLE001 - a third-party finder may fail in any way
            continue
        if spec is not None and spec.origin:
            found.add(Path(spec.origin).resolve().parent)
    spec = importlib.machinery.PathFinder.find_spec("course_lib", [p for p in sys.path if p not in ("", ".")])
    if spec is not None and spec.origin:
        found.add(Path(spec.origin).resolve().parent)
    return sorted({p.parent if (p.parent / "pyproject.toml").exists() else p for p in found})


def interpreter_paths() -> list[Path]:
    """What a learner process needs to reach: the interpreter and its libraries."""
    paths = {Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(sys.base_prefix),
             Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"]),
             Path(sysconfig.get_paths()["platlib"])}
    paths |= {Path(p) for p in site.getsitepackages()}
    return sorted(paths)


UNHIDDEN = {  # what learner code could read, by the file system it saw (the score report says it to the instructor)
    "fresh root": "nothing but the interpreter, its libraries and the learner's own folder",
    "covered": "every world-readable file on this machine but the checkout and the seed: a copy of the masters or "
               "another learner's files elsewhere would be found (no fresh root: see isolation notes)",
    "host": "every file the learner's user can read, the checkout and its solutions included (no mount namespace)",
}
SYSTEM_LIBRARIES = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")


def system_paths(hidden: tuple[str, ...] = ()) -> list[Path]:
    """The shared libraries' folders: the system's, and those of every library this process has loaded (a
    conda prefix's ``lib``), but the ``hidden`` ones."""
    found = {Path(p) for p in SYSTEM_LIBRARIES if os.path.exists(p)}
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        maps = []
    for line in maps:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/") and ".so" in Path(fields[5]).name:
            found.add(Path(fields[5]).parent)
    return sorted(p for p in found if not any(p.is_relative_to(h) for h in hidden))


def readable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether a process of ``uid``/``gid`` (no other groups, no mount tricks) could read ``path``."""
    def allows(st: os.stat_result, user: int, group: int, other: int) -> bool:
        if st.st_uid == uid:
            return bool(st.st_mode & user)
        if st.st_gid == gid:
            return bool(st.st_mode & group)
        return bool(st.st_mode & other)

    path = path.resolve()
    for parent in reversed(path.parents):
        if not allows(parent.stat(), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return False
    return allows(path.stat(), stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)


def auto_uid(pid: int, grading: int) -> int:
    """The learner uid of grading number ``grading`` of the grader process ``pid`` (its kernel: the next uid).

    Each grading of a process gets uids of its own (cycling through :data:`_GRADINGS_PER_PROCESS` pairs), so
    that processes a learner left behind, even zombies not yet reaped, never count against the process limit
    (``RLIMIT_NPROC``, per uid) of the next learner graded by the same process (``grade-all``, a test run).
    """
    block = 2 * _GRADINGS_PER_PROCESS
    return UID_BASE + (pid % (2 ** 30 // block)) * block + 2 * (grading % _GRADINGS_PER_PROCESS)


class Workspace:
    """One grading's learner folders, user and hidden paths (see the module docstring)."""

    def __init__(self, user: str = "auto", hide: tuple[Path, ...] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="course-grading-"))
        self.root.chmod(0o711)
        self.mount_point = self.root / "root"  # where each learner process builds its fresh root
        self.mount_point.mkdir(mode=0o700)
        self.uid, self.gid = self._identity(user)
        self.hide = tuple(str(p) for p in (*course_sources(), *hide) if p.exists())
        self.reach = tuple(str(p) for p in (*interpreter_paths(), *system_paths(self.hide)))
        self.count = 0
        self.fenced: dict[Path, str] | None = None

    @staticmethod
    def _identity(user: str) -> tuple[int | None, int | None]:
        if os.geteuid() != 0 or user == "current":
            return None, None
        if user == "auto":
            uid = auto_uid(os.getpid(), next(_gradings))
            return uid, uid
        import pwd

        try:
            entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
            if user.isdigit():
                return int(user), int(user)
            raise ValueError(f"no user {user!r}; give a user name, a uid, 'auto' or 'current'") from None
        if entry.pw_uid == 0:
            raise ValueError("the sandbox user must not be root; use 'auto' or an unprivileged user")
        return entry.pw_uid, entry.pw_gid

    def ids(self, kernel: bool = False) -> tuple[int | None, int | None]:
        """The learner user, or for the notebook's kernel the next uid: it can neither signal the sandboxes
        nor write in their folders."""
        if self.uid is None:
            return None, None
        return self.uid + kernel, self.gid + kernel

    def folder(self, kind: str, snapshot: dict[Path, str] | None, kernel: bool = False) -> Path:
        """A new private folder for one learner process, with a ``course_lib`` snapshot (``snapshot``: the
        fenced files to put in it, ``{}`` for an unfenced copy)."""
        self.count += 1
        folder = self.root / f"{kind}-{self.count}"
        folder.mkdir(mode=0o700)
        write_snapshot(folder, snapshot)
        uid, gid = self.ids(kernel)
        if uid is not None:
            os.chown(folder, uid, gid)
        return folder

    @property
    def boxes(self) -> Path:
        """The folder (the grader's, ``0711``) of the folders of the sandboxes a fork server forks."""
        boxes = self.root / "boxes"
        if not boxes.exists():
            boxes.mkdir(mode=0o711)
        return boxes

    def box(self) -> Path:
        """A new private folder for a forked sandbox (no snapshot: it imports the fork server's)."""
        self.count += 1
        folder = self.boxes / f"sandbox-{self.count}"
        folder.mkdir(mode=0o700)
        uid, gid = self.ids()
        if uid is not None:
            os.chown(folder, uid, gid)
        return folder

    def server_folder(self, snapshot: dict[Path, str]) -> Path:
        """The fork server's folder: the fenced ``course_lib`` snapshot every forked sandbox imports, the grader's
        files (``0755``: readable, never writable, by learner code)."""
        self.count += 1
        folder = self.root / f"server-{self.count}"
        folder.mkdir(mode=0o755)
        return write_snapshot(folder, snapshot)

    def confinement(self, folder: Path, limits: ProcessLimits, chown: tuple[str, ...] = (),
                    reach: tuple[str, ...] = (), kernel: bool = False) -> Confinement:
        """How to start a learner process in ``folder`` (the one place it may write); ``reach``: more paths it must
        be able to read. A user of this grading's own may run :data:`PROCESSES` processes and threads at a time."""
        uid, gid = self.ids(kernel)
        return Confinement(cwd=str(folder), limits=replace(limits, nproc=PROCESSES if uid is not None else None),
                           uid=uid, gid=gid, hide=self.hide, reach=self.reach + reach, writable=(str(folder),),
                           new_root=str(self.mount_point), chown=chown)

    def environment(self, folder: Path, **extra: str) -> dict[str, str]:
        return {**BASE_ENV, "HOME": str(folder), "TMPDIR": str(folder), **extra}

    def probe(self) -> Isolation:
        """Start a trivial confined Python; ``RuntimeError`` saying why if the learner user cannot."""
        folder = self.folder("probe", {})
        proc, isolation = spawn([sys.executable, "-s", "-S", "-c", "pass"],
                                self.confinement(folder, ProcessLimits(cpu_seconds=60)),
                                self.environment(folder), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            who = f"uid {self.uid}" if self.uid is not None else "the current user"
            raise RuntimeError(f"a confined Python ({sys.executable}) cannot start as {who}: "
                               f"{err.decode(errors='replace').strip()[-300:]} (install Python where that user "
                               "can read it, or grade with --sandbox-user current)")
        shutil.rmtree(folder, ignore_errors=True)
        return isolation

    def guarantees(self, isolation: Isolation, references: list[Path], seed_file: str | Path | None) -> dict:
        """What held for the learner processes, for the instructor: the user they ran as, the network, the file
        system they saw (``fresh root``: only what they need; ``covered``: every world-readable file but the
        checkout and the seed; ``host``: everything their user can read), whether they could read the
        ``references``' files or the seed, and whether that makes the grading summative (a user of its own, a fresh
        root, neither readable)."""
        within = tuple(os.path.realpath(p) for p in self.reach)

        def readable(path: Path) -> bool:
            if isolation.mounts and any(path.is_relative_to(hidden) for hidden in self.hide):
                return False
            if isolation.root and not any(path.is_relative_to(p) for p in within):
                return False
            return self.uid is None or readable_by(path, self.uid, self.gid)

        out = {"learner_user": f"uid {self.uid}" if self.uid is not None else "the grader's own user",
               "network": "none" if isolation.network else "available",
               "file_system": "fresh root" if isolation.root else "covered" if isolation.mounts else "host",
               "not_hidden": UNHIDDEN["fresh root" if isolation.root else "covered" if isolation.mounts else "host"],
               "processes_visible": "own user's only" if isolation.proc else "all",
               "references_readable": any(readable(path) for path in references),
               "seed_readable": seed_file is not None and readable(Path(seed_file).resolve())}
        out["summative"] = (self.uid is not None and isolation.root and not out["references_readable"]
                            and not out["seed_readable"])
        if isolation.notes:
            out["notes"] = "; ".join(isolation.notes)
        return out

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

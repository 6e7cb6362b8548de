"""The confinement launcher and the sweep, on their own: what a learner process can reach, and that nothing it
starts survives (slow: starts processes)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from course_lib.grading.confinement.confine import ProcessLimits
from course_lib.grading.confinement.supervise import Sweep, descendants, spawn
from course_lib.grading.confinement.workspace import UID_BASE, Workspace, auto_uid

pytestmark = pytest.mark.slow
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the learner's code then runs as another user")
PROBE = r'''
import json, os, resource, socket, sys
asked = json.loads(sys.argv[1])
report = {"uid": os.getuid(), "cwd": os.getcwd(), "data": resource.getrlimit(resource.RLIMIT_DATA)[0],
          "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0], "env": sorted(os.environ), "read": {}, "listed": {}}
for name, path in asked["read"].items():
    try:
        report["read"][name] = open(path).read()
    except OSError as e:
        report["read"][name] = type(e).__name__
for path in asked["list"]:
    try:
        report["listed"][path] = sorted(os.listdir(path))
    except OSError as e:
        report["listed"][path] = type(e).__name__
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    report["network"] = "reached"
except OSError as e:
    report["network"] = str(e)
print(json.dumps(report))
'''
REFERENCE = Path(__file__).resolve().parents[1] / "course_lib" / "distillation" / "__init__.py"


def run_probe(workspace: Workspace, read: dict[str, Path], listed: tuple[str, ...] = ("/tmp",),
              reach: tuple[str, ...] = ()) -> tuple[dict, object, Path]:
    """Start PROBE as a learner process of ``workspace`` (also reaching ``reach``): what it could read of
    ``read``, the entries it sees in ``listed``, its user, limits, environment and network."""
    folder = workspace.folder("probe", {})
    limits = ProcessLimits(data_bytes=1 << 30, cpu_seconds=30)
    asked = json.dumps({"read": {k: str(v) for k, v in read.items()}, "list": list(listed)})
    proc, isolation = spawn([sys.executable, "-s", "-c", PROBE, asked],
                            workspace.confinement(folder, limits, reach=reach), workspace.environment(folder),
                            stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=120)
    return json.loads(out), isolation, folder


def on_the_way(directory: str, paths: tuple[str, ...]) -> list[str]:
    """The entries of ``directory`` that lead to ``paths``: all a learner process may see there."""
    return sorted({Path(p).resolve().relative_to(directory).parts[0] for p in paths
                   if Path(p).resolve().is_relative_to(directory) and Path(p).resolve() != Path(directory)})


@pytest.fixture
def probe(tmp_path, monkeypatch):
    secret = tmp_path / "seed"
    secret.write_text("31337")
    secret.chmod(0o644)
    monkeypatch.setenv("COURSE_GRADING_SEED", "31337")
    workspace = Workspace(hide=(secret,))
    try:
        report, isolation, folder = run_probe(workspace, {"secret": secret, "package": REFERENCE})
        yield report, isolation, workspace, folder
    finally:
        workspace.cleanup()


def test_a_learner_process_gets_limits_an_allow_listed_environment_and_a_private_folder(probe):
    report, isolation, _, folder = probe
    assert report["data"] == 1 << 30 and report["cpu"] == 30 and isolation.limits
    assert "COURSE_GRADING_SEED" not in report["env"] and "PYTHONPATH" not in report["env"]
    assert report["cwd"] == str(folder)


@ROOT_ONLY
def test_as_root_a_learner_process_is_another_user_without_network_seed_or_references(probe):
    report, isolation, workspace, folder = probe
    assert report["uid"] == workspace.uid != 0 and isolation.user == workspace.uid
    assert isolation.network and "unreachable" in report["network"]
    assert report["read"]["secret"] in ("", "PermissionError", "FileNotFoundError")  # covered, unreadable, not there
    assert report["read"]["package"] in ("FileNotFoundError", "PermissionError")
    # a private /tmp: the way to its own folder, and to the interpreter when it lives under /tmp (a checkout there)
    assert report["listed"]["/tmp"] == on_the_way("/tmp", (*workspace.reach, str(folder)))
    assert workspace.root.name in report["listed"]["/tmp"]


@ROOT_ONLY
def test_as_root_a_checkout_under_tmp_shows_the_learner_only_the_way_to_its_interpreter():
    """A clone in /tmp with its .venv inside (``make test`` there): the learner process must reach the interpreter
    at its path, so /tmp shows the checkout's folder, holding only the way to the interpreter's libraries; the
    references, the solutions and everything else of the checkout stay out of reach."""
    checkout = Path(tempfile.mkdtemp(prefix="checkout-", dir="/tmp"))
    workspace = None
    try:
        (checkout / "pyproject.toml").write_text("[project]\n")
        reference = checkout / "course_lib" / "distillation" / "__init__.py"
        reference.parent.mkdir(parents=True)
        reference.write_text("def soft_targets(logits, temperature): ...\n")
        (checkout / "solutions").mkdir()
        (checkout / "solutions" / "01_distillation.ipynb").write_text("{}")
        libraries = checkout / ".venv" / "lib" / "site-packages"
        libraries.mkdir(parents=True)
        (libraries / "library.py").write_text("VALUE = 1\n")
        for path in (checkout, *checkout.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        workspace = Workspace(hide=(checkout,))
        report, isolation, folder = run_probe(
            workspace, {"reference": reference, "library": libraries / "library.py"},
            listed=("/tmp", str(checkout), str(checkout / ".venv")), reach=(str(libraries),))
        assert isolation.mounts and report["uid"] == workspace.uid
        assert checkout.name in report["listed"]["/tmp"]
        assert report["listed"]["/tmp"] == on_the_way("/tmp", (*workspace.reach, str(libraries), str(folder)))
        assert report["listed"][str(checkout)] == [".venv"]
        assert report["listed"][str(checkout / ".venv")] == ["lib"]
        assert report["read"] == {"reference": "FileNotFoundError", "library": "VALUE = 1\n"}
    finally:
        if workspace is not None:
            workspace.cleanup()
        shutil.rmtree(checkout)


DAEMON = r'''
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(30)
        open(sys.argv[1], "w").write("still alive")
    os._exit(0)
print(os.getpid(), flush=True)
'''


def test_the_sweep_kills_a_daemon_that_left_its_parent(tmp_path):
    before = descendants(os.getpid())
    sweep = Sweep()
    assert sweep.subreaper
    subprocess.run([sys.executable, "-c", DAEMON, str(tmp_path / "marker")], check=True, timeout=60)
    time.sleep(0.5)
    orphans = descendants(os.getpid()) - before
    assert orphans, "the daemon should have been re-parented to this process"
    killed = sweep.sweep()
    assert set(killed) >= orphans and not descendants(os.getpid()) - before
    assert not (tmp_path / "marker").exists()


def test_each_grading_of_a_process_has_users_of_its_own():
    """A fork bomb's processes (zombies included) count against RLIMIT_NPROC of their uid: the next learner
    graded by the same process (grade-all) must not share it, nor the kernel's uid + 1."""
    for pid in (1, 4_194_303, os.getpid()):
        uids = [auto_uid(pid, grading) for grading in range(256)]
        used = set(uids) | {uid + 1 for uid in uids}
        assert len(used) == 2 * len(uids)
        assert min(uids) > UID_BASE and max(uids) + 1 < 2 ** 32 - 1
    other = {auto_uid(2, grading) + kernel for grading in range(256) for kernel in (0, 1)}
    assert not other & {auto_uid(1, grading) + kernel for grading in range(256) for kernel in (0, 1)}


@ROOT_ONLY
def test_two_workspaces_in_one_process_run_as_different_users():
    first, second = Workspace(), Workspace()
    try:
        assert first.uid != second.uid and first.uid + 1 != second.uid and first.uid != 0
    finally:
        first.cleanup()
        second.cleanup()


FORKED_PROBE = r'''import json, os, sys
open(f"/tmp/left-by-{os.getpid()}", "w").close()
seen = {"uid": os.getuid(), "ppid": os.getppid(), "left": len([n for n in os.listdir("/tmp") if n.startswith("left")]),
        "boxes": [n for n in (f"sandbox-{k}" for k in range(1, 9)) if os.path.exists(f"../{n}")],
        "snapshot_writable": os.access(sys.path[0], os.W_OK),
        "fds": len(os.listdir("/proc/self/fd"))}
raise RuntimeError(json.dumps(seen))'''


@ROOT_ONLY
def test_sandboxes_forked_by_one_server_are_each_confined_alone(monkeypatch):
    """One interpreter start per grading (the fork server), and each forked sandbox as confined as one started
    alone: the learner's user, a private /tmp, of the sandboxes' folders only its own (their folder unlisted), the
    course snapshot read-only, no descriptor but its own (stdin, stdout, stderr, its two pipes; listing
    /proc/self/fd opens one)."""
    from course_lib.grading.authoring.specs import get_assignment
    from course_lib.grading.confinement import forkserver
    from course_lib.grading.confinement.fence import fenced_files
    from course_lib.grading.confinement.options import Options
    from course_lib.grading.grade.observations import Observations
    from course_lib.grading.grade.sandbox_client import SandboxProcess, until_ready

    starts = []
    monkeypatch.setattr(forkserver, "spawn", lambda *a, **k: starts.append(a) or spawn(*a, **k))
    spec, options, sweep = get_assignment("quantization"), Options(execute=False), Sweep()
    workspace = Workspace()
    fenced = fenced_files(spec)
    server = forkserver.ForkServer(workspace, fenced, spec.name, options)
    job = {"assignment": spec.name, "exercise": spec.exercises[0].name, "definition_seconds": 10.0,
           "statements": [{"cell": 1, "line": 1, "source": FORKED_PROBE}]}
    seen = []
    try:
        for _ in range(2):
            box, obs = SandboxProcess(workspace, fenced, options, server), Observations()
            assert not until_ready(box, job, options.time, obs, set())  # the function is missing: it stops there
            seen.append((box, json.loads(obs.definition_errors[0].split("RuntimeError: ", 1)[1])))
            box.close(sweep, set(), {server.proc.pid})
    finally:
        server.close()
        workspace.cleanup()
    assert len(starts) == 1
    for box, report in seen:
        assert report["uid"] == workspace.uid and report["ppid"] == server.proc.pid
        assert report["left"] == 1 and report["boxes"] == [box.folder.name] and not report["snapshot_writable"]
        assert report["fds"] == 6

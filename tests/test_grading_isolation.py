"""The confinement launcher and the sweep, on their own: what a learner process can reach, and that nothing it
starts survives (slow: starts processes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_lib.grading.confine import Limits
from course_lib.grading.supervise import Sweep, descendants, spawn
from course_lib.grading.workspace import UID_BASE, Workspace, auto_uid

pytestmark = pytest.mark.slow
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the learner's code then runs as another user")
PROBE = r'''
import json, os, resource, socket, sys
report = {"uid": os.getuid(), "tmp": sorted(os.listdir("/tmp")), "cwd": os.getcwd(),
          "data": resource.getrlimit(resource.RLIMIT_DATA)[0], "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
          "env": sorted(os.environ)}
for name, path in (("secret", sys.argv[1]), ("package", sys.argv[2])):
    try:
        report[name] = open(path).read()
    except OSError as e:
        report[name] = type(e).__name__
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    report["network"] = "reached"
except OSError as e:
    report["network"] = str(e)
print(json.dumps(report))
'''


@pytest.fixture
def probe(tmp_path, monkeypatch):
    secret = tmp_path / "seed"
    secret.write_text("31337")
    secret.chmod(0o644)
    monkeypatch.setenv("COURSE_GRADING_SEED", "31337")
    workspace = Workspace(hide=(secret,))
    try:
        folder = workspace.folder("probe", {})
        limits = Limits(data_bytes=1 << 30, cpu_seconds=30)
        package = Path(__file__).resolve().parents[1] / "course_lib" / "distillation.py"
        proc, isolation = spawn([sys.executable, "-s", "-c", PROBE, str(secret), str(package)],
                                workspace.confinement(folder, limits), workspace.environment(folder),
                                stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=120)
        yield json.loads(out), isolation, workspace, folder
    finally:
        workspace.cleanup()


def test_a_learner_process_gets_limits_an_allow_listed_environment_and_a_private_folder(probe):
    report, isolation, _, folder = probe
    assert report["data"] == 1 << 30 and report["cpu"] == 30 and isolation.limits
    assert "COURSE_GRADING_SEED" not in report["env"] and "PYTHONPATH" not in report["env"]
    assert report["cwd"] == str(folder)


@ROOT_ONLY
def test_as_root_a_learner_process_is_another_user_without_network_seed_or_references(probe):
    report, isolation, workspace, _ = probe
    assert report["uid"] == workspace.uid != 0 and isolation.user == workspace.uid
    assert isolation.network and "unreachable" in report["network"]
    assert report["secret"] in ("", "PermissionError", "FileNotFoundError")  # covered, unreadable or not there
    assert report["package"] in ("FileNotFoundError", "PermissionError")
    assert report["tmp"] == [workspace.root.name]


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

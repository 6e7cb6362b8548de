"""Deny by default: a learner process sees only the interpreter, its libraries and its own folder (issue 26).

Files the grading machine holds for other reasons are planted outside the checkout: a copy of the masters
(``solutions/``) in another folder, a file in another user's home, an instructor's shell history and SSH key, all
world-readable. A process of the learner that walks ``/`` finds none of them, and a submission whose function
finds the masters and runs them scores 0 on it (slow: starts processes, grades a notebook).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from course_lib.grading.confinement.confine import ProcessLimits
from course_lib.grading.confinement.supervise import spawn
from course_lib.grading.confinement.workspace import Workspace
from course_lib.grading.grade.grader import grade
from course_lib.quantization import compute_qparams
from tests.test_grading_attacks import FAST, IMPORTS, full, notebook, points

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the fresh root and another user")
PLANTED = ("03_quantization.ipynb", "t26-other-users-notes.txt", ".bash_history", "id_rsa")
WALK = r'''
import json, os, sys
wanted, found, seen = set(json.loads(sys.argv[1])), [], 0
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if not (top == "/" and d in ("proc", "sys", "dev"))]
    seen += len(files)
    found += [os.path.join(top, f) for f in files if f in wanted]
print(json.dumps({"found": found, "seen": seen, "stdlib": os.path.exists(os.__file__)}))
'''
SEARCH_THE_DISK = '''def compute_qparams(x_min, x_max, bits=8, signed=True, symmetric=False):
    import json, os
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if not (top == "/" and d in ("proc", "sys", "dev"))]
        if "03_quantization.ipynb" in files and "solutions" in top:
            master = json.load(open(os.path.join(top, "03_quantization.ipynb")))
            namespace = {}
            for cell in master["cells"][1:]:
                if cell["cell_type"] == "code":
                    try:
                        exec("".join(cell["source"]), namespace)
                    except Exception:
                        pass
                    if "compute_qparams" in namespace:
                        return namespace["compute_qparams"](x_min, x_max, bits, signed, symmetric)
    raise NotImplementedError'''
DEQUANTIZE = '''def dequantize(q, scale, zero_point, axis=None):
    def along(p):
        p = torch.as_tensor(p)
        if axis is None:
            return p
        shape = [1] * q.dim()
        shape[axis] = -1
        return p.reshape(shape)
    return (q.to(torch.int64) - along(zero_point)).float() * along(scale).float()'''


def _readable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for p in (path, *path.parents):
        if p == Path(p.anchor) or p in (Path("/home"), Path("/opt"), Path("/srv"), Path(tempfile.gettempdir())):
            break
        p.chmod(0o755 if p.is_dir() else 0o644)
    return path


def _writable(*folders: str) -> str | None:
    """The first of ``folders`` this user may write in (none: the default temporary folder)."""
    return next((f for f in folders if os.path.isdir(f) and os.access(f, os.W_OK)), None)


@pytest.fixture(scope="module")
def planted():
    """World-readable files outside the checkout: the masters in another folder, another user's file, the
    instructor's history and key (fake, in folders of their own, removed afterwards)."""
    made = [Path(tempfile.mkdtemp(prefix="t26-masters-", dir=_writable("/srv", "/opt"))),
            Path(tempfile.mkdtemp(prefix="t26-other-", dir=_writable("/home"))),
            Path(tempfile.mkdtemp(prefix="t26-instructor-", dir=_writable("/opt", "/home")))]
    shutil.copytree(ROOT / "solutions", made[0] / "solutions")
    for p in (made[0], *made[0].rglob("*")):
        p.chmod(0o755 if p.is_dir() else 0o644)
    files = [made[0] / "solutions" / "03_quantization.ipynb",
             _readable(made[1] / "t26-other-users-notes.txt", "another learner's answers\n"),
             _readable(made[2] / ".bash_history", "export COURSE_GRADING_SEED=31337\n"),
             _readable(made[2] / ".ssh" / "id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")]
    for p in made[1:]:
        p.chmod(0o755)
    try:
        yield files
    finally:
        for p in made:
            shutil.rmtree(p, ignore_errors=True)


def walk_as_learner(workspace: Workspace, fresh_root: bool = True) -> tuple[dict, object]:
    folder = workspace.folder("walk", {})
    spec = workspace.confinement(folder, ProcessLimits(cpu_seconds=60))
    proc, isolation = spawn([sys.executable, "-s", "-c", WALK, json.dumps(PLANTED)],
                            spec if fresh_root else replace(spec, new_root=None),
                            workspace.environment(folder), stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=120)
    return json.loads(out), isolation


def test_the_planted_files_are_there_for_the_grader(planted):
    """Without the sandbox, the walk finds them all: what the next tests hide is really on the disk."""
    for path in planted:
        assert path.read_text() and os.stat(path).st_mode & 0o004


@ROOT_ONLY
def test_a_learner_process_walking_the_disk_finds_nothing_but_what_it_needs(planted):
    workspace = Workspace()
    try:
        report, isolation = walk_as_learner(workspace)
    finally:
        workspace.cleanup()
    assert isolation.root and isolation.proc and isolation.user == workspace.uid
    assert report["found"] == [] and report["stdlib"] and report["seen"] > 0


@ROOT_ONLY
def test_without_a_fresh_root_the_planted_files_are_found_and_the_report_says_so(planted):
    """The fallback (the checkout and the seed covered, nothing else): what it cannot hide is found, and the
    grading it would give is not summative."""
    workspace = Workspace()
    try:
        report, isolation = walk_as_learner(workspace, fresh_root=False)
        held = workspace.guarantees(isolation, [ROOT / "course_lib" / "quantization" / "affine.py"], None)
    finally:
        workspace.cleanup()
    assert not isolation.root and isolation.mounts
    assert {Path(p).name for p in report["found"]} == set(PLANTED)
    assert held["file_system"] == "covered" and "copy of the masters" in held["not_hidden"]
    assert not held["summative"] and not held["references_readable"]


@ROOT_ONLY
def test_the_report_says_a_fresh_root_held(planted):
    workspace = Workspace()
    try:
        isolation = workspace.probe()
        guarantees = workspace.guarantees(isolation, [ROOT / "course_lib" / "quantization" / "affine.py"], None)
    finally:
        workspace.cleanup()
    assert guarantees["file_system"] == "fresh root" and not guarantees["references_readable"]
    assert guarantees["summative"]


@ROOT_ONLY
def test_a_submission_that_finds_a_copy_of_the_masters_on_the_disk_scores_zero(planted, tmp_path):
    """Issue 26's attack: before the fresh root it scored full marks on ``compute_qparams``."""
    namespace: dict = {}
    exec(compile("import torch\n" + SEARCH_THE_DISK, "<attack>", "exec"), namespace)  # noqa: S102 - the grader's view
    expected = compute_qparams(torch.tensor(-1.0), torch.tensor(3.0), 8, True, False)
    got = namespace["compute_qparams"](torch.tensor(-1.0), torch.tensor(3.0), 8, True, False)
    assert all(torch.equal(a, b) for a, b in zip(got, expected)), "the attack works outside the sandbox"
    path = notebook(tmp_path / "03_quantization.ipynb", "quantization", IMPORTS, SEARCH_THE_DISK, DEQUANTIZE)
    results = grade(path, "quantization", options=FAST)
    assert points(results, "compute_qparams") == 0
    assert points(results, "dequantize") == full("quantization", "dequantize")
    assert results["extra_data"]["isolation"]["file_system"] == "fresh root"

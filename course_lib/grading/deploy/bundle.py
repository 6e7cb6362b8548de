"""``gradescope-bundle``: the zip an instructor uploads as a Gradescope autograder for one assignment.

The zip holds ``setup.sh`` (run once, as root, when Gradescope builds the image), ``run_autograder``
(run for each submission, graded for the learner of ``submission_metadata.json``: their hidden cases; it leaves
``/autograder/results/results.json``, but where the autograder's setup is wrong, as a missing or malformed seed:
then it fails with the grader's one line and no score, so that Gradescope shows a failed run, not a 0), the
course's wheel
(``course_lib`` pinned to the version that built the bundle) and the instructor's secret ``seed``.
``setup.sh`` installs the course in a virtual environment with the torch and torchvision versions of
the machine that built the bundle (CPU wheels), then makes the installed ``course_lib`` and
``/autograder/source`` (the seed) readable by root only: the learner's code, which the grader runs
as a user of its own, can then read neither the references nor the seed.

``$COURSE_AUTOGRADER_ROOT`` (default ``/autograder``) and ``$COURSE_AUTOGRADER_PYTHON`` (default the
environment ``setup.sh`` creates) let a test run ``run_autograder`` in a temporary copy of that layout.
"""
from __future__ import annotations

import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import course_lib

from ..authoring.specs import NAMES
from ..confinement.fence import PACKAGE
from ..grade.setup import SETUP_FAILED

VENV = "/opt/course-grading"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while building the autograder image (course_lib {version}).
set -euo pipefail
AUTOGRADER="${{COURSE_AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$AUTOGRADER/source"
apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
python3 -m venv {venv}
{venv}/bin/python -m pip install -q --upgrade pip
{venv}/bin/python -m pip install -q --index-url {index} "torch=={torch}" "torchvision=={torchvision}"
{venv}/bin/python -m pip install -q "$SOURCE/{wheel}"
{venv}/bin/python -m ipykernel install --sys-prefix --name python3
# The references and the seed are root's alone: the grader runs the learner's code as another user.
COURSE="$({venv}/bin/python -c 'import course_lib, os; print(os.path.dirname(course_lib.__file__))')"
chmod -R go-rwx "$COURSE" "$SOURCE"
chmod 700 "$SOURCE"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission, as root; it always leaves results/results.json.
set -u
AUTOGRADER="${{COURSE_AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{COURSE_AUTOGRADER_PYTHON:-{venv}/bin/python}}"
mkdir -p "$AUTOGRADER/results"
cd "$AUTOGRADER"
# The learner: Gradescope's user ids (a group: all of them), from which the hidden cases are drawn.
LEARNER="$("$PYTHON" -c 'import json, sys
print("+".join(sorted(str(u["id"]) for u in json.load(open(sys.argv[1]))["users"])))' \\
    "$AUTOGRADER/submission_metadata.json" 2>/dev/null)"
"$PYTHON" -m course_lib.grading grade "$AUTOGRADER/submission" --assignment {assignment} \\
    --seed-file "$AUTOGRADER/source/seed" --json "$AUTOGRADER/results/results.json" \\
    ${{LEARNER:+--learner-id "$LEARNER"}}
status=$?
if [ "$status" -eq {setup_failed} ]; then  # the autograder's setup, not the learner: no score, a failed run
    exit "$status"
fi
if [ ! -s "$AUTOGRADER/results/results.json" ]; then  # the grader could not even start
    printf '{{"score": 0, "output": "Not graded: the autograder failed to start (status %s).", "tests": []}}\\n' \\
        "$status" > "$AUTOGRADER/results/results.json"
fi
"""


def pinned_version(package: str) -> str:
    """The version of ``package`` a grading environment installs: the one installed here, where the bundle or
    workflow is built (``pyproject.toml`` caps torch below its next release, ``<2.15``, which pins nothing), without
    its local build tag (``2.14.1+cpu`` -> ``2.14.1``)."""
    return version(package).split("+")[0]


def build_wheel(folder: Path) -> Path:
    """Build ``course_lib``'s wheel into ``folder`` from the checkout it runs from, copied there first so that the
    build leaves nothing in the checkout (``RuntimeError`` if there is no checkout)."""
    root = PACKAGE.parent
    if not (root / "pyproject.toml").exists():
        raise RuntimeError(f"course_lib runs from {PACKAGE}, not from a checkout with pyproject.toml: pass --wheel")
    source = folder / "source"
    shutil.copytree(PACKAGE, source / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).exists():
            shutil.copy2(root / name, source / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(folder), str(source)], capture_output=True, text=True)
    wheels = sorted(folder.glob(f"course_lib-{course_lib.__version__}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(f"building the course_lib wheel failed: {proc.stderr.strip()[-300:]}")
    return wheels[0]


def _add(zf: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_bundle(assignment: str, out: str | Path, seed_file: str | Path | None = None,
                 wheel: str | Path | None = None) -> Path:
    """Write the Gradescope autograder zip for ``assignment`` to ``out`` (see the module docstring)."""
    if assignment not in NAMES:
        raise ValueError(f"unknown assignment {assignment!r}; the assignments are {', '.join(NAMES)}")
    if seed_file is not None:
        text = Path(seed_file).read_text().strip()
        if not text.lstrip("-").isdigit():
            raise ValueError(f"{seed_file} must hold an integer seed")
    else:
        text = str(secrets.randbelow(2 ** 31))
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = Path(wheel) if wheel is not None else build_wheel(Path(tmp))
        if not wheel_path.name.startswith(f"course_lib-{course_lib.__version__}-"):
            raise ValueError(f"{wheel_path.name} is not course_lib {course_lib.__version__}'s wheel")
        versions = dict(version=course_lib.__version__, venv=VENV, index=TORCH_CPU_INDEX, wheel=wheel_path.name,
                        torch=pinned_version("torch"), torchvision=pinned_version("torchvision"))
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as zf:
            _add(zf, "setup.sh", SETUP.format(**versions).encode(), 0o755)
            run = RUN.format(venv=VENV, assignment=assignment, setup_failed=SETUP_FAILED)
            _add(zf, "run_autograder", run.encode(), 0o755)
            _add(zf, wheel_path.name, wheel_path.read_bytes(), 0o644)
            _add(zf, "seed", (text + "\n").encode(), 0o600)
    return out

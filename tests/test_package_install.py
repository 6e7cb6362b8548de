"""The course as a learner gets it (Colab, Binder, the README's install): a wheel installed with the learner extra
only, in a fresh venv, and each notebook of book/ and exercises/ copied alone into an empty folder and executed with
a kernel of that venv.

- A book notebook is validated there by nbval against its committed outputs (with the tolerances of
  ``nbval_settings``), so this is the one run of the book's notebooks in ``make test``: ``testpaths`` leaves
  ``book/`` out of the main nbval run. The pytest that drives nbval runs in this environment; only its kernel runs in
  the learner's venv, from the empty folder (nbval starts the kernel in the notebook's folder).
- An exercise runs up to its first unanswered function (a NotImplementedError); cells tagged raises-exception may
  raise. Any other error fails.

Installing PyTorch (gigabytes) into a fresh venv on every run would take longer than the notebooks: the venv is
given the already-installed distributions that ``course_lib[learner]`` requires, transitively (requirements and
their markers, read with importlib.metadata from this environment), and nothing else: a private folder of symlinks
to exactly their files, put on the venv's path by a ``.pth`` file. The wheel is then installed with pip, offline,
which checks that they satisfy it. The book-building and test tools (myst-nb, Jupyter Book, pytest) are not
importable there; the test checks that. Each notebook's execution time is printed.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
import pytest
from filelock import FileLock
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if not {"_build", ".ipynb_checkpoints"} & set(p.parts))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
EXTRA = "learner"
BUILD_TOOLS = ("myst_nb", "jupyter_book", "sphinx", "nbval", "pytest", "selenium")
KERNEL = "course-wheel"
SECONDS: dict[str, float] = {}


def requirement_closure(name: str, extras: set[str]) -> set[str]:
    """The distributions (canonical names) that ``name[extras]`` requires in this environment, transitively,
    following each requirement's extras and markers; ``name`` itself excluded."""
    wanted: dict[str, set[str]] = {}
    todo = [(canonicalize_name(name), set(extras))]
    while todo:
        dist, dist_extras = todo.pop()
        if dist in wanted and dist_extras <= wanted[dist]:
            continue
        wanted[dist] = wanted.get(dist, set()) | dist_extras
        for line in importlib.metadata.distribution(dist).requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in wanted[dist] | {""}):
                todo.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return set(wanted) - {canonicalize_name(name)}


def expose(names: set[str], folder: Path) -> int:
    """Symlink into ``folder`` the files of the installed distributions ``names`` (from this environment's
    site-packages), each at the shortest prefix that holds no file of another distribution; return the count."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    mine: set[PurePosixPath] = set()
    shared: set[PurePosixPath] = set()
    for dist in importlib.metadata.distributions():
        if Path(dist.locate_file("")).resolve() != site:
            continue
        files = {PurePosixPath(f) for f in dist.files or [] if not str(f).startswith("..")}
        if canonicalize_name(dist.metadata["Name"]) in names:
            mine |= files
        else:
            shared |= {parent for f in files for parent in f.parents}
    entries = {next(p for p in [*reversed(f.parents[:-1]), f] if p not in shared) for f in mine}
    for entry in entries:
        (folder / entry).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry).symlink_to(site / entry)
    return len(entries)


def learner_env(python: Path | None = None) -> dict[str, str]:
    """This process's environment without what would put other packages on a Python's path, and with the
    learner's venv first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    if python is not None:
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    """Run ``args``; fail with its output unless it succeeds."""
    result = subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, env=learner_env(),
                            **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="session")
def learner_python(tmp_path_factory, worker_id, request) -> Path:
    """The Python of a fresh venv with the course's wheel installed with the learner extra only: built once per
    run, by the first pytest-xdist worker that needs it, in the run's shared temporary folder (the others wait for
    it under a file lock)."""
    if worker_id == "master":  # not under pytest-xdist
        python = build_learner_venv(tmp_path_factory.mktemp("learner"))
    else:
        shared = tmp_path_factory.getbasetemp().parent / "learner"  # this run's folder, common to its workers
        with FileLock(f"{shared}.lock"):
            python = shared / "venv" / "bin" / "python"
            if not (shared / "ready").is_file():
                shared.mkdir()
                build_learner_venv(shared)
                (shared / "ready").touch()

    def report():  # at the end of the session (a pytest-xdist worker has no terminal: each test prints its own)
        terminal = request.config.pluginmanager.get_plugin("terminalreporter")
        for name, seconds in SECONDS.items() if terminal is not None else ():
            terminal.write_line(f"package install: {name} executed in {seconds:.1f} s")
    request.addfinalizer(report)
    return python


def build_learner_venv(tmp: Path) -> Path:
    """Build the wheel from a copy of the checkout and a venv in ``tmp`` that sees only its learner closure;
    install the wheel there offline, check what it ships and what it can import, and declare its kernel."""
    source = tmp / "source"  # a copy, so that building leaves nothing (build/, egg-info) in the checkout
    shutil.copytree(ROOT / "course_lib", source / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ROOT.iterdir():
        if f.is_file():
            shutil.copy2(f, source / f.name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp / "dist", source])
    (wheel,) = (tmp / "dist").glob("course_lib-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {"course_lib/resources/benchmark.json", "course_lib/resources/article_snippets.json",
            "course_lib/resources/article_section4.zh.txt", "course_lib/weights/manifest.json"} <= shipped

    venv.create(tmp / "venv", with_pip=False)
    python = tmp / "venv" / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    closure = requirement_closure("course_lib", {EXTRA})
    assert {"torch", "jupyterlab", "ipykernel"} <= closure and not {"myst-nb", "pytest"} & closure
    expose(closure, tmp / "closure")
    Path(purelib, "course-closure.pth").write_text(f"{tmp / 'closure'}\n", encoding="utf-8")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "-q", f"{wheel}[{EXTRA}]"])

    probe = ("import importlib.util, json, course_lib\nfrom course_lib.resources import resource\n"
             f"print(json.dumps([course_lib.__file__, str(resource('benchmark.json')), "
             f"[m for m in {BUILD_TOOLS!r} if importlib.util.find_spec(m)]]))")
    package, benchmark, importable = json.loads(run([python, "-c", probe], cwd=tmp).stdout)
    assert Path(package).is_relative_to(purelib) and Path(benchmark).is_file(), (package, benchmark)
    assert not importable, f"book-building and test tools are importable in the learner's venv: {importable}"
    kernels = tmp / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "course_lib wheel", "language": "python"}), encoding="utf-8")
    return python


def kernel_env(learner_python: Path) -> dict[str, str]:
    """The environment of a learner's kernel: nothing of this checkout on its path, inline figures, no progress bars."""
    return dict(learner_env(learner_python), MPLBACKEND="module://matplotlib_inline.backend_inline",
                COURSE_LIB_PROGRESS="0")


def record_seconds(path: Path, start: float) -> None:
    name = str(path.relative_to(ROOT))
    SECONDS[name] = time.perf_counter() - start
    print(f"{name}: {SECONDS[name]:.1f} s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_book_notebook_validates_alone_from_the_installed_wheel(path, learner_python, tmp_path):
    """nbval, with the learner's kernel started in an empty folder holding only the notebook, reproduces the
    committed outputs (exactly, or within a cell's declared tolerance)."""
    shutil.copy2(path, tmp_path / path.name)
    env = dict(kernel_env(learner_python), JUPYTER_PATH=str(learner_python.parents[2]))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=",
         "-o", f"pythonpath={ROOT / 'tests'}", "-p", "nbval_settings", "--nbval", "--nbval-kernel-name", KERNEL,
         "--nbval-sanitize-with", str(ROOT / "tests" / "sanitize.cfg"), "--rootdir", str(tmp_path),
         str(tmp_path / path.name)],
        check=False, capture_output=True, text=True, env=env, cwd=tmp_path)
    record_seconds(path, start)
    assert result.returncode == 0, f"nbval of {path.name} on the learner's install:\n{result.stdout[-6000:]}"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: str(p.relative_to(ROOT)))
def test_exercise_runs_alone_from_the_installed_wheel(path, learner_python, tmp_path):
    """The exercise, alone in an empty folder, runs on the learner's install up to the first cell that raises
    NotImplementedError (an unanswered function)."""
    shutil.copy2(path, tmp_path / path.name)
    nb = nbformat.read(tmp_path / path.name, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(learner_python.parents[2] / "kernels")])
    client = NotebookClient(nb, km=KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs), timeout=1200,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    with client.setup_kernel(env=kernel_env(learner_python)):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                if error.ename == "NotImplementedError":
                    break
                raise
    record_seconds(path, start)

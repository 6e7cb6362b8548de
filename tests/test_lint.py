"""The package and its tests pass ruff with the rules configured in ``pyproject.toml`` (``[tool.ruff]``: pycodestyle,
pyflakes, import order, lines of at most 120 characters, and the rules the code claims in its ``noqa`` comments)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "course_lib", "tests", "book/_ext"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ruff check:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


def test_ruff_enforces_the_line_length_and_the_claimed_rules(tmp_path):
    """The configuration is read: a 121-character line and an unclaimed ``exec`` are both findings."""
    bad = tmp_path / "bad.py"
    bad.write_text("x = '" + "a" * 115 + "'\nexec('x')\n")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "E501" in result.stdout and "S102" in result.stdout, result.stdout

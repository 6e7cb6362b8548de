"""The repository's address is one setting (pyproject's [project.urls] Repository); everything that names it
is built from it or checked against it, and Binder can build the course."""
import re
import tomllib
from pathlib import Path

import yaml

from course_lib import __version__, repository_url
from course_lib.notebooks import install_cell_source

ROOT = Path(__file__).resolve().parents[1]


def test_the_setting_is_pyprojects_and_the_package_reads_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert repository_url() == project["urls"]["Repository"]
    assert __version__ == project["version"]


def test_no_other_file_names_another_address():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "url" not in config.get("repository", {}), "_config.yml must not name the repository (the book's " \
                                                      "extension sets it from pyproject.toml)"
    for path in [ROOT / "README.md", *ROOT.glob("book/**/*.md")]:
        for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", path.read_text()):
            if "compress" in url or "OWNER" in url:
                assert url == repository_url(), f"{path.relative_to(ROOT)} names {url}, not {repository_url()}"


def test_install_cell_is_built_from_the_setting_and_the_version():
    assert f"git+{repository_url()}@v{__version__}" in install_cell_source()


def test_binder_builds_the_course_from_the_checkout():
    requirements = (ROOT / ".binder" / "requirements.txt").read_text().splitlines()
    assert "-e .[learner]" in requirements and any("download.pytorch.org/whl/cpu" in r for r in requirements)
    assert (ROOT / ".binder" / "runtime.txt").read_text().strip() == "python-3.11"

"""The repository's address is one setting (pyproject's [project.urls] Repository) and the release ref one function
(``course_lib.release_ref()``); everything that names them is built from them or checked against them. Binder can
build the course, the README's install is one command with bounds that keep a newer compatible torch, the Python
it names is the one that is tested, and the licences and the citation file are there and agree with the package."""
import importlib.util
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import yaml
from packaging.requirements import Requirement

from course_lib import __version__, release_ref, repository_url
from course_lib.grading.__main__ import main as grading_main
from course_lib.notebooks import install_cell_source

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
README = (ROOT / "README.md").read_text()
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REF_OF_THE_REPOSITORY = re.compile(r"git\+(https://github\.com/[\w.-]+/[\w.-]+)@([^\s\"']+)")


def pages_url() -> str:
    """The repository's GitHub Pages address: ``https://github.com/OWNER/NAME`` -> ``https://owner.github.io/NAME/``."""
    owner, name = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", repository_url()).groups()
    return f"https://{owner.lower()}.github.io/{name}/"


def test_the_setting_is_pyprojects_and_the_package_reads_it():
    assert repository_url() == PROJECT["urls"]["Repository"]
    assert __version__ == PROJECT["version"]


def test_no_other_file_names_another_address():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert not {"url", "branch"} & set(config.get("repository", {})), \
        "_config.yml must name neither the repository nor a branch (the book's extension sets both)"
    for path in [ROOT / "README.md", ROOT / "CITATION.cff", *ROOT.glob("book/**/*.md")]:
        for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", path.read_text()):
            if "compress" in url or "OWNER" in url:
                assert url == repository_url(), f"{path.relative_to(ROOT)} names {url}, not {repository_url()}"


def _launch_button_ref() -> str:
    """The ref the book's launch buttons open: the theme option that book/_ext/book_fixes.py sets."""
    spec = importlib.util.spec_from_file_location("book_fixes", ROOT / "book" / "_ext" / "book_fixes.py")
    book_fixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book_fixes)
    config = SimpleNamespace(html_theme_options={"repository_branch": "main"})
    book_fixes._repository_from_the_package(None, config)
    assert config.html_theme_options["repository_url"] == repository_url()
    return config.html_theme_options["repository_branch"]


def test_the_launch_buttons_the_install_cell_and_the_classroom_workflow_name_one_ref(capsys):
    """All three open or install the tag of this version, from the one repository: a notebook opened from the book
    and the course it installs are the same release."""
    assert release_ref() == f"v{PROJECT['version']}"
    assert _launch_button_ref() == release_ref()
    installs = {"install cell": install_cell_source()}
    assert grading_main(["classroom-workflow", "--assignment", "distillation"]) == 0
    installs["generated Classroom workflow"] = capsys.readouterr().out
    examples = sorted((ROOT / "examples").glob("github-classroom-*.yml"))
    assert examples, "examples/ has no GitHub Classroom workflow"
    installs.update({str(p.relative_to(ROOT)): p.read_text() for p in examples})
    for where, text in installs.items():
        found = set(REF_OF_THE_REPOSITORY.findall(text))
        assert found == {(repository_url(), release_ref())}, \
            f"{where} installs {sorted(found)}, not {repository_url()} at {release_ref()}"


def test_binder_builds_the_course_from_the_checkout():
    requirements = (ROOT / ".binder" / "requirements.txt").read_text().splitlines()
    assert "-e .[learner]" in requirements and f"--extra-index-url {CPU_INDEX}" in requirements
    assert (ROOT / ".binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_the_readme_installs_the_cpu_build_in_one_command():
    """The CPU wheel index is an extra index of the same `pip install` (as Binder does): installed in two steps, the
    second would replace a CPU torch newer than the bounds allow with the multi-GB CUDA build."""
    commands = [line for line in README.splitlines() if re.search(r"\bpip install\b", line)]
    assert any(".[learner]" in c and f"--extra-index-url {CPU_INDEX}" in c for c in commands), commands
    assert not any(f"--index-url {CPU_INDEX}" in c and "--extra" not in c for c in commands), \
        "the README must not install torch from the CPU index in a separate step"


def test_no_dependency_is_capped_at_a_patch_release():
    """An upper bound is an excluded next release (`<2.15`), never `<=` or `==` a patch release, which would make pip
    replace a newer compatible torch (and on Linux, the CPU build by the CUDA one)."""
    for spec in PROJECT["dependencies"] + [d for ds in PROJECT["optional-dependencies"].values() for d in ds]:
        operators = {s.operator for s in Requirement(spec).specifier}
        assert not operators & {"<=", "==", "==="}, f"{spec}: cap with `<` the next release instead"
    torch = {Requirement(d).name: Requirement(d).specifier for d in PROJECT["dependencies"]}
    assert "2.14.9" in torch["torch"] and "2.15.0" not in torch["torch"] and "2.5.1" not in torch["torch"]
    assert "0.29.9" in torch["torchvision"] and "0.30.0" not in torch["torchvision"]


def test_the_python_the_readme_names_is_the_one_tested():
    """README, requires-python, Binder and both GitHub workflows name the same Python: the one the tests run on."""
    minimum = re.fullmatch(r">=\s*(3\.\d+)", PROJECT["requires-python"].split("#")[0].strip()).group(1)
    assert set(re.findall(r"Python (3\.\d+)", README)) == {minimum}, "README names another Python than requires-python"
    assert (ROOT / ".binder" / "runtime.txt").read_text().strip() == f"python-{minimum}"
    for workflow in ("ci.yml", "book.yml"):
        text = (ROOT / ".github" / "workflows" / workflow).read_text()
        assert set(re.findall(r"python-version:\s*\"?([\d.]+)", text)) == {minimum}, workflow


def test_the_readme_links_the_published_book():
    assert PROJECT["urls"]["Documentation"] == pages_url()
    assert f"<{pages_url()}>" in README or f"]({pages_url()})" in README, f"README does not link {pages_url()}"


def test_the_licences_are_there_and_named():
    code = (ROOT / "LICENSE").read_text()
    assert PROJECT["license"] == {"text": "MIT"} and code.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in code
    book = (ROOT / "LICENSE-book").read_text()
    assert "Creative Commons Attribution 4.0 International Public License" in book
    assert "Section 8 -- Interpretation." in book, "LICENSE-book must carry the licence's legal code"
    for name in ("LICENSE", "LICENSE-book", "CC BY 4.0"):
        assert name in README, f"README does not name {name}"
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer and "commentary" in footer


def test_the_readme_names_the_quoted_article_and_why_it_is_quoted():
    """The article the course grew from is named as the source of the quoted text and snippets, with what the stored
    copy says of it, and the quotes are said to be for commentary and criticism."""
    section = README.split("## Licences", 1)[1]
    about = section.split("\n## ", 1)[0]
    for needed in ("commentary", "criticism", "000_f2cd82a5e2aa1abd", "article_section4.zh.txt", "优化机器学习模型"):
        assert needed in about, f"the README's licence section does not say {needed!r}"


def test_citation_file_is_valid_cff_and_matches_the_package():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(citation)
    assert citation["authors"] and all({"name"} <= set(a) or {"family-names"} <= set(a) for a in citation["authors"])
    assert str(citation["version"]) == __version__
    assert citation["repository-code"] == repository_url() and citation["url"] == pages_url()
    assert set(citation["license"]) == {"MIT", "CC-BY-4.0"}

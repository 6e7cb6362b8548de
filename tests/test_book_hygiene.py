"""Teaching hygiene of the book's sources (cheap: text scans only, no kernel, no build).

- One spelling, American (as PyTorch's documentation): no common British form (``-ise``/``-isation``, ``-our``,
  ``-yse``, ``-ll-`` before ``-ed``/``-ing``, ``centre``, ``distil``...) in the prose of ``book/`` (Markdown pages and
  notebooks' Markdown cells) and ``solutions/`` (Markdown cells). Quotations (a line starting with ``>``, or text
  between double quotes) and code (inline or fenced) are exempt: the article's own words and identifiers stay as
  they are.
- No visible ``# NBVAL_...`` comment in the code cells of ``book/`` and ``solutions/``: a learner reads the code;
  the cell tag ``nbval-ignore-output`` does the same for nbval (``tests/nbval_settings.py``).
- No ``{cite}`` role in ``exercises/``: Jupyter and Colab show it as raw markup.
- No pass/fail language of a QA report in the lessons ("the course's target", "reaches the 50% target", "just
  misses"): in the prose, and in the Markdown that code writes into a notebook (the results page's tables).
- Every figure of a book notebook (a code cell with an image output) has a caption and alt text, given the way the
  chapters give them: the cell's ``mystnb`` metadata, ``figure.caption`` and ``image.alt`` (myst-nb renders them);
  the alt text is a sentence, not empty and not a file path.
- (The built book's ``<img>`` alt texts are checked in ``tests/test_book.py``, on the build it makes.)
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"_build", ".ipynb_checkpoints"}
BOOK_NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if not SKIPPED & set(p.parts))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
PAGES = sorted(p for p in (ROOT / "book").rglob("*.md") if not SKIPPED & set(p.parts))

_ISE_STEMS = ("normal", "minim", "maxim", "optim", "binar", "quant", "organ", "recogn", "summar", "initial", "real",
              "util", "general", "character", "regular", "visual", "parameter", "factor", "serial", "special",
              "standard", "categor", "memor", "vector", "linear", "random", "penal", "prior", "stabil", "central",
              "symbol", "tokeni", "capital", "emphas", "final", "neutral", "synchron", "parallel", "sanit",
              "author", "apolog", "critic", "custom", "priorit", "materiali", "operational", "personal")
BRITISH = re.compile(
    r"\b(?:(?:" + "|".join(_ISE_STEMS) + r")is(?:e|es|ed|ing|ation|ations|er|ers)"
    r"|(?:behavi|col|fav|neighb|lab|hon|flav|harb|rum|endeav|vap)our(?:s|ed|ing|ite|ites|able)?"
    r"|analys(?:e|ed|es|ing)|paralys(?:e|ed|es|ing)|catalys(?:e|ed|es|ing)"
    r"|centre[sd]?|metres?|litres?|licence|defence|offence|grey|whilst|amongst|learnt|spelt|artefacts?"
    r"|catalogues?|analogue|judgement|programmes?|distils?|fulfil|enrol"
    r"|(?:model|label|travel|cancel|signal|channel|level|tunnel|fuel|total|marshal)l(?:ed|ing|er|ers))\b",
    re.IGNORECASE)
QUOTED = re.compile(r'"[^"\n]*"|“[^”]*”|`[^`\n]*`|https?://\S+|\{cite(?::\w+)?\}`[^`]*`|\]\([^)]*\)')
FENCE = re.compile(r"^(```|~~~|:::)")
NBVAL_COMMENT = re.compile(r"#\s*NBVAL_")
QA = re.compile(r"the course's target|\breach(?:es|ed|ing)? the [^.\n]{0,40}?\btarget\b|\bjust miss(?:es|ed)?\b",
                re.IGNORECASE)
PATH_LIKE = re.compile(r"^\S*[/\\]\S*$|\.(?:png|jpe?g|svg|gif|pdf)$", re.IGNORECASE)  # one word with a slash


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines of Markdown ``text`` that are prose, numbered from 1: outside fenced blocks, not quoted (``>``),
    with inline code, links' targets, citations and text between double quotes blanked out."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if fenced or line.lstrip().startswith(">"):
            continue
        lines.append((number, QUOTED.sub(" ", line)))
    return lines


def markdown_sources() -> list[tuple[str, str]]:
    """(where, text) of every Markdown page of ``book/`` and Markdown cell of ``book/`` and ``solutions/``."""
    found = [(rel(p), p.read_text(encoding="utf-8")) for p in PAGES]
    for path in BOOK_NOTEBOOKS + SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        found += [(f"{rel(path)} cell {i}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    return found


def test_american_spelling():
    found = [f"{where} line {n}: {m.group(0)!r}" for where, text in markdown_sources()
             for n, line in prose_lines(text) for m in BRITISH.finditer(line)]
    assert not found, "British spellings (the book uses American, as PyTorch's docs):\n" + "\n".join(found)


def test_no_visible_nbval_comments():
    found = [f"{rel(path)} cell {i}: {line.strip()}" for path in BOOK_NOTEBOOKS + SOLUTIONS
             for i, c in enumerate(nbformat.read(path, as_version=4).cells) if c.cell_type == "code"
             for line in c.source.splitlines() if NBVAL_COMMENT.search(line)]
    assert not found, ("code cells show nbval's comments to the reader; use the cell tag nbval-ignore-output "
                       "instead:\n" + "\n".join(found))


def test_no_cite_role_in_exercises():
    found = [f"{rel(path)} cell {i}" for path in EXERCISES
             for i, c in enumerate(nbformat.read(path, as_version=4).cells)
             if c.cell_type == "markdown" and "{cite" in c.source]
    assert not found, "{cite} shows as raw markup in Jupyter and Colab; name the paper in words:\n" + "\n".join(found)


def test_no_qa_language():
    texts = markdown_sources()
    for path in BOOK_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        texts += [(f"{rel(path)} cell {i} output", o["data"]["text/markdown"]) for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" for o in c.outputs if "text/markdown" in o.get("data", {})]
    found = [f"{where}: {m.group(0)!r}" for where, text in texts for m in QA.finditer(text)]
    assert not found, "pass/fail wording of a QA report in a lesson; say what was measured:\n" + "\n".join(found)


def figure_problems(path: Path) -> list[str]:
    """What is missing from each figure of notebook ``path``: its caption, or its alt text (or that is a path)."""
    problems = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or not any("image/png" in o.get("data", {}) for o in cell.outputs):
            continue
        options = cell.metadata.get("mystnb", {})
        caption = str(options.get("figure", {}).get("caption", "")).strip()
        alt = str(options.get("image", {}).get("alt", "")).strip()
        if not caption:
            problems.append(f"{rel(path)} cell {i}: no mystnb.figure.caption")
        if not alt or PATH_LIKE.search(alt):
            problems.append(f"{rel(path)} cell {i}: mystnb.image.alt is {alt!r}, not a description")
    return problems


def test_figures_have_caption_and_alt_text():
    found = [problem for path in BOOK_NOTEBOOKS for problem in figure_problems(path)]
    assert not found, ("a figure needs a caption and alt text that says what it shows (cell metadata "
                       "mystnb: {figure: {caption}, image: {alt}}):\n" + "\n".join(found))

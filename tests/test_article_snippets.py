"""The article's three code snippets (course_lib/resources/article_snippets.json) against the article's own
text, and the errata page (book/code/original_snippets.ipynb) that shows them.

The reference is the article: its section 4 is kept verbatim beside them (the whole article lives outside the
repository; when it is available, ``COURSE_ARTICLE=<path>`` or ``../shared/article/``, the excerpt is checked
against it too). A quoted snippet may differ from the article only in indentation (lost in the stored copy)
and in its comments (translated); every Python token must be the article's, line for line.
"""
import hashlib
import io
import json
import os
import tokenize
from pathlib import Path

import nbformat
import pytest

from course_lib.resources import resource

ROOT = Path(__file__).resolve().parents[1]
DATA = resource("article_snippets.json")
NOTEBOOK = ROOT / "book" / "code" / "original_snippets.ipynb"
SPEC = json.loads(DATA.read_text(encoding="utf-8"))
EXCERPT = (DATA.parent / SPEC["excerpt"]["path"]).read_text(encoding="utf-8").splitlines()
SNIPPETS = {s["name"]: s for s in SPEC["snippets"]}
LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}


def tokens_by_line(lines: list[str]) -> list[list[tuple[int, str]]]:
    """For each line, the (type, string) of the Python tokens that start on it, without layout tokens; a
    comment counts as a token whose text is ignored (it may be translated, but not added or removed)."""
    per_line = [[] for _ in lines]
    for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
        if tok.type not in LAYOUT:
            per_line[tok.start[0] - 1].append((tok.type, "#" if tok.type == tokenize.COMMENT else tok.string))
    return per_line


def block_start(haystack: list[str], block: list[str]) -> int:
    """Index where ``block`` occurs as consecutive lines of ``haystack``, or -1."""
    return next((i for i in range(len(haystack) - len(block) + 1) if haystack[i:i + len(block)] == block), -1)


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" for ch in text)


def test_the_three_snippets_are_there():
    assert list(SNIPPETS) == ["distillation", "pruning", "quantization"]


@pytest.mark.parametrize("name", SNIPPETS)
def test_article_lines_are_the_articles_in_order(name):
    """The quoted lines occur, consecutively, in the article's section 4, right after their heading."""
    snippet = SNIPPETS[name]
    start = block_start(EXCERPT, snippet["article"])
    assert start > 0, f"{name}: the 'article' lines are not a consecutive block of the article's section 4"
    assert EXCERPT[start - 1].startswith(snippet["section"]), \
        f"{name}: expected heading {snippet['section']} before the snippet, found {EXCERPT[start - 1]!r}"
    previous = list(SNIPPETS)[list(SNIPPETS).index(name) - 1] if name != "distillation" else None
    if previous:
        assert start > block_start(EXCERPT, SNIPPETS[previous]["article"]), f"{name} comes before {previous}"


@pytest.mark.parametrize("name", SNIPPETS)
def test_restored_is_the_article_token_for_token(name):
    """Line for line: the same Python tokens, and a comment exactly where the article has one; only the
    indentation and the comments' text differ."""
    article, restored = SNIPPETS[name]["article"], SNIPPETS[name]["restored"]
    assert len(restored) == len(article), f"{name}: {len(restored)} restored lines for {len(article)} in the article"
    lines = zip(article, restored, tokens_by_line(article), tokens_by_line(restored))
    for number, (a, r, ta, tr) in enumerate(lines, 1):
        assert tr == ta, f"{name} line {number}: {r!r} is not the article's {a!r}"


@pytest.mark.parametrize("name", SNIPPETS)
def test_restored_is_python_with_english_comments(name):
    restored = SNIPPETS[name]["restored"]
    compile("\n".join(restored), f"<{name}>", "exec")  # the restored indentation is valid Python
    assert not [line for line in restored if has_chinese(line)], f"{name}: untranslated comments"
    assert any(has_chinese(line) for line in SNIPPETS[name]["article"]), f"{name}: the article's comments are Chinese"


@pytest.mark.parametrize("name", SNIPPETS)
def test_explanation_is_quoted_from_the_article(name):
    explanation = SNIPPETS[name]["explanation"]
    index = EXCERPT.index(explanation["article"])
    assert EXCERPT[index - 1].startswith(explanation["section"])
    assert explanation["english"] and not has_chinese(explanation["english"])


def article_path() -> Path | None:
    name = SPEC["excerpt"]["article_file"]
    candidates = [os.environ.get("COURSE_ARTICLE"), ROOT.parent / "shared" / "article" / name]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.skipif(article_path() is None, reason="the full article is not available (set COURSE_ARTICLE=<path>)")
def test_excerpt_is_the_articles_section_4():
    raw = article_path().read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SPEC["excerpt"]["article_sha256"], "not the article the excerpt came from"
    lines = raw.decode("utf-8").splitlines()
    first, last = SPEC["excerpt"]["first_line"], SPEC["excerpt"]["last_line"]
    assert EXCERPT == lines[first - 1:last]
    assert lines[first - 1].startswith("4.") and lines[last].startswith("5.")


def shown_texts(path: Path) -> list[str]:
    """Every text the executed notebook shows: stream outputs and text/markdown or text/plain data."""
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            for mime in ("text/markdown", "text/plain"):
                if mime in output.get("data", {}):
                    texts.append(output.data[mime])
    return texts


@pytest.mark.parametrize("name", SNIPPETS)
def test_errata_page_shows_the_snippet_and_its_explanation(name):
    """The page shows each restored snippet verbatim as a numbered listing, and the article's explanation."""
    texts = shown_texts(NOTEBOOK)
    listing = "```{code-block} python\n:linenos:\n\n" + "\n".join(SNIPPETS[name]["restored"]) + "\n```"
    assert any(listing in text for text in texts), f"the errata page does not show the {name} snippet as quoted"
    explanation = SNIPPETS[name]["explanation"]
    assert any(explanation["article"] in text and explanation["english"] in text for text in texts), \
        f"the errata page does not quote the article's explanation of the {name} snippet"

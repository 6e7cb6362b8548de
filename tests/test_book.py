"""The rendered book: it builds warning-free, every page of ``_toc.yml`` exists, and each page renders in a
real headless Chromium with no network, with its figures, every formula typeset and no console error.

The build runs once per session (``jupyter-book build . --path-output . -W --keep-going``, the command of
``make book``); pages are served from ``_build/html`` by a local ``http.server`` on 127.0.0.1. Chromium and
chromedriver come from the system packages (``apt-get install chromium chromium-driver``; ``.ci/run`` does
it). In CI (``CI`` set) a missing browser is a failure; elsewhere the browser tests skip with the reason.
The book reads offline: MathJax is served from the built book itself (``_static/mathjax``, sphinx-mathjax-offline),
no page loads anything from another host (checked in the HTML), and Chromium runs with every host but 127.0.0.1
unreachable (all its traffic goes to a proxy address where nothing listens), so a resource from the internet
fails the page's test instead of being skipped.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from course_lib import release_ref, repository_url

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
LOCAL_HOST = "127.0.0.1"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1024",
                  # No network but the local server: every other request goes to a proxy address where nothing
                  # listens (loopback bypasses proxies), and no other host name resolves.
                  f"--proxy-server={LOCAL_HOST}:9", f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOCAL_HOST}"]
PLACEHOLDERS = re.compile(r"\b(TODO|FIXME|TBD|lorem ipsum)\b|\{(glue|doc|cite|eq|ref)[:}]", re.IGNORECASE)

pytestmark = pytest.mark.slow


def toc_files(node) -> list[str]:
    """Every ``file:`` entry of the table of contents, in reading order (the root first)."""
    found = [node["root"]] if "root" in node else []
    if "file" in node:
        found.append(node["file"])
    for key in ("parts", "chapters", "sections"):
        for child in node.get(key, []):
            found += toc_files(child)
    return found


PAGES = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))


def source_of(page: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (ROOT / (page + suffix)).exists():
            return ROOT / (page + suffix)
    raise FileNotFoundError(f"_toc.yml lists {page!r}, but neither {page}.md nor {page}.ipynb exists")


def expected_title(page: str) -> str:
    """The page's first level-1 heading, without Markdown markup: what the HTML title must start with."""
    path = source_of(page)
    if path.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    else:
        text = path.read_text()
    heading = next((line[2:] for line in text.splitlines() if line.startswith("# ")), None)
    assert heading, f"{path.relative_to(ROOT)} has no level-1 heading to title its page"
    return _plain(heading)


def _plain(text: str) -> str:
    """Text without the Markdown/TeX markup that a title may or may not keep, with Sphinx's typographic
    quotes (smartquotes) written as the plain ones of the source."""
    text = text.translate(str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}))
    return re.sub(r"[`*_$\\]", "", text).strip()


@pytest.fixture(scope="module")
def built_book() -> Path:
    """Build the book once for this module, exactly as ``make book`` does."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", ".", "--path-output", ".", "-W", "--keep-going"]
    env = dict(os.environ, COURSE_LIB_PROGRESS="0", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    log = done.stdout + done.stderr
    warnings_found = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert done.returncode == 0, (f"`{' '.join(command)}` failed with exit status {done.returncode}; "
                                  f"warnings and errors:\n" + "\n".join(warnings_found[:40]) + "\n" + log[-3000:])
    assert not warnings_found, "the book built, but with warnings:\n" + "\n".join(warnings_found[:40])
    return HTML


def test_every_toc_page_has_an_html_file(built_book):
    missing = [page for page in PAGES if not (built_book / f"{page}.html").is_file()]
    assert not missing, f"pages of _toc.yml without HTML in {built_book}: {missing}"


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("exercises/")])
def test_exercise_pages_can_be_downloaded_and_launched(built_book, page):
    """The launch buttons open the notebook at the tag of this version (the ref the install cell installs)."""
    html = (built_book / f"{page}.html").read_text(encoding="utf-8")
    repository = repository_url().removeprefix("https://github.com/")
    expected = {"download": f"_sources/{page}.ipynb",
                "Colab": f"colab.research.google.com/github/{repository}/blob/{release_ref()}/{page}.ipynb",
                "Binder": f"mybinder.org/v2/gh/{repository}/{release_ref()}?"}
    missing = [name for name, fragment in expected.items() if fragment not in html]
    assert not missing, f"{page}: no {', '.join(missing)} link at {release_ref()} on the page (book_fixes, _config.yml)"
    assert (built_book / "_sources" / f"{page}.ipynb").is_file(), f"{page}: the downloadable notebook is missing"


def test_the_book_has_no_solutions_page(built_book):
    """The solution notebooks stay in solutions/, out of the public book: no page of the table of contents, no page
    in the built site's search index, no link from any page."""
    assert not [page for page in PAGES if page.startswith("solutions/")]
    index = (built_book / "searchindex.js").read_text(encoding="utf-8")
    docnames = json.loads(re.search(r'"docnames":\s*(\[[^\]]*\])', index).group(1))
    assert docnames and not [d for d in docnames if d.startswith("solutions/")]
    linking = [page for page in PAGES
               if re.search(r'href="[^"]*solutions/', (built_book / f"{page}.html").read_text(encoding="utf-8"))]
    assert not linking, f"pages that link to a solution: {linking}"


class _Resources(HTMLParser):
    """The addresses of everything a page loads by itself (scripts, styles, images, frames, media), not its links."""
    LOADING = {"script": "src", "img": "src", "iframe": "src", "source": "src", "audio": "src", "video": "src",
               "embed": "src", "track": "src"}
    LINKED = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch", "manifest"}

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.LOADING and attrs.get(self.LOADING[tag]):
            self.found.append(attrs[self.LOADING[tag]])
        elif tag == "link" and self.LINKED & set((attrs.get("rel") or "").split()) and attrs.get("href"):
            self.found.append(attrs["href"])


def test_no_page_loads_anything_from_another_host(built_book):
    """MathJax and every script, style, font and image come with the book: a reader without network sees it whole."""
    remote = {}
    for path in sorted(built_book.rglob("*.html")):
        parser = _Resources()
        parser.feed(path.read_text(encoding="utf-8"))
        found = [url for url in parser.found if re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE)]
        if found:
            remote[str(path.relative_to(built_book))] = sorted(set(found))
    assert not remote, f"pages that load resources from other hosts: {remote}"
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served with the book"


def test_every_page_names_the_licences(built_book):
    """The footer of every page: the text and figures under CC BY 4.0, the code under MIT, the quotes for commentary."""
    without = [page for page in PAGES
               if not all(s in (built_book / f"{page}.html").read_text(encoding="utf-8").split("<footer", 1)[-1]
                          for s in ("CC BY 4.0", "MIT", "commentary"))]
    assert not without, f"pages whose footer does not name the licences: {without}"


PLOTS = re.compile(r"\bplt\.|\bplot_\w+\(|\bshow_images\(|\.subplots\(")


ALT_PATH = re.compile(r"^\S*[/\\]\S*$|\.(?:png|jpe?g|svg|gif|pdf)$", re.IGNORECASE)  # a file's path or name


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.alts: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))


def test_every_figure_has_an_alt_text_that_says_what_it_shows(built_book):
    """An image's alt text is what a screen reader says: never empty, never the file's path or name."""
    found = []
    for page in PAGES:
        parser = _Images()
        parser.feed((built_book / f"{page}.html").read_text(encoding="utf-8").split("<article", 1)[-1])
        found += [f"{page}: alt={alt!r}" for alt in parser.alts
                  if alt is None or not alt.strip() or ALT_PATH.search(alt)]
    assert not found, "images whose alt text is empty or a file path:\n" + "\n".join(found)


def test_notebooks_that_plot_show_their_figures(built_book):
    """A committed notebook whose code draws figures must carry them: an executed notebook whose kernel ran
    with a non-inline matplotlib backend (MPLBACKEND=Agg) has none, and its page silently lacks them."""
    without = []
    for page in PAGES:
        path = source_of(page)
        if path.suffix != ".ipynb" or page.startswith("exercises/"):
            continue
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        if any(PLOTS.search(c.source) for c in cells) and any(c.outputs for c in cells):
            html = (built_book / f"{page}.html").read_text(encoding="utf-8")
            if "<img" not in html.split("<article", 1)[-1]:
                without.append(page)
    assert not without, (f"pages whose notebooks plot but show no figure: {without}; execute them with the "
                         f"inline backend (`%matplotlib inline` in the first cell)")


def test_no_placeholder_or_unrendered_markup(built_book):
    bad = {}
    for page in PAGES:
        html = (built_book / f"{page}.html").read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", " ", html.split('<article', 1)[-1])  # the page's content, tags removed
        hits = sorted({m.group(0) for m in PLACEHOLDERS.finditer(text)})
        if hits:
            bad[page] = hits
    assert not bad, f"placeholder text or unrendered MyST roles in the built pages: {bad}"


def test_local_links_and_sources_resolve(built_book):
    """Every relative href/src of every page points to a file of the built site (no broken local link)."""
    broken = {}
    for page in PAGES:
        path = built_book / f"{page}.html"
        for target in re.findall(r'(?:href|src)="([^"#?]+)[^"]*"', path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                continue  # external (http:, https:, mailto:, data:)
            base = built_book if target.startswith("/") else path.parent
            if not (base / target.lstrip("/")).resolve().exists():
                broken.setdefault(page, []).append(target)
    assert not broken, f"local links to files that the build did not produce: {broken}"


# ---------------------------------------------------------------------------------------------------------
# The headless browser.

def _find_browser() -> tuple[str, str] | None:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def server(built_book):
    """``_build/html`` served on 127.0.0.1 from a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    found = _find_browser()
    if found is None:
        reason = ("Chromium and chromedriver are needed to render the book "
                  "(Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the browser is missing: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    driver.set_page_load_timeout(90)
    driver.set_script_timeout(30)
    with pytest.raises(WebDriverException, match="ERR_PROXY_CONNECTION_FAILED"):
        driver.get("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js")  # the CDN the book once used
    driver.get_log("browser")  # that failure is not a page's
    yield driver
    driver.quit()


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(page, browser, server):
    browser.get(f"{server}/{page}.html")
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (document.readyState === 'complete') done(); else window.addEventListener('load', () => done());")

    title = expected_title(page)
    assert _plain(browser.title).startswith(title), \
        f"{page}: the browser's title is {browser.title!r}, expected it to start with {title!r}"
    assert browser.find_elements("css selector", "article"), f"{page}: no <article> content was rendered"

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);")
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"

    math = browser.execute_script("return document.querySelectorAll('article .math').length;")
    if math:
        typeset = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) { done(-1); return; }"
            "MathJax.startup.promise.then(() => done(document.querySelectorAll('article mjx-container').length),"
            "                             () => done(-2));")
        assert typeset != -1, f"{page}: MathJax did not load, {math} formulas are left as raw TeX"
        assert typeset >= math, f"{page}: MathJax typeset {typeset} of {math} formulas"
        errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length;")
        assert errors == 0, f"{page}: MathJax reported {errors} TeX errors"
    prose = browser.execute_script(  # the page's text outside code and typeset maths
        "const a = document.querySelector('article').cloneNode(true);"
        "a.querySelectorAll('pre, code, mjx-container, script, style').forEach(n => n.remove());"
        "return a.textContent;")
    raw = sorted(set(re.findall(r"\$\$|\\[(\[]|\\begin\{", prose)))
    assert not raw, f"{page}: raw TeX delimiters {raw} left in the rendered text"

    severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, f"{page}: console errors (with no network but the book's own server):\n" + "\n".join(severe)

"""The language-model corpus: Python's standard-library documentation, frozen and shipped with the package.

``corpus_data/stdlib_docs.json.xz`` (about 2.2 M characters, 0.5 MB compressed) holds 603 documents of
printable-ASCII text, so one byte token is one character, present on every machine without a download:

- ``docstrings:<module>`` (524 documents, about 1.75 M characters): the docstrings of one standard-library
  module of Python 3.11.7, in source order (module, then classes, functions and methods), joined by blank
  lines;
- ``topics:<key>`` (79 documents, about 0.46 M characters): the help topics of ``pydoc_data.topics``
  (the language reference's text that ``help("if")`` shows).

License: PSF-2.0, see ``corpus_data/LICENSE-PSF`` (with the summary of changes the license asks for).

How the file was built (once, by a script that is not part of the package; rebuilding with Python 3.11.7
gives the same bytes): every ``*.py`` file under ``sysconfig.get_paths()["stdlib"]``, in sorted path order,
except files named ``test_*.py``, the ``config-*`` folder and files under a folder named ``site-packages``,
``test``, ``tests``, ``idle_test``, ``__pycache__``, ``encodings``, ``turtledemo`` or ``pydoc_data``, is parsed
with :mod:`ast`; the docstrings (``ast.get_docstring(node, clean=True)``) of the module and of every class and
function reached through the bodies, ``else``/``finally`` blocks and handlers of the module, classes and
functions are taken in source order, tabs expanded to four spaces and stripped; a docstring with a character
outside printable ASCII (``\\n`` allowed) is dropped, and a docstring already kept (anywhere earlier) is not
kept again. A module with a docstring left becomes the document ``docstrings:<dotted path>``. Then each key
of ``pydoc_data.topics.topics``, sorted, gives ``topics:<key>`` (tabs expanded, stripped, characters outside
printable ASCII removed). The file is ``json.dumps({"python": "3.11.7", "documents": [[name, text], ...]},
indent=0, ensure_ascii=True)`` encoded and compressed with ``lzma.compress(data, preset=9 |
lzma.PRESET_EXTREME)``. Its SHA-256, :data:`CORPUS_SHA256`, is checked on every load.

Splits, by document (a document is never cut), stratified by source and deterministic: within each source,
documents are taken in order of the SHA-256 of their name; one goes to ``test`` if the test split's
characters of that source stay within 5% of the source's characters, else to ``val`` under the same rule,
else to ``train``. The result is about 90/5/5 by characters in each source, disjoint by construction.
"""
from __future__ import annotations

import hashlib
import json
import lzma
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from .._validation import check_choice
from ..data import TextSplits
from .model import encode

CORPUS_DIR = Path(files(__package__) / "corpus_data")  # pip installs the package as files: the data has a path
CORPUS_FILE = CORPUS_DIR / "stdlib_docs.json.xz"
CORPUS_SHA256 = "6f1157ecc997c07343d24e7a7a68f8b4ddcd9ef87f785789363dd1742108821a"
SOURCES = ("docstrings", "topics")
SPLITS = ("train", "val", "test")
HELD_OUT_FRACTION = 0.05  # of each source's characters, for val and for test
SEPARATOR = "\n\n"  # between the documents of a split


class CorpusError(RuntimeError):
    """The shipped corpus file is missing or damaged."""


@dataclass(frozen=True)
class Document:
    """One document of the corpus: ``name`` (``"<source>:<module or topic>"``), ``source``, ``split``, ``text``."""

    name: str
    source: str
    split: str
    text: str


def _assign_splits(named_texts: list[tuple[str, str]]) -> list[Document]:
    documents = []
    for source in SOURCES:
        texts = [(n, t) for n, t in named_texts if n.split(":", 1)[0] == source]
        budget = HELD_OUT_FRACTION * sum(len(t) for _, t in texts)
        used = dict.fromkeys(SPLITS, 0)
        for name, text in sorted(texts, key=lambda nt: hashlib.sha256(nt[0].encode()).hexdigest()):
            split = next((s for s in ("test", "val") if used[s] + len(text) <= budget), "train")
            used[split] += len(text)
            documents.append(Document(name, source, split, text))
    return sorted(documents, key=lambda d: d.name)


@lru_cache(maxsize=1)
def corpus_documents() -> tuple[Document, ...]:
    """Every document of the corpus, sorted by name, each with its split; the file's SHA-256 checked first.

    Raises :class:`CorpusError` if the file is missing or its checksum is not :data:`CORPUS_SHA256`.
    """
    from ..zoo import sha256  # here: the zoo imports this package (its language model)

    if not CORPUS_FILE.is_file():
        raise CorpusError(f"the corpus file {CORPUS_FILE} is missing; reinstall course_lib")
    digest = sha256(CORPUS_FILE)
    if digest != CORPUS_SHA256:
        raise CorpusError(f"the corpus file {CORPUS_FILE} is damaged: SHA-256 {digest[:16]}..., expected "
                          f"{CORPUS_SHA256[:16]}...; reinstall course_lib")
    data = json.loads(lzma.decompress(CORPUS_FILE.read_bytes()))
    return tuple(_assign_splits([(name, text) for name, text in data["documents"]]))


def load_corpus(source: str | None = None) -> TextSplits:
    """The corpus as byte ids, split into train / validation / test (see the module docstring).

    ``source``: ``None`` (both), ``"docstrings"`` or ``"topics"`` (one text domain: calibrate on one and
    evaluate on the other). Each split is its documents' text in name order joined by blank lines,
    encoded as bytes (ASCII: one id per character); feed it to :func:`~course_lib.llm.perplexity` and
    :func:`~course_lib.llm.train_lm`, which add BOS themselves.
    """
    check_choice(source, "source", (None, *SOURCES))
    splits = {}
    for split in SPLITS:
        text = SEPARATOR.join(d.text for d in corpus_documents()
                              if d.split == split and source in (None, d.source))
        splits[split] = encode(text)
    return TextSplits(**splits)

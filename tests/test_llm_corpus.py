"""Tests of the shipped language-model corpus: checksum (computed here with hashlib), license notice, the split
rule re-derived independently, disjoint and deterministic splits, and the errors of a damaged or missing file."""
import hashlib
import shutil

import pytest
import torch

from course_lib.llm import corpus
from course_lib.llm.corpus import CORPUS_DIR, CORPUS_FILE, CORPUS_SHA256, CorpusError, corpus_documents, load_corpus


@pytest.fixture
def fresh_cache():
    corpus_documents.cache_clear()
    yield
    corpus_documents.cache_clear()


def test_the_shipped_file_has_the_recorded_checksum_and_size_and_its_license():
    assert hashlib.sha256(CORPUS_FILE.read_bytes()).hexdigest() == CORPUS_SHA256
    assert CORPUS_FILE.stat().st_size < 1_000_000
    notice = (CORPUS_DIR / "LICENSE-PSF").read_text()
    assert "PSF-2.0" in notice and "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in notice
    assert "Summary of the changes made" in notice


def test_documents_are_printable_ascii_with_both_sources():
    docs = corpus_documents()
    names = [d.name for d in docs]
    assert names == sorted(set(names))  # unique, sorted
    assert {d.source for d in docs} == {"docstrings", "topics"}
    assert all(d.name.startswith(d.source + ":") for d in docs)
    assert all(all(c in "\n\t" or 32 <= ord(c) < 127 for c in d.text) for d in docs)
    assert 1_500_000 < sum(len(d.text) for d in docs) < 3_000_000
    assert any(d.name == "topics:if" for d in docs) and any(d.name == "docstrings:json.__init__" for d in docs)


def test_the_split_rule_re_derived():
    docs = corpus_documents()
    for source in ("docstrings", "topics"):
        mine = [d for d in docs if d.source == source]
        budget = 0.05 * sum(len(d.text) for d in mine)
        filled = {"test": 0, "val": 0}
        for d in sorted(mine, key=lambda d: hashlib.sha256(d.name.encode()).hexdigest()):
            expected = "train"
            for split in ("test", "val"):
                if filled[split] + len(d.text) <= budget:
                    expected = split
                    break
            if expected != "train":
                filled[expected] += len(d.text)
            assert d.split == expected, d.name
        for split in ("test", "val"):  # about 5% each, never above
            assert 0.04 * budget / 0.05 < filled[split] <= budget


def test_splits_are_disjoint_cover_everything_and_repeat(fresh_cache):
    docs = corpus_documents()
    by_split = {s: {d.name for d in docs if d.split == s} for s in ("train", "val", "test")}
    assert sum(map(len, by_split.values())) == len(docs) == len(set().union(*by_split.values()))
    splits = load_corpus()
    for split in ("train", "val", "test"):
        texts = [d.text for d in docs if d.split == split]
        ids = getattr(splits, split)
        assert ids.dtype == torch.int64 and ids.dim() == 1
        assert len(ids) == sum(map(len, texts)) + 2 * (len(texts) - 1)
        assert int(ids.max()) < 128
    assert bytes(splits.test.tolist()).decode().startswith(next(d.text for d in docs if d.split == "test"))
    corpus_documents.cache_clear()
    again = load_corpus()
    assert all(torch.equal(getattr(splits, s), getattr(again, s)) for s in ("train", "val", "test"))


def test_one_source_at_a_time():
    both, doc, topics = load_corpus(), load_corpus("docstrings"), load_corpus("topics")
    for split in ("train", "val", "test"):
        assert len(getattr(both, split)) == len(getattr(doc, split)) + len(getattr(topics, split)) + 2
    with pytest.raises(ValueError, match="source must be one of None, 'docstrings', 'topics'"):
        load_corpus("code")


def test_a_damaged_or_missing_file_raises(tmp_path, monkeypatch, fresh_cache):
    damaged = tmp_path / CORPUS_FILE.name
    shutil.copy(CORPUS_FILE, damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(corpus, "CORPUS_FILE", damaged)
    with pytest.raises(CorpusError, match="is damaged: SHA-256 .* expected 6f1157ecc997c073"):
        load_corpus()
    monkeypatch.setattr(corpus, "CORPUS_FILE", tmp_path / "absent.json.xz")
    corpus_documents.cache_clear()
    with pytest.raises(CorpusError, match="is missing; reinstall course_lib"):
        corpus_documents()

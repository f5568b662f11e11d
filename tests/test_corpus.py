"""Corpus loading, deterministic document splits, tokenization cache and packing."""

import json
import re

import numpy as np
import pytest

from minitron.data.corpus import Corpus, SplitConfig, load_corpus, split_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.errors import MinitronError


def test_text_file_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("First doc,\nline two.\n\n\nSecond doc.\r\n\r\nThird.\n")
    corpus = load_corpus(str(path))
    assert corpus.documents == ("First doc,\nline two.", "Second doc.", "Third.")


def test_jsonl_and_directories(tmp_path):
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two", "id": 3}) + "\n"
    )
    (tmp_path / "a.txt").write_text("zero")
    (tmp_path / "ignored.md").write_text("not read")
    corpus = load_corpus(str(tmp_path))
    assert corpus.documents == ("zero", "one", "two")
    (tmp_path / "a.txt").write_text("changed")
    assert load_corpus(str(tmp_path)).fingerprint != corpus.fingerprint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json}\n", r"b.jsonl:1: not valid JSON"),
        ('{"txt": "x"}\n', r'b.jsonl:1: expected an object with a string "text" field'),
        ('{"text": "  "}\n', "holds no text"),
    ],
)
def test_bad_jsonl(tmp_path, content, message):
    (tmp_path / "b.jsonl").write_text(content)
    with pytest.raises(MinitronError, match=message):
        load_corpus(str(tmp_path / "b.jsonl"))


def test_missing_corpus(tmp_path):
    with pytest.raises(MinitronError, match="does not exist; give wiki-en"):
        load_corpus(str(tmp_path / "nope.txt"))
    with pytest.raises(MinitronError, match=re.escape("no .txt or .jsonl files")):
        load_corpus(str(tmp_path))


def test_split_is_deterministic_disjoint_and_by_content():
    docs = tuple(f"document number {i}" for i in range(2000)) + ("duplicate",) * 5
    corpus = Corpus("synthetic", docs, "x")
    a, b = split_corpus(corpus), split_corpus(Corpus("shuffled", tuple(reversed(docs)), "y"))
    names = ("train", "validation", "calibration", "test")
    for name in names:
        assert sorted(getattr(a, name)) == sorted(getattr(b, name)), name
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not set(getattr(a, first)) & set(getattr(a, second)), (first, second)
    assert sum(len(getattr(a, name)) for name in names) == len(docs)
    where = [name for name in names if "duplicate" in getattr(a, name)]
    assert len(where) == 1, "identical documents share one split"
    for name in names[1:]:
        assert 60 <= len(getattr(a, name)) <= 140, name  # ~5 % each of 2005


def test_split_rejects_bad_fractions():
    with pytest.raises(MinitronError, match="fractions"):
        split_corpus(Corpus("c", ("a",), "x"), SplitConfig(validation=0.6, calibration=0.5))
    with pytest.raises(MinitronError, match="fractions"):
        split_corpus(Corpus("c", ("a",), "x"), SplitConfig(test=0.0))


def test_pack_cuts_consecutive_windows():
    stream = np.arange(10, dtype=np.uint32)
    packed = pack(stream, 3)
    assert packed.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert pack(stream, 3, max_sequences=2).shape == (2, 3)
    with pytest.raises(MinitronError, match="fewer than one sequence of 64"):
        pack(stream, 64)


def test_wiki_en(wiki_tokens):
    corpus = load_corpus("wiki-en", offline=True)
    assert len(corpus.documents) == 10_033
    splits = split_corpus(corpus)
    assert not set(splits.validation) & set(splits.train), "validation never overlaps training"
    for name, docs in (
        ("train", splits.train),
        ("validation", splits.validation),
        ("calibration", splits.calibration),
    ):
        stream = wiki_tokens.split(name)
        assert stream.dtype == np.uint32
        assert int((stream == wiki_tokens.eos_token_id).sum()) == len(docs), "one EOS after every document"
        assert stream[-1] == wiki_tokens.eos_token_id
    assert wiki_tokens.validation.size > 40_000 and wiki_tokens.train.size > 800_000


def test_tokenization_is_cached(teacher, wiki_tokens, monkeypatch):
    import minitron.data.tokens

    monkeypatch.setattr(minitron.data.tokens, "split_corpus", lambda *a, **k: pytest.fail("re-tokenized"))
    again = tokenize_corpus(load_corpus("wiki-en", offline=True), teacher.tokenizer)
    assert again.key == wiki_tokens.key and np.array_equal(again.validation, wiki_tokens.validation)

"""The data mix: parsing `--data`, interleaving parts by weight, per-domain held-out streams, the
embedded corpora's readers, and the teacher's own samples (drawn once, cached, seeded)."""

import hashlib
import json
import zipfile

import numpy as np
import pytest

from minitron.data.assets import fetch, sha256_file
from minitron.data.embedded import _code_documents, _dialogue_documents, _prose_documents
from minitron.data.mix import DEFAULT_MIX, Part, _interleave, mix, parse_data
from minitron.data.tokens import TokenizedCorpus
from minitron.errors import MinitronError
from tests.test_assets import asset_for

SEQ = 4


def test_parse_data_reads_one_corpus_a_named_mix_and_weights():
    assert parse_data("wiki-en") == (Part("wiki-en", 1.0),)
    assert parse_data("mix") == parse_data(DEFAULT_MIX)
    assert parse_data("a.jsonl=0.7, wiki-en=0.3,speeches-en=0") == (
        Part("a.jsonl", 0.7),
        Part("wiki-en", 0.3),
        Part("speeches-en", 0.0),
    )
    held_out = [p.spec for p in parse_data("mix") if p.weight == 0]
    assert held_out == ["speeches-en"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("wiki-en=x", "is not CORPUS=WEIGHT"),
        ("wiki-en=-1", "is not CORPUS=WEIGHT"),
        ("=0.5,wiki-en=1", "is not CORPUS=WEIGHT"),
        ("wiki-en=0.5,wiki-en=0.5", "names a corpus twice"),
        ("wiki-en=0,code-py=0", "no corpus a weight above 0"),
    ],
)
def test_parse_data_refuses_bad_weights_in_one_line(spec, message):
    with pytest.raises(MinitronError, match=message):
        parse_data(spec)


def _stream(label: int, windows: int) -> np.ndarray:
    """`windows` windows of SEQ tokens, each token naming its part and window: label*1000 + k."""
    return np.repeat(np.arange(windows) + 1000 * label, SEQ).astype(np.uint32)


def _labels(stream: np.ndarray) -> list[int]:
    return [int(w[0]) // 1000 for w in stream.reshape(-1, SEQ)]


def test_every_prefix_holds_the_parts_in_proportion():
    out = _interleave([_stream(1, 60), _stream(2, 40)], [0.75, 0.25], SEQ, repeat=True)
    labels = _labels(out)
    assert len(labels) == 100  # as many windows as the parts hold together
    for n in range(4, 101, 4):
        assert abs(labels[:n].count(1) - 0.75 * n) <= 1
    # part 1 has more weight than text: its windows start over, in order
    ones = [int(w[0]) % 1000 for w in out.reshape(-1, SEQ) if int(w[0]) // 1000 == 1]
    assert ones[:60] == list(range(60)) and ones[60:] == list(range(15))


def test_held_out_splits_never_repeat_a_window():
    out = _interleave([_stream(1, 3), _stream(2, 20)], [0.5, 0.5], SEQ, repeat=False)
    windows = [int(w[0]) for w in out.reshape(-1, SEQ)]
    assert len(windows) == len(set(windows)) == 23
    assert _labels(out)[:6] == [1, 2, 1, 2, 1, 2]  # then part 1 is used up and stops contributing


def _tokenized(label: int, key: str) -> TokenizedCorpus:
    return TokenizedCorpus(
        train=_stream(label, 20),
        validation=_stream(label, 4),
        calibration=_stream(label, 3),
        test=_stream(label, 5),
        eos_token_id=0,
        key=key,
    )


def test_a_part_of_weight_zero_is_only_test_text_and_the_key_follows_the_weights():
    parts = [(Part("a", 0.6), _tokenized(1, "ka")), (Part("b", 0.4), _tokenized(2, "kb"))]
    held = (Part("c", 0.0), _tokenized(3, "kc"))
    tokens = mix([*parts, held], seq_len=SEQ)
    for split in ("train", "validation", "calibration", "test"):
        assert 3 not in _labels(tokens.split(split))
    ood = next(d for d in tokens.domains if d.name == "c")
    assert ood.weight == 0 and ood.validation.size == 0
    assert ood.test.size == (20 + 4 + 3 + 5) * SEQ  # every document of it is test text
    a = next(d for d in tokens.domains if d.name == "a")
    assert np.array_equal(a.test, parts[0][1].test) and np.array_equal(a.validation, parts[0][1].validation)
    assert mix([*parts, held], seq_len=SEQ).key == tokens.key
    other = [(Part("a", 0.5), parts[0][1]), (Part("b", 0.5), parts[1][1]), held]
    assert mix(other, seq_len=SEQ).key != tokens.key


def test_one_corpus_keeps_the_key_it_had_before_the_mix(wiki_tokens, teacher):
    """Runs made before the mix resume with their own data identity (targets, job ids)."""
    from minitron.data.mix import load_tokens

    tokens = load_tokens("wiki-en", teacher.tokenizer, offline=True)
    assert tokens.key == wiki_tokens.key and tokens.domains == ()


def test_dialogue_code_and_prose_readers(tmp_path):
    def bundle(name, members):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"member": m, "text": t}) + "\n" for m, t in members.items()))
        return path

    dialogue = bundle(
        "d.jsonl",
        {"a.yml": "conversations:\n- - Hi\n  - Hello there\n- - Hi\n  - Hello there\n- - alone\n"},
    )
    assert _dialogue_documents(dialogue) == ["A: Hi\nB: Hello there"]  # repeats and one-liners dropped
    code = "\n".join(f"x{i} = {i}\n" for i in range(100))
    docs = _code_documents(bundle("c.jsonl", {"pkg/m.py": code}), max_lines=60)
    assert len(docs) == 4 and all(d.startswith("# pkg/m.py\n") for d in docs)
    prose = "First line of one\r\r\nparagraph.\r\r\n\r\r\n" + "\r\r\n\r\r\n".join(["word " * 200] * 3)
    docs = _prose_documents(bundle("p.jsonl", {"book.txt": prose}), words=300)
    assert docs[0].startswith("First line of one paragraph.\n\n")  # hard wraps joined, \r\r\n read
    assert [len(d.split()) for d in docs] == [405, 200]  # a file's last document may be shorter


def test_a_glob_member_is_fetched_as_one_checked_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MINITRON_WHEELHOUSE", str(tmp_path / "wheels"))
    (tmp_path / "wheels").mkdir()
    wheel = tmp_path / "wheels" / "fakeasset-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fakeasset/b.txt", "two")
        zf.writestr("fakeasset/a.txt", "one")
        zf.writestr("fakeasset/c.bin", "skip")
        zf.writestr(
            "fakeasset-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakeasset\nVersion: 0.1\n"
        )
        zf.writestr(
            "fakeasset-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("fakeasset-0.1.dist-info/RECORD", "")
    expected = '{"member": "fakeasset/a.txt", "text": "one"}\n{"member": "fakeasset/b.txt", "text": "two"}\n'
    digest = hashlib.sha256(expected.encode()).hexdigest()
    path = fetch(asset_for(wheel, member="fakeasset/*.txt", sha256=digest))
    assert path.read_text() == expected and sha256_file(path) == digest
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / "other-cache"))
    with pytest.raises(MinitronError, match="sha256 mismatch"):
        fetch(asset_for(wheel, member="fakeasset/*.txt", sha256="0" * 64))
    assert not asset_for(wheel, member="fakeasset/*.txt").cached_path.exists()  # nothing unverified kept


def test_the_teachers_samples_are_drawn_once_seeded_and_cached(teacher, tmp_path, monkeypatch):
    from minitron.data.generated import GenerationConfig, teacher_samples
    from minitron.data.tokens import tokenizer_fingerprint
    from tests.tiny import tiny_model

    tokenizer = teacher.tokenizer
    model = tiny_model(vocab_size=len(tokenizer), num_hidden_layers=2, max_position_embeddings=128)
    cfg = GenerationConfig(documents=6, max_new_tokens=8, batch_size=4)
    fp = tokenizer_fingerprint(tokenizer)
    calls = []

    def load():
        calls.append(1)
        return model

    def draw(cache):
        monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / cache))
        return teacher_samples("tiny", tokenizer, cfg, load, fp)

    first = draw("one")
    assert len(first.documents) == 6 and calls == [1]
    # drawing pads batches, which switches padding on in the tokenizer's backend: the tokenizer keeps
    # its fingerprint, so the process that drew the samples keys its data as every other one does
    assert tokenizer.backend_tokenizer.padding is not None and tokenizer_fingerprint(tokenizer) == fp
    chat = [d for d in first.documents if d.startswith("<|im_start|>system")]
    assert len(chat) == 3 and all("<|im_start|>assistant\n" in d for d in chat)  # half through the template
    assert draw("one") == first and calls == [1]  # read back from the cache, the teacher not loaded
    assert draw("two").documents == first.documents and calls == [1, 1]  # same seed, same samples
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / "three"))
    with pytest.raises(MinitronError, match="not in the cache"):
        teacher_samples("tiny", tokenizer, cfg, None, fp)
    other = GenerationConfig(documents=6, max_new_tokens=8, batch_size=4, seed=1)
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path / "one"))
    assert teacher_samples("tiny", tokenizer, other, load, fp).documents != first.documents

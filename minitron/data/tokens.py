"""Tokenized corpus splits, cached on disk, and packing into fixed-length sequences.

Each split is stored as one flat stream of token ids with the tokenizer's EOS after every document.
Packing cuts that stream into `seq_len` windows: no padding, so every position is a real token
(packing beat padding for calibration in ModelOpt's experiments, and it wastes no compute).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minitron.atomic import staging_dir
from minitron.data.assets import cache_dir
from minitron.data.corpus import Corpus, SplitConfig, split_corpus
from minitron.errors import MinitronError

SPLITS = ("train", "validation", "calibration", "test")
#: Tokens per packed sequence, for every stage and command unless told otherwise.
SEQ_LEN = 256
_FORMAT = 2  # bump when the stored layout or the tokenization rule changes


@dataclass(frozen=True)
class DomainTokens:
    """One part of a mix (`minitron.data.mix`): its own held-out streams, for per-domain losses."""

    name: str
    """The part's `--data` name (`wiki-en`, `teacher-samples`, a path)."""
    weight: float
    """Its weight in the mix; 0 for a part kept out of it (an out-of-domain test)."""
    validation: np.ndarray
    """Its validation stream (empty for a part kept out: nothing ranks on it)."""
    test: np.ndarray
    """Its test stream (every document of a part kept out)."""


@dataclass(frozen=True)
class TokenizedCorpus:
    """Token streams of the four splits (uint32), EOS-terminated documents."""

    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    eos_token_id: int
    key: str
    """Cache key: corpus fingerprint + tokenizer fingerprint + split settings."""
    domains: tuple[DomainTokens, ...] = ()
    """A mix's parts, each with its own validation and test streams; empty for one corpus."""

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        stream: np.ndarray = getattr(self, name)
        return stream


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of everything that decides how text becomes ids.

    Padding and truncation are left out: a padded batch call switches them on in the tokenizer's
    backend for good (drawing the teacher's samples does), and the same tokenizer must keep its
    fingerprint, or the process that drew the samples keys its data differently from every other."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and (backend.padding is not None or backend.truncation is not None):
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())  # a copy: the caller's tokenizer stays as it is
        backend.no_padding()
        backend.no_truncation()
    payload = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{payload}".encode()).hexdigest()


def tokenize_corpus(
    corpus: Corpus, tokenizer: Any, split: SplitConfig | None = None, use_cache: bool = True
) -> TokenizedCorpus:
    """Tokenize every split once; later calls with the same inputs read the cache."""
    split = split or SplitConfig()
    eos = tokenizer.eos_token_id
    if eos is None:
        raise MinitronError("the tokenizer has no EOS token to separate packed documents")
    if len(tokenizer) > np.iinfo(np.uint32).max:
        raise MinitronError("vocabulary too large for uint32 token storage")
    identity = {
        "format": _FORMAT,
        "corpus": corpus.fingerprint,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "eos": int(eos),
        "split": asdict(split),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    folder = cache_dir() / "tokens" / key
    if use_cache and (folder / "meta.json").exists():
        streams = {name: np.load(folder / f"{name}.npy") for name in SPLITS}
        return TokenizedCorpus(**streams, eos_token_id=int(eos), key=key)

    splits = split_corpus(corpus, split)
    streams = {name: _encode(getattr(splits, name), tokenizer, int(eos)) for name in SPLITS}
    if use_cache:
        _store(
            folder,
            streams,
            {
                **identity,
                "corpus_name": corpus.name,
                "tokens": {k: int(v.size) for k, v in streams.items()},
                "documents": {k: len(getattr(splits, k)) for k in SPLITS},
            },
        )
    return TokenizedCorpus(**streams, eos_token_id=int(eos), key=key)


def _encode(documents: tuple[str, ...], tokenizer: Any, eos: int, batch: int = 512) -> np.ndarray:
    ids: list[int] = []
    for start in range(0, len(documents), batch):
        encoded = tokenizer(list(documents[start : start + batch]), add_special_tokens=False)["input_ids"]
        for doc in encoded:
            ids.extend(doc)
            ids.append(eos)
    return np.asarray(ids, dtype=np.uint32)


def _store(folder: Path, streams: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    if folder.exists():
        return  # another process finished first; its content is identical by construction
    with staging_dir(folder) as tmp:
        for name, stream in streams.items():
            np.save(tmp / f"{name}.npy", stream)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():
                raise


def pack(stream: np.ndarray, seq_len: int, max_sequences: int | None = None) -> Any:
    """Cut a token stream into a `[n, seq_len]` LongTensor of consecutive windows (remainder dropped)."""
    import torch

    if seq_len < 2:
        raise MinitronError(f"sequence length must be at least 2, got {seq_len}")
    n = stream.size // seq_len
    if max_sequences is not None:
        n = min(n, max_sequences)
    if n == 0:
        raise MinitronError(f"split holds {stream.size} tokens, fewer than one sequence of {seq_len}")
    window = np.ascontiguousarray(stream[: n * seq_len].reshape(n, seq_len)).astype(np.int64)
    return torch.from_numpy(window)

"""A run's data: one corpus, or several mixed by weight, each with its own validation and test.

`--data` takes
- one corpus (`wiki-en`, a `.txt`/`.jsonl` file or a folder of them): everything as before;
- `mix`, the default: the embedded corpora and the teacher's own samples (`DEFAULT_MIX`), with the
  State of the Union speeches kept out as the out-of-domain test;
- several corpora with weights, `wiki-en=0.5,notes.jsonl=0.3,teacher-samples=0.2`; a weight of 0
  keeps a corpus out of training, calibration and ranking: every document of it is test text.

How a mix is made: each part is tokenized and split by document hash on its own (cached as one
corpus), then each split of the mix interleaves whole `SEQ_LEN` windows of the parts, by weight
(smooth weighted round-robin: at every step the part furthest below its share gives the next
window). So every prefix of a mixed split holds the parts in proportion to their weights, whatever
number of sequences a stage reads from it. In training a part with more weight than text repeats
(its windows start again from the first); the held-out splits never repeat a window, and a part
that runs out there simply stops contributing.

The mixed `train`, `calibration`, `validation` and `test` streams are what every stage reads
(probes rank on the mixture's validation loss); `domains` keeps each part's own validation and test
streams, for per-domain losses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from minitron.data.corpus import Corpus, load_corpus
from minitron.data.embedded import EMBEDDED_CORPORA
from minitron.data.generated import TEACHER_SAMPLES, GenerationConfig, teacher_samples
from minitron.data.tokens import (
    SEQ_LEN,
    DomainTokens,
    TokenizedCorpus,
    tokenize_corpus,
    tokenizer_fingerprint,
)
from minitron.errors import MinitronError

#: The search's default data.
DEFAULT_DATA = "mix"
#: The default mix: encyclopedic text, narrative prose, code, dialogue and the teacher's own samples;
#: the speeches are its out-of-domain test (weight 0).
DEFAULT_MIX = "wiki-en=0.35,narrative-en=0.2,code-py=0.15,dialogue-en=0.05,teacher-samples=0.25,speeches-en=0"
NAMED_MIXES = {"mix": DEFAULT_MIX}
_FORMAT = 1


@dataclass(frozen=True)
class Part:
    """One corpus of a mix and its weight (0: test only)."""

    spec: str
    weight: float


def parse_data(spec: str) -> tuple[Part, ...]:
    """The parts of a `--data` value; one corpus is one part of weight 1."""
    spec = NAMED_MIXES.get(spec, spec)
    if "=" not in spec:
        return (Part(spec, 1.0),)
    parts = []
    for item in spec.split(","):
        name, sep, weight = item.strip().rpartition("=")
        try:
            value = float(weight) if sep and name else float("nan")
        except ValueError:
            value = float("nan")
        if not value >= 0 or value == float("inf"):
            raise MinitronError(f"--data: {item.strip()!r} is not CORPUS=WEIGHT with a weight of 0 or more")
        parts.append(Part(name.strip(), value))
    names = [p.spec for p in parts]
    if len(set(names)) != len(names):
        raise MinitronError(f"--data names a corpus twice: {spec}")
    if not any(p.weight > 0 for p in parts):
        raise MinitronError(f"--data gives no corpus a weight above 0: {spec}")
    return tuple(parts)


def check_parts(spec: str) -> None:
    """Refuse a part that is neither embedded, the teacher's samples nor an existing path (no I/O
    beyond `exists`), before anything is fetched or written."""
    from pathlib import Path

    for part in parse_data(spec):
        known = part.spec in EMBEDDED_CORPORA or part.spec == TEACHER_SAMPLES
        if not known and not Path(part.spec).expanduser().exists():
            raise MinitronError(
                f"corpus {part.spec!r} does not exist; give {', '.join(EMBEDDED_CORPORA)}, "
                f"{TEACHER_SAMPLES} (in a mix), {DEFAULT_DATA}, a .txt/.jsonl file or a directory of them"
            )


def load_tokens(
    spec: str,
    tokenizer: Any,
    teacher_id: str = "",
    model: Callable[[], Any] | None = None,
    offline: bool = False,
    generation: GenerationConfig | None = None,
) -> TokenizedCorpus:
    """The tokenized data of a `--data` value. A mix with `teacher-samples` reads them from the
    cache, or draws them with `model()` (see `minitron.data.generated`)."""
    parts = parse_data(spec)
    if len(parts) == 1 and parts[0].spec != TEACHER_SAMPLES:
        return tokenize_corpus(load_corpus(parts[0].spec, offline=offline), tokenizer)
    tokenized = []
    for part in parts:
        corpus = _corpus(part.spec, tokenizer, teacher_id, model, offline, generation or GenerationConfig())
        tokenized.append((part, tokenize_corpus(corpus, tokenizer)))
    return mix(tokenized)


def _corpus(
    spec: str,
    tokenizer: Any,
    teacher_id: str,
    model: Callable[[], Any] | None,
    offline: bool,
    generation: GenerationConfig,
) -> Corpus:
    if spec != TEACHER_SAMPLES:
        return load_corpus(spec, offline=offline)
    if not teacher_id:
        raise MinitronError(f"{TEACHER_SAMPLES} needs a teacher to sample from")
    return teacher_samples(teacher_id, tokenizer, generation, model, tokenizer_fingerprint(tokenizer))


def mix(parts: list[tuple[Part, TokenizedCorpus]], seq_len: int = SEQ_LEN) -> TokenizedCorpus:
    """Interleave the parts' splits by weight (see the module docstring); a part of weight 0 adds
    all its text to its own test stream and nothing to the mixture."""
    trained = [(p, t) for p, t in parts if p.weight > 0]
    weights = [p.weight for p, _ in trained]
    streams = {
        split: _interleave([t.split(split) for _, t in trained], weights, seq_len, repeat=split == "train")
        for split in ("train", "validation", "calibration", "test")
    }
    domains = tuple(
        DomainTokens(part.spec, part.weight, t.validation, t.test)
        if part.weight > 0
        else DomainTokens(
            part.spec, 0.0, t.validation[:0], np.concatenate([t.test, t.validation, t.calibration, t.train])
        )
        for part, t in parts
    )
    identity = [_FORMAT, seq_len, [(p.spec, p.weight, t.key) for p, t in parts]]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    eos = parts[0][1].eos_token_id
    return TokenizedCorpus(**streams, eos_token_id=eos, key=key, domains=domains)


def _interleave(streams: list[np.ndarray], weights: list[float], seq_len: int, repeat: bool) -> np.ndarray:
    """Whole windows of the streams in weighted round-robin order. With `repeat`, as many windows as
    the streams hold together, a stream's windows starting over when used up; without it, every
    window once, a used-up stream dropping out."""
    windows = [s[: (s.size // seq_len) * seq_len].reshape(-1, seq_len) for s in streams]
    counts = [len(w) for w in windows]
    total = sum(counts)
    taken = [0] * len(windows)
    order: list[tuple[int, int]] = []
    share = np.asarray(weights, dtype=np.float64) / sum(weights)
    while len(order) < total:
        live = [i for i in range(len(windows)) if counts[i] and (repeat or taken[i] < counts[i])]
        if not live:
            break
        i = min(live, key=lambda j: ((taken[j] + 1) / share[j], j))
        order.append((i, taken[i] % counts[i]))
        taken[i] += 1
    if not order:
        return np.zeros(0, dtype=np.uint32)
    return np.concatenate([windows[i][k] for i, k in order]).astype(np.uint32)

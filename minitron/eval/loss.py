"""Validation loss (nats per predicted token) and perplexity of a causal LM on packed sequences."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from minitron.atomic import write_json
from minitron.data.assets import cache_dir
from minitron.data.tokens import SEQ_LEN, TokenizedCorpus, pack
from minitron.model.fingerprint import model_fingerprint
from minitron.progress import Progress, track

#: Validation sequences (of `SEQ_LEN` tokens) behind every reported loss unless told otherwise.
VALIDATION_SEQUENCES = 16
#: Test sequences behind the loss quoted for a chosen model (more than validation: nothing is
#: chosen with it, so it is read once per model, and its estimate should be tight).
TEST_SEQUENCES = 64


def domain_test_sequences(test_sequences: int) -> int:
    """Test sequences per part of a mix beside the mixture's own `test_sequences`: half as many
    (32 of the default 64; fewer where a part holds fewer), read once per chosen model and part."""
    return max(test_sequences // 2, 1)


@dataclass(frozen=True)
class LossReport:
    """Mean next-token cross-entropy over every predicted position."""

    loss: float
    """Nats per token."""
    perplexity: float
    """exp(loss)."""
    tokens: int
    """Number of predicted tokens averaged over (sequences × (seq_len − 1))."""


@torch.no_grad()
def validation_loss(
    model: Any,
    sequences: torch.Tensor,
    batch_size: int = 4,
    progress: bool = True,
    desc: str = "validation",
    counter: Progress | None = None,
) -> LossReport:
    """Exact token-weighted mean loss of `model` on `[n, seq_len]` packed sequences (each batch also
    counted into `counter`, the progress of a larger piece of work)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for start in track(range(0, len(sequences), batch_size), desc, unit="batch", enabled=progress):
            batch = sequences[start : start + batch_size].to(device)
            logits = model(input_ids=batch, use_cache=False).logits[:, :-1].float()
            targets = batch[:, 1:]
            total += F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"
            ).item()
            count += targets.numel()
            if counter is not None:
                counter.update(1)
    finally:
        model.train(was_training)
    loss = total / count
    return LossReport(loss=loss, perplexity=math.exp(loss), tokens=count)


def cached_validation_loss(
    model: Any, sequences: torch.Tensor, batch_size: int = 4, progress: bool = True, desc: str = "validation"
) -> LossReport:
    """`validation_loss`, read from the cache when this model (by content fingerprint, in this
    dtype, on this kind of device) was measured on exactly these sequences before.

    For the teacher, whose losses every run of a search reports: 20k tokens through a 135M teacher
    take about 35 s on a 2-core CPU, every run, for the same numbers."""
    param = next(model.parameters())
    identity = {
        "model": model_fingerprint(model),
        "dtype": str(param.dtype),
        "device": param.device.type,
        "sequences": hashlib.sha256(sequences.to(torch.int64).contiguous().numpy().tobytes()).hexdigest(),
        "shape": list(sequences.shape),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / "losses" / f"{key}.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            return LossReport(float(saved["loss"]), float(saved["perplexity"]), int(saved["tokens"]))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged entry is measured again and rewritten
    report = validation_loss(model, sequences, batch_size=batch_size, progress=progress, desc=desc)
    write_json(path, {**identity, **dataclasses.asdict(report)})
    return report


def zero_shot_loss(
    model: Any,
    tokens: Any,
    seq_len: int = SEQ_LEN,
    max_sequences: int | None = None,
    batch_size: int = 4,
    progress: bool = True,
) -> LossReport:
    """Validation loss of `model` on the validation split of a `TokenizedCorpus` (no training).

    `max_sequences` limits the evaluation to the first N packed sequences (None: the whole split).
    """
    sequences = pack(tokens.validation, seq_len, max_sequences)
    return validation_loss(model, sequences, batch_size=batch_size, progress=progress, desc="zero-shot loss")


def domain_test_sets(
    tokens: TokenizedCorpus, seq_len: int, test_sequences: int = TEST_SEQUENCES
) -> dict[str, torch.Tensor]:
    """Each part of a mix with at least one whole test sequence: its first ones, as many as
    `domain_test_sequences(test_sequences)` (the mixture reads `test_sequences`)."""
    sequences = domain_test_sequences(test_sequences)
    return {d.name: pack(d.test, seq_len, sequences) for d in tokens.domains if d.test.size >= seq_len}


def domain_losses(
    model: Any,
    sets: dict[str, torch.Tensor],
    batch_size: int = 4,
    progress: bool = False,
    counter: Progress | None = None,
) -> dict[str, float]:
    """The model's loss on each part's test sequences (`domain_test_sets`)."""
    return {
        name: validation_loss(model, seqs, batch_size, progress, f"test loss {name}", counter).loss
        for name, seqs in sets.items()
    }

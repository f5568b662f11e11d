"""Inference speed of a model on its device: latency of one sequence and batched throughput.

Measured as forward passes over random token ids (prefill), best of a few repeats after a warm-up,
so that candidates measured on the same device compare fairly. Decoding speed differs in absolute
terms but follows the same ordering for these dense decoders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from minitron.data.tokens import SEQ_LEN
from minitron.runtime import precision, synchronize


@dataclass(frozen=True)
class Speed:
    """Forward-pass speed of a model."""

    latency_ms: float
    """Milliseconds for one sequence of `seq_len` tokens (batch 1)."""
    tokens_per_s: float
    """Tokens per second for a batch of `batch_size` sequences."""
    seq_len: int
    batch_size: int
    device: str


@torch.no_grad()
def measure_speed(
    model: Any, seq_len: int = SEQ_LEN, batch_size: int = 4, repeats: int = 2, bf16: bool = False
) -> Speed:
    """`bf16`: run under bf16 autocast, as the trials' probes do; a teacher in bf16 weights and a
    student in fp32 weights then both compute in bf16 (the student pays the casts, so a speed-up
    measured that way errs low)."""
    param = next(model.parameters())
    device = param.device
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    single = torch.randint(0, vocab, (1, seq_len), generator=generator).to(device)
    batch = torch.randint(0, vocab, (batch_size, seq_len), generator=generator).to(device)
    was_training = model.training
    model.eval()

    def best(ids: torch.Tensor) -> float:
        with precision(device, bf16):
            model(input_ids=ids, use_cache=False)  # warm-up
            synchronize(device)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(input_ids=ids, use_cache=False)
                synchronize(device)
                times.append(time.perf_counter() - start)
        return min(times)

    try:
        latency = best(single)
        throughput = batch.numel() / best(batch)
    finally:
        model.train(was_training)
    return Speed(
        latency_ms=latency * 1000,
        tokens_per_s=throughput,
        seq_len=seq_len,
        batch_size=batch_size,
        device=str(device),
    )

"""Inference speed of a model on its device: latency of one sequence and batched throughput.

Measured as forward passes over random token ids (prefill) after a warm-up, several times: a
latency is the median of its rounds, with the fastest and slowest round as its spread. Decoding
speed differs in absolute terms but follows the same ordering for these dense decoders.

`compare_latency` measures two models in turn on one device (reference, model, reference, model,
...), so that whatever slows the machine down for a while slows both: the speed-up is the median of
the per-round ratios, with their range. That is how a candidate is compared with its teacher.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minitron.data.tokens import SEQ_LEN
from minitron.runtime import precision, synchronize


@dataclass(frozen=True)
class Timing:
    """Repeated timings of one thing: their median and range, in milliseconds."""

    median_ms: float
    low_ms: float
    """The fastest round."""
    high_ms: float
    """The slowest round."""
    rounds: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ms = [1000 * s for s in seconds]
        return cls(statistics.median(ms), min(ms), max(ms), len(ms))

    def agrees_with(self, other: Timing) -> bool:
        """Whether either median lies within the other's range (the stated spread)."""
        return (
            self.low_ms <= other.median_ms <= self.high_ms or other.low_ms <= self.median_ms <= other.high_ms
        )


@dataclass(frozen=True)
class LatencyComparison:
    """Two models' latencies measured in turn on one device."""

    reference: Timing
    model: Timing
    speedup: float
    """Median over the rounds of reference ÷ model."""
    speedup_low: float
    speedup_high: float


@dataclass(frozen=True)
class Speed:
    """Forward-pass speed of a model."""

    latency_ms: float
    """Milliseconds for one sequence of `seq_len` tokens (batch 1): the median of `repeats` rounds."""
    tokens_per_s: float
    """Tokens per second for a batch of `batch_size` sequences."""
    seq_len: int
    batch_size: int
    device: str
    latency: Timing | None = None
    """The latency's rounds: median, fastest, slowest."""


def _ids(model: Any, batch_size: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), generator=generator)
    return ids.to(next(model.parameters()).device)


def _timed(model: Any, ids: torch.Tensor) -> float:
    """Seconds of one forward pass (the device's queued work included)."""
    start = time.perf_counter()
    model(input_ids=ids, use_cache=False)
    synchronize(ids.device)
    return time.perf_counter() - start


@torch.no_grad()
def measure_speed(
    model: Any, seq_len: int = SEQ_LEN, batch_size: int = 4, repeats: int = 5, bf16: bool = False
) -> Speed:
    """Latency (median of `repeats` rounds after a warm-up) and throughput (the best of two batched
    passes). `bf16`: run under bf16 autocast, as the trials' probes do."""
    device = next(model.parameters()).device
    single, batch = _ids(model, 1, seq_len), _ids(model, batch_size, seq_len, seed=1)
    was_training = model.training
    model.eval()
    try:
        with precision(device, bf16):
            _timed(model, single)  # warm-up
            latency = Timing.of([_timed(model, single) for _ in range(repeats)])
            _timed(model, batch)
            throughput = batch.numel() / min(_timed(model, batch) for _ in range(2))
    finally:
        model.train(was_training)
    return Speed(
        latency_ms=latency.median_ms,
        tokens_per_s=throughput,
        seq_len=seq_len,
        batch_size=batch_size,
        device=str(device),
        latency=latency,
    )


@torch.no_grad()
def compare_latency(
    reference: Any,
    model: Any,
    seq_len: int = SEQ_LEN,
    rounds: int = 5,
    bf16: bool = False,
    warm: bool = False,
) -> LatencyComparison:
    """Both models' latency for one sequence, measured in turn `rounds` times after a warm-up of each
    (`warm`: the reference is warm already). Both must sit on the same device."""
    device = next(model.parameters()).device
    ids_ref, ids = _ids(reference, 1, seq_len), _ids(model, 1, seq_len)
    states = reference.training, model.training
    reference.eval()
    model.eval()
    try:
        with precision(device, bf16):
            return compare_in_turn(
                lambda: _timed(reference, ids_ref), lambda: _timed(model, ids), rounds, warm
            )
    finally:
        reference.train(states[0])
        model.train(states[1])


def compare_in_turn(
    reference: Callable[[], float], model: Callable[[], float], rounds: int, warm: bool = False
) -> LatencyComparison:
    """Two timed runs (each returns its seconds) in turn, `rounds` times after a warm-up of each
    (`warm`: the reference is warm already); the speed-up is the median of the per-round ratios."""
    if not warm:
        reference()
    model()
    pairs = [(reference(), model()) for _ in range(rounds)]
    ratios = [r / m for r, m in pairs]
    return LatencyComparison(
        reference=Timing.of([r for r, _ in pairs]),
        model=Timing.of([m for _, m in pairs]),
        speedup=statistics.median(ratios),
        speedup_low=min(ratios),
        speedup_high=max(ratios),
    )

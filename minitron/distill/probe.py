"""Probes: short, seeded, comparable distillation runs that rank candidate architectures.

Every candidate trains on the same batches in the same order (the first sequences of the shared
`TeacherTargets`), with the same seed, schedule and budget, against the same cached teacher
outputs; so probe losses compare the architectures and nothing else. Validations fall at geometric
rungs (the end, half-way, a quarter, ...) or every `eval_every` steps; each is handed to a callback
(the search reports it to Ray Tune, whose ASHA stops bad trials at the rungs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minitron.distill.checkpoint import Checkpointing
from minitron.distill.loop import TrainResult, train
from minitron.distill.schedule import Schedule, decay_steps
from minitron.distill.sources import CachedTargets, OnlineTeacher
from minitron.distill.step import Callback, Head, LossWeights
from minitron.distill.targets import TeacherTargets
from minitron.errors import MinitronError
from minitron.runtime import Placement


@dataclass(frozen=True)
class ProbeConfig:
    """One probe's training settings."""

    tokens: int = 0
    """Training tokens (rounded down to whole steps); 0: every sequence of the targets."""
    batch_size: int = 4
    """Sequences per optimizer step."""
    micro_batch: int | None = None
    """Sequences per forward and backward pass (per worker when sharded): a step accumulates the
    gradients of batch / micro-batch passes. None: the whole batch at once. Not part of what is
    computed (up to summation order), so not of a job's identity: a run may resume with another."""
    lr: float = 1.2e-3
    """Peak learning rate (AdamW), the retraining's: probes at 1.2e-3 ranked 8 candidates as 128k
    tokens of retraining did with Kendall tau 0.71-0.79 (4k-32k tokens), at 3e-4 only 0.29-0.43
    (`bench/rank_fidelity.py`)."""
    min_lr_ratio: float = 0.1
    """Cosine decay floor as a fraction of `lr`."""
    warmup_fraction: float = 0.05
    """Share of steps spent in linear warm-up."""
    decay_fraction: float = 1.0
    """Share of steps in the final cosine decay (1.0: all after the warm-up). A search's probes do
    not decay (0.0): they stay at the peak, as the first steps of their winner's retraining do, so
    that a winner continues from its probe (`minitron.distill.continuation`)."""
    weights: LossWeights = field(default_factory=lambda: LossWeights(head=Head.CANDIDATES))
    """KD / CE mix and temperature; the student's softmax over the batch's candidate tokens only
    (1.4x the tokens/s of the whole vocabulary in fp32, the same ranking: docs/speed.md). Settings
    saved before this default read back with the whole vocabulary, so a resumed run probes as it
    began."""
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 8
    """Steps between validation losses (0: only at the end); unused when `rungs` is set."""
    rungs: int = 0
    """When > 0: validate at this many geometric points instead (the end, half-way, a quarter, ...),
    where successive halving compares trials."""
    seed: int = 0
    """Seeds the student's training randomness; equal seeds give equal probes."""
    placement: Placement = field(default_factory=Placement)
    """Device, precision and CPU threads."""

    def steps(self, sequences: int, seq_len: int) -> int:
        """Optimizer steps of a probe on targets of `sequences` windows of `seq_len` tokens."""
        wanted = self.tokens // (seq_len * self.batch_size) if self.tokens else sequences // self.batch_size
        return min(wanted, sequences // self.batch_size)

    def schedule(self, steps: int) -> Schedule:
        warmup = max(1, round(steps * self.warmup_fraction)) if self.warmup_fraction > 0 else 0
        points = (
            Schedule.geometric(steps, self.rungs) if self.rungs else Schedule.every(steps, self.eval_every)
        )
        decay = decay_steps(steps, self.decay_fraction)
        return Schedule(steps, self.lr, self.lr * self.min_lr_ratio, warmup, points, decay)


def probe(
    student: Any,
    targets: TeacherTargets,
    cfg: ProbeConfig,
    validation: torch.Tensor,
    callback: Callback | None = None,
    eval_batch_size: int = 8,
    teacher: Any | None = None,
    state: Checkpointing | None = None,
    progress_file: Path | None = None,
) -> TrainResult:
    """Distill `student` on the cached targets (in place) and return its validation losses.

    `state` (a `continuation.ProbeState`) keeps the probe's end state for a retraining to continue.

    With `teacher` given, its full distribution is computed online on the same batches instead of
    using the cached top-k logits (slower; for measuring what the top-k cache changes).
    `progress_file`: where its latest progress is written while it trains (`minitron.progress`).
    """
    sequences, seq_len = targets.input_ids.shape
    steps = cfg.steps(int(sequences), int(seq_len))
    if steps < 1:
        raise MinitronError(
            f"a probe of {cfg.tokens:,} tokens is less than one step of {cfg.batch_size} x {seq_len} tokens"
            if cfg.tokens
            else f"the probe holds {sequences} sequences, fewer than one batch of {cfg.batch_size}"
        )
    source = (
        OnlineTeacher(teacher, targets.input_ids, cfg.seed, shuffle=False)
        if teacher is not None
        else CachedTargets(targets)
    )
    return train(
        student,
        source,
        cfg.schedule(steps),
        cfg,
        validation,
        callback=callback,
        checkpoint=state,
        eval_batch_size=eval_batch_size,
        desc="probe",
        progress_file=progress_file,
    )

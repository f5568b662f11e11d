"""Probes: short, seeded, comparable distillation runs that rank candidate architectures.

Every candidate trains on the same batches in the same order (the `TeacherTargets`), with the same
seed, schedule and budget, against the same cached teacher outputs; so probe losses compare the
architectures and nothing else. The validation loss is measured every `eval_every` steps on the
same validation sequences and handed to a callback (the search reports it to Ray Tune, so ASHA can
stop bad trials early).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from minitron.distill.step import Callback, History, LossWeights, Trainer, distillation_loss
from minitron.distill.targets import TeacherTargets
from minitron.errors import MinitronError
from minitron.eval.loss import validation_loss
from minitron.runtime import Placement, precision


@dataclass(frozen=True)
class ProbeConfig:
    """One probe's training settings (the token budget is fixed by the targets' batches)."""

    batch_size: int = 4
    """Sequences per optimizer step."""
    lr: float = 3e-4
    """Peak learning rate (AdamW); short probes recover faster with a higher rate than retraining."""
    min_lr_ratio: float = 0.1
    """Cosine decay floor as a fraction of `lr`."""
    warmup_fraction: float = 0.05
    """Share of steps spent in linear warm-up."""
    weights: LossWeights = field(default_factory=LossWeights)
    """KD / CE mix and temperature."""
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 8
    """Steps between validation losses (0: only at the end)."""
    seed: int = 0
    """Seeds the student's training randomness; equal seeds give equal probes."""
    placement: Placement = field(default_factory=Placement)
    """Device, precision and CPU threads."""


@dataclass
class ProbeResult:
    """What a probe measured."""

    loss: float
    """Final validation loss (nats/token)."""
    history: list[dict[str, float]]
    """One entry per validation: step, tokens, val_loss, train_loss."""
    tokens: int
    """Training tokens seen."""
    seconds: float
    """Wall time of the whole probe."""
    train_seconds: float
    """Time in the student's forward, backward and optimizer step."""
    eval_seconds: float
    """Time in validation."""


def probe(
    student: Any,
    targets: TeacherTargets,
    cfg: ProbeConfig,
    validation: torch.Tensor,
    callback: Callback | None = None,
    eval_batch_size: int = 8,
    teacher: Any | None = None,
) -> ProbeResult:
    """Distill `student` on the cached targets (in place) and return its validation losses.

    With `teacher` given, its full distribution is computed online on the same batches instead of
    using the cached top-k logits (slower; for measuring what the top-k cache changes).
    """
    start = time.perf_counter()
    device, bf16 = cfg.placement.apply()
    steps = len(targets.input_ids) // cfg.batch_size
    if steps < 1:
        raise MinitronError(
            f"the probe holds {len(targets.input_ids)} sequences, fewer than one batch of {cfg.batch_size}"
        )
    torch.manual_seed(cfg.seed)
    student.to(device).train()
    params = [p for p in student.parameters() if p.requires_grad]
    warmup = max(1, round(steps * cfg.warmup_fraction)) if cfg.warmup_fraction > 0 else 0
    trainer = Trainer(params, cfg, steps=steps, warmup=warmup, floor=cfg.lr * cfg.min_lr_ratio)
    history = History(cfg.batch_size * int(targets.input_ids.shape[1]), callback)
    train_seconds = eval_seconds = 0.0

    def evaluate(step: int) -> float:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        loss = validation_loss(student, validation, batch_size=eval_batch_size, progress=False).loss
        eval_seconds += time.perf_counter() - t0
        history.validated(step, loss)
        return loss

    for step in range(steps):
        t0 = time.perf_counter()
        rows = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
        input_ids = targets.input_ids[rows].to(device)
        with precision(device, bf16):
            logits = student(input_ids=input_ids, use_cache=False).logits
            teacher_logits = None
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(input_ids=input_ids, use_cache=False).logits
        if teacher_logits is not None:
            loss, parts = distillation_loss(logits, input_ids, cfg.weights, teacher_logits=teacher_logits)
        else:
            loss, parts = distillation_loss(
                logits,
                input_ids,
                cfg.weights,
                top_values=targets.values[rows].to(device),
                top_indices=targets.indices[rows].to(device),
            )
        trainer.step(step, loss)
        train_seconds += time.perf_counter() - t0
        history.train_loss(parts["loss"])
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < steps:
            evaluate(step + 1)
    final = evaluate(steps)
    student.eval()
    return ProbeResult(
        loss=final,
        history=history.records,
        tokens=steps * cfg.batch_size * int(targets.input_ids.shape[1]),
        seconds=time.perf_counter() - start,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
    )

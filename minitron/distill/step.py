"""What probes and retraining share: the loss mix, the optimizer and its schedule, the history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from minitron.distill.losses import kl_full, kl_topk, next_token_ce
from minitron.distill.schedule import lr_at


@dataclass(frozen=True)
class LossWeights:
    """How the terms of the distillation loss are mixed."""

    kd: float = 1.0
    """Weight of the forward KL to the teacher (0: no teacher, plain language modelling)."""
    ce: float = 0.0
    """Weight of the next-token cross-entropy on the data (Minitron found KD alone best)."""
    temperature: float = 1.0
    """Softmax temperature of the KL (the paper's best: 1.0)."""


class OptimizerSettings(Protocol):
    """What `Trainer` reads from a probe's or a retraining's config."""

    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def grad_clip(self) -> float: ...


class Trainer:
    """AdamW over `params` with linear warm-up and cosine decay to `floor`: one `step` per batch."""

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        cfg: OptimizerSettings,
        *,
        steps: int,
        warmup: int,
        floor: float,
    ) -> None:
        self.params, self.grad_clip = params, cfg.grad_clip
        self.schedule = (steps, cfg.lr, warmup, floor)
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay, eps=1e-8
        )

    def step(self, index: int, loss: torch.Tensor) -> None:
        """Optimizer step number `index` (0-based) on `loss`, at the schedule's learning rate."""
        steps, peak, warmup, floor = self.schedule
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(index, steps, peak, warmup, floor)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()


class History:
    """Validation records of a training run: step, tokens, val_loss, and the mean training loss
    since the previous record; each one is handed to the callback as it is made."""

    def __init__(
        self,
        tokens_per_step: int,
        callback: Callback | None = None,
        records: list[dict[str, float]] | None = None,
    ) -> None:
        self.tokens_per_step, self.callback = tokens_per_step, callback
        self.records: list[dict[str, float]] = records if records is not None else []
        self._recent: list[float] = []

    def train_loss(self, value: float) -> None:
        self._recent.append(value)

    def validated(self, step: int, loss: float) -> dict[str, float]:
        recent = self._recent
        record = {
            "step": float(step),
            "tokens": float(step * self.tokens_per_step),
            "val_loss": loss,
            "train_loss": sum(recent) / len(recent) if recent else float("nan"),
        }
        self._recent = []
        self.records.append(record)
        if self.callback is not None:
            self.callback(record)
        return record


def distillation_loss(
    student_logits: torch.Tensor,
    input_ids: torch.Tensor,
    weights: LossWeights,
    teacher_logits: torch.Tensor | None = None,
    top_values: torch.Tensor | None = None,
    top_indices: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """KD (full or top-k teacher) + CE mix; returns the loss and its parts for logging."""
    parts: dict[str, float] = {}
    total = student_logits.new_zeros((), dtype=torch.float32)
    if weights.kd:
        if teacher_logits is not None:
            kd = kl_full(student_logits, teacher_logits, weights.temperature)
        elif top_values is not None and top_indices is not None:
            kd = kl_topk(student_logits, top_values, top_indices, weights.temperature)
        else:
            raise ValueError("a KD weight needs teacher logits or top-k targets")
        total = total + weights.kd * kd
        parts["kd"] = kd.item()
    if weights.ce:
        ce = next_token_ce(student_logits, input_ids)
        total = total + weights.ce * ce
        parts["ce"] = ce.item()
    parts["loss"] = total.item()
    return total, parts


Callback = Callable[[dict[str, float]], None]

"""The pieces of the training loop: the loss mix, the optimizer under its schedule, the history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from minitron.distill.losses import kl_full, kl_topk, next_token_ce
from minitron.distill.schedule import Schedule


@dataclass(frozen=True)
class LossWeights:
    """How the terms of the distillation loss are mixed."""

    kd: float = 1.0
    """Weight of the forward KL to the teacher (0: no teacher, plain language modelling)."""
    ce: float = 0.0
    """Weight of the next-token cross-entropy on the data (Minitron found KD alone best)."""
    temperature: float = 1.0
    """Softmax temperature of the KL (the paper's best: 1.0)."""


class Trainer:
    """AdamW over `params`, its learning rate set per step by the schedule: one `step` per batch."""

    def __init__(
        self, params: list[torch.nn.Parameter], schedule: Schedule, weight_decay: float, grad_clip: float
    ) -> None:
        self.params, self.schedule, self.grad_clip = params, schedule, grad_clip
        self.optimizer = torch.optim.AdamW(
            params, lr=schedule.peak_lr, betas=(0.9, 0.95), weight_decay=weight_decay, eps=1e-8
        )

    def step(self, index: int, loss: torch.Tensor) -> None:
        """Optimizer step number `index` (0-based) on `loss`, at the schedule's learning rate."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()


class History:
    """Validation records of a training run: step, tokens, val_loss, and the mean training loss
    since the previous record; each one is handed to the callback as it is made.

    Training losses are summed as tensors (no device sync per step); `.item()` runs only when a
    record is made.
    """

    def __init__(
        self,
        tokens_per_step: int,
        callback: Callback | None = None,
        records: list[dict[str, float]] | None = None,
    ) -> None:
        self.tokens_per_step, self.callback = tokens_per_step, callback
        self.records: list[dict[str, float]] = records if records is not None else []
        self._sum: torch.Tensor | None = None
        self._count = 0

    def train_loss(self, value: torch.Tensor) -> None:
        value = value.detach().float()
        self._sum = value if self._sum is None else self._sum + value
        self._count += 1

    def validated(self, step: int, loss: float) -> dict[str, float]:
        record = {
            "step": float(step),
            "tokens": float(step * self.tokens_per_step),
            "val_loss": loss,
            "train_loss": self._sum.item() / self._count if self._sum is not None else float("nan"),
        }
        self._sum, self._count = None, 0
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
) -> torch.Tensor:
    """KD (full or top-k teacher) + CE mix, in fp32."""
    total = student_logits.new_zeros((), dtype=torch.float32)
    if weights.kd:
        if teacher_logits is not None:
            kd = kl_full(student_logits, teacher_logits, weights.temperature)
        elif top_values is not None and top_indices is not None:
            kd = kl_topk(student_logits, top_values, top_indices, weights.temperature)
        else:
            raise ValueError("a KD weight needs teacher logits or top-k targets")
        total = total + weights.kd * kd
    if weights.ce:
        ce = next_token_ce(student_logits, input_ids)
        total = total + weights.ce * ce
    return total


Callback = Callable[[dict[str, float]], None]

"""The pieces of the training loop: the loss mix, the optimizer under its schedule, the history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minitron.choice import Choice
from minitron.distill.chunked import Targets, chunked_head_loss, next_tokens, plain_head, use_chunks
from minitron.distill.history import Validation
from minitron.distill.losses import kl_full, kl_topk, kl_topk_candidates, next_token_ce
from minitron.distill.schedule import Schedule
from minitron.distill.sources import Batch


class Head(Choice):
    """Over which tokens the student's softmax runs in the KL to top-k teacher targets."""

    VOCABULARY = "vocabulary"
    """Its whole vocabulary (the exact KL; retraining, and anything with full teacher logits)."""
    CANDIDATES = "candidates"
    """The batch's candidate tokens, the union of the teacher's top-k (`kl_topk_candidates`): the
    probes' default. Applies only to top-k targets without a CE term; a batch with the teacher's
    full logits uses the whole vocabulary."""


@dataclass(frozen=True)
class LossWeights:
    """How the terms of the distillation loss are mixed, and over which tokens."""

    kd: float = 1.0
    """Weight of the forward KL to the teacher (0: no teacher, plain language modelling)."""
    ce: float = 0.0
    """Weight of the next-token cross-entropy on the data (Minitron found KD alone best)."""
    temperature: float = 1.0
    """Softmax temperature of the KL (the paper's best: 1.0)."""
    head: Head = Head.VOCABULARY
    """The student's softmax over its vocabulary or only the batch's candidate tokens."""

    def __post_init__(self) -> None:
        if self.head is Head.CANDIDATES and self.ce:
            raise ValueError("a CE term needs the student's whole vocabulary (head=vocabulary)")


class Trainer:
    """AdamW over `params`, its learning rate set per step by the schedule: `backward` for each
    micro-batch of a step (its gradients add up), then one `step`."""

    def __init__(
        self, params: list[torch.nn.Parameter], schedule: Schedule, weight_decay: float, grad_clip: float
    ) -> None:
        self.params, self.schedule, self.grad_clip = params, schedule, grad_clip
        # fused: one kernel over all parameters instead of a pass per operation; on the 2-core
        # CPU the optimizer step of a 69M student fell from 0.15 s to 0.04 s (docs/speed.md)
        self.optimizer = torch.optim.AdamW(
            params,
            lr=schedule.peak_lr,
            betas=(0.9, 0.95),
            weight_decay=weight_decay,
            eps=1e-8,
            fused=True,
        )

    def backward(self, loss: torch.Tensor) -> None:
        """Add the gradients of `loss` (one micro-batch's share of the step's loss)."""
        loss.backward()

    def step(self, index: int) -> None:
        """Optimizer step number `index` (0-based) on the gradients added since the last one, at the
        schedule's learning rate."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(index)
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        # freed now, not at the next step: students trained in lock-step then hold one gradient
        self.optimizer.zero_grad(set_to_none=True)


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
        records: list[Validation] | None = None,
    ) -> None:
        self.tokens_per_step, self.callback = tokens_per_step, callback
        self.records: list[Validation] = records if records is not None else []
        self._sum: torch.Tensor | None = None
        self._count = 0

    def train_loss(self, value: torch.Tensor) -> None:
        value = value.detach().float()
        self._sum = value if self._sum is None else self._sum + value
        self._count += 1

    def validated(self, step: int, loss: float) -> Validation:
        train = self._sum.item() / self._count if self._sum is not None else float("nan")
        record = Validation(step, step * self.tokens_per_step, loss, train)
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


def batch_loss(
    student: Any, batch: Batch, weights: LossWeights, hidden_states: bool = False, sharded: bool = False
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """The student's forward pass on `batch` and its distillation loss, with its hidden states when
    asked; under the caller's autocast.

    With `Head.CANDIDATES` and top-k targets the student's decoder runs without its output head, and
    the head is applied to the batch's candidate tokens only (`kl_topk_candidates`); a head with a
    bias or logit soft-capping, full teacher logits, or hidden states asked for take the full head.
    A batch whose logits over the whole vocabulary would be large (`chunked.use_chunks`) takes the
    chunked loss instead (`minitron.distill.chunked`: the same loss, a chunk of positions at a time),
    unless the student is `sharded` (its decoder would run without the sharded root's hooks).
    """
    head = student.get_output_embeddings()
    candidates = (
        weights.head is Head.CANDIDATES
        and batch.top_indices is not None
        and batch.top_values is not None
        and not hidden_states
        and plain_head(student)
    )
    chunked = (
        not candidates
        and not sharded
        and plain_head(student)
        and (batch.teacher_hidden is not None or use_chunks(batch.input_ids.numel(), head.weight.shape[0]))
    )
    if chunked:
        return _chunked_loss(student, batch, weights, hidden_states)
    if candidates:
        assert batch.top_values is not None and batch.top_indices is not None
        hidden = student.get_decoder()(input_ids=batch.input_ids, use_cache=False).last_hidden_state
        kd = kl_topk_candidates(hidden, head.weight, batch.top_values, batch.top_indices, weights.temperature)
        return weights.kd * kd, None
    teacher_logits = batch.teacher_logits
    if batch.teacher_hidden is not None and batch.teacher_head is not None:  # a sharded student
        teacher_logits = batch.teacher_hidden @ batch.teacher_head.T
    out = student(input_ids=batch.input_ids, use_cache=False, output_hidden_states=hidden_states)
    loss = distillation_loss(
        out.logits,
        batch.input_ids,
        weights,
        teacher_logits=teacher_logits,
        top_values=batch.top_values,
        top_indices=batch.top_indices,
    )
    return loss, out.hidden_states


def _chunked_loss(
    student: Any, batch: Batch, weights: LossWeights, hidden_states: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """`batch_loss` through the chunked loss: the decoder's last hidden states and the head's
    weight, never the whole `[positions × vocabulary]` logits."""
    decoder = student.get_decoder()
    out = decoder(input_ids=batch.input_ids, use_cache=False, output_hidden_states=hidden_states)
    hidden = out.last_hidden_state
    device = hidden.device
    dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else hidden.dtype

    def flat(values: torch.Tensor | None) -> torch.Tensor | None:
        return None if values is None else values.reshape(-1, values.shape[-1])

    targets = Targets(
        teacher_logits=flat(batch.teacher_logits),
        teacher_hidden=flat(batch.teacher_hidden),
        teacher_head=batch.teacher_head,
        top_values=flat(batch.top_values),
        top_indices=flat(batch.top_indices),
        next_tokens=next_tokens(batch.input_ids) if weights.ce else None,
    )
    head = student.get_output_embeddings().weight
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    kd, ce, temperature = weights.kd, weights.ce, weights.temperature
    loss = chunked_head_loss(flat_hidden, head, targets, kd, ce, temperature, dtype=dtype)
    return loss, out.hidden_states


Callback = Callable[[Validation], None]

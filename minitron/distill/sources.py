"""Where a training step's batch and its teacher targets come from.

Both sources read the same data order (`training_windows`: packed windows of the train split in a
seeded permutation per epoch), so a run on cached targets and one with the teacher online see the
same sequences in the same order:
- `CachedTargets`: the teacher's top-k logits, computed once for the whole token stream
  (`minitron.distill.targets`) and shared by every probe, every winner and every bench arm, so a
  run costs only the student's own training;
- `OnlineTeacher`: the teacher runs on every batch (its full distribution, and its hidden states
  for the intermediate loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from minitron.distill.chunked import plain_head, use_chunks
from minitron.errors import MinitronError
from minitron.runtime import precision


class TrainOrder:
    """Which packed window each training position reads: a seeded permutation per epoch."""

    def __init__(self, count: int, seed: int) -> None:
        self.count, self.seed = count, seed
        self._epoch, self._perm = -1, np.arange(0)

    def rows(self, start: int, stop: int) -> np.ndarray:
        out = []
        for position in range(start, stop):
            epoch, index = divmod(position, self.count)
            if epoch != self._epoch:
                self._epoch, self._perm = (
                    epoch,
                    np.random.default_rng([self.seed, epoch]).permutation(self.count),
                )
            out.append(self._perm[index])
        return np.asarray(out, dtype=np.int64)


def training_windows(train: torch.Tensor, sequences: int, seed: int) -> torch.Tensor:
    """The first `sequences` windows of the seeded training order over packed `train` windows."""
    if len(train) < 1:
        raise MinitronError("the train split holds no whole sequence")
    return train[torch.from_numpy(TrainOrder(len(train), seed).rows(0, sequences))]


Rows = tuple[int, int]
"""Rows `[start, stop)` of a step's batch."""


@dataclass
class Batch:
    """One step's input and what the student is distilled towards."""

    input_ids: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    top_values: torch.Tensor | None = None
    top_indices: torch.Tensor | None = None
    teacher_states: tuple[torch.Tensor, ...] | None = None
    teacher_hidden: torch.Tensor | None = None
    """The teacher's last hidden states, in place of its logits where those would be large: the
    chunked loss computes them with `teacher_head` a chunk of positions at a time."""
    teacher_head: torch.Tensor | None = None


class Source(Protocol):
    def batch(
        self, step: int, batch_size: int, device: torch.device, bf16: bool, part: Rows | None = None
    ) -> Batch:
        """Step `step`'s batch of `batch_size` sequences, or only its rows `part` = (start, stop)
        (a sharded run's share: the teacher runs on those rows only)."""
        ...

    def steps_available(self, batch_size: int) -> int | None:
        """Whole steps the source can feed (None: unlimited)."""
        ...


class CachedTargets:
    """Batches and top-k teacher logits read from a `TeacherTargets` cache, in its stored order."""

    def __init__(self, targets: Any) -> None:
        self.targets = targets

    def steps_available(self, batch_size: int) -> int | None:
        return len(self.targets.input_ids) // batch_size

    def batch(
        self, step: int, batch_size: int, device: torch.device, bf16: bool, part: Rows | None = None
    ) -> Batch:
        start, stop = part or (0, batch_size)
        rows = slice(step * batch_size + start, step * batch_size + stop)
        t = self.targets
        return Batch(
            t.input_ids[rows].to(device), None, t.values[rows].to(device), t.indices[rows].to(device)
        )


class OnlineTeacher:
    """Batches in the seeded training order over `train` windows (or in their stored order, without
    `shuffle`); the teacher runs on each one."""

    def __init__(
        self,
        teacher: Any | None,
        train: torch.Tensor,
        seed: int,
        hidden_states: bool = False,
        shuffle: bool = True,
    ) -> None:
        self.teacher, self.train, self.hidden_states = teacher, train, hidden_states
        self.order = TrainOrder(len(train), seed) if shuffle else None

    def steps_available(self, batch_size: int) -> int | None:
        return (
            None if self.order is not None else len(self.train) // batch_size
        )  # epochs repeat in a new order

    def batch(
        self, step: int, batch_size: int, device: torch.device, bf16: bool, part: Rows | None = None
    ) -> Batch:
        first, last = part or (0, batch_size)
        start, stop = step * batch_size + first, step * batch_size + last
        if self.order is None:
            if (step + 1) * batch_size > len(self.train):
                raise MinitronError(f"step {step} reads past the {len(self.train)} stored sequences")
            input_ids = self.train[start:stop].to(device)
        else:
            input_ids = self.train[torch.from_numpy(self.order.rows(start, stop))].to(device)
        if self.teacher is None:
            return Batch(input_ids)
        with torch.no_grad(), precision(device, bf16):
            head = self.teacher.get_output_embeddings().weight
            if (
                not self.hidden_states
                and plain_head(self.teacher)
                and use_chunks(input_ids.numel(), len(head))
            ):
                # its logits over the whole vocabulary would be large: the loss makes them by chunks
                hidden = self.teacher.get_decoder()(input_ids=input_ids, use_cache=False).last_hidden_state
                return Batch(input_ids, teacher_hidden=hidden, teacher_head=head)
            out = self.teacher(input_ids=input_ids, use_cache=False, output_hidden_states=self.hidden_states)
        return Batch(input_ids, out.logits, teacher_states=out.hidden_states if self.hidden_states else None)


class Shared:
    """One source read by several runs in lock-step (`minitron.distill.loop.in_lockstep`): a step's
    batch is made once, on the first ask, and handed to every run that asks for the same step next.

    Why: retraining several winners with the teacher online costs a teacher forward pass per
    winner per step, the same pass on the same sequences; in lock-step it is paid once. Only the
    last batch is kept, so runs standing at different steps (one resumed from a later checkpoint)
    each pay for their own until they meet. The batch is read, never written, by the loss."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._key: tuple[Any, ...] | None = None
        self._batch: Batch | None = None

    def steps_available(self, batch_size: int) -> int | None:
        return self.source.steps_available(batch_size)

    def batch(
        self, step: int, batch_size: int, device: torch.device, bf16: bool, part: Rows | None = None
    ) -> Batch:
        key = (step, batch_size, str(device), bf16, part)
        if self._batch is None or key != self._key:
            self._batch, self._key = None, None  # free the last one before making the next
            self._batch, self._key = self.source.batch(step, batch_size, device, bf16, part), key
        return self._batch

"""The one distillation loop: probes, winner retraining, the distill command and the benches all
train through `train` (or, several students at once on one teacher pass, `in_lockstep`).

What differs between them is data, not code: where targets come from (`sources`: cached teacher
top-k or the teacher online), where learning rates and validations fall (`schedule.Schedule`),
and whether checkpoints are written (`checkpoint.Checkpointing`, only retraining uses it).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, Protocol

import torch

from minitron.distill.checkpoint import Checkpointing
from minitron.distill.history import Validation
from minitron.distill.losses import IntermediateLoss
from minitron.distill.schedule import Schedule
from minitron.distill.sharded import Sharding
from minitron.distill.sources import Source
from minitron.distill.step import Callback, Head, History, LossWeights, Trainer, batch_loss
from minitron.errors import MinitronError
from minitron.eval.loss import validation_loss
from minitron.progress import Progress
from minitron.runtime import Placement, precision


class TrainSettings(Protocol):
    """What the loop reads from a probe's or a retraining's config."""

    @property
    def batch_size(self) -> int: ...
    @property
    def micro_batch(self) -> int | None: ...
    @property
    def weights(self) -> LossWeights: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def grad_clip(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def placement(self) -> Placement: ...


@dataclass
class TrainResult:
    """What a training run measured."""

    history: list[Validation]
    """One entry per validation."""
    tokens: int
    """Training tokens seen (all sessions)."""
    seconds: float
    """Wall time of this session."""
    train_seconds: float
    """Time in the batches' targets and the student's forward, backward and optimizer step."""
    eval_seconds: float
    """Time in validation."""
    earlier_seconds: float = 0.0
    """Training time of earlier sessions (a resumed run)."""
    resumed_at: int | None = None
    """The step this session resumed from (None: it started from the beginning)."""

    @property
    def loss(self) -> float:
        """The last validation loss."""
        return self.history[-1].val_loss


P = ParamSpec("P")
Run = Generator[int, None, TrainResult]
"""A training in progress (`training`): yields the micro-batch it stands at (counted over the whole
run: step × micro-batches per step + the ones of this step done), first where it starts, then after
every micro-batch, and returns its `TrainResult`. Runs driven `in_lockstep` thus read each
micro-batch of a shared source back to back."""


def micro_batches(rows: int, micro_batch: int | None) -> int:
    """How many micro-batches of `micro_batch` sequences make one process's `rows` of a step (None:
    one, the whole share)."""
    if micro_batch is None or micro_batch >= rows:
        return 1
    if micro_batch < 1 or rows % micro_batch:
        raise MinitronError(
            f"a micro-batch of {micro_batch} sequences does not divide the {rows} sequences each process "
            "trains on per step; choose a micro-batch that divides the batch (per worker)"
        )
    return rows // micro_batch


def _kill_mid_step(step: int) -> None:
    """The testing hook: with `MINITRON_KILL_MID_STEP=N`, SIGKILL this process once the first
    micro-batch of step N (counted from 1) has run its backward, before the optimizer step, as a
    crash in the middle of gradient accumulation would."""
    if os.environ.get("MINITRON_KILL_MID_STEP") == str(step + 1):
        os.kill(os.getpid(), signal.SIGKILL)


def run_to_end(run: Run) -> TrainResult:
    """Drive one `training` to its end."""
    while True:
        try:
            next(run)
        except StopIteration as stop:
            result: TrainResult = stop.value
            return result


def in_lockstep(runs: list[Run]) -> list[TrainResult | Exception]:
    """Drive several `training`s one step at a time, always the one furthest behind first, so runs
    that read a shared source (`sources.Shared`) ask for each step's batch back to back and its
    teacher pass is made once. Each run keeps its own torch RNG state between its steps, so a
    run's numbers do not depend on the others. A run that raises ends with its exception in its
    place of the result; the others go on."""
    results: list[TrainResult | Exception | None] = [None] * len(runs)
    at: dict[int, int] = {}
    states: dict[int, torch.Tensor] = {}
    devices: dict[int, list[torch.Tensor]] = {}

    def advance(i: int) -> None:
        if i in states:
            torch.set_rng_state(states[i])
            if devices.get(i):
                torch.cuda.set_rng_state_all(devices[i])
        try:
            at[i] = next(runs[i])
        except StopIteration as stop:
            results[i] = stop.value
            at.pop(i, None)
        except Exception as err:  # this run's failure is its result
            results[i] = err
            at.pop(i, None)
        else:
            states[i] = torch.get_rng_state()
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                devices[i] = torch.cuda.get_rng_state_all()

    for i in range(len(runs)):  # each starts (restores its checkpoint) and says where it stands
        advance(i)
    while at:
        advance(min(at, key=lambda i: (at[i], i)))
    return [r for r in results if r is not None]


def _to_the_end(steps: Callable[P, Run]) -> Callable[P, TrainResult]:
    def run(*args: P.args, **kwargs: P.kwargs) -> TrainResult:
        return run_to_end(steps(*args, **kwargs))

    return run


def training(
    student: Any,
    source: Source,
    schedule: Schedule,
    cfg: TrainSettings,
    validation: torch.Tensor,
    *,
    callback: Callback | None = None,
    checkpoint: Checkpointing | None = None,
    aux: IntermediateLoss | None = None,
    eval_batch_size: int = 8,
    progress: bool = False,
    desc: str = "train",
    sharding: Sharding | None = None,
    progress_file: Path | None = None,
) -> Run:
    """Distill `student` in place for `schedule.steps` steps of `cfg.batch_size` sequences, one step
    at a time (a `Run`; `train` drives it to the end).

    With `cfg.micro_batch` below the batch (per process), a step accumulates the gradients of its
    micro-batches, each loss weighted by its share of the step, before one optimizer step: the step
    of the whole batch up to summation order, in the memory of one micro-batch (teacher included).

    With `sharding`, this process is one of a data-parallel group (`minitron.distill.sharded`): the
    student is sharded in place, each step trains on this process's rows of the global batch, and
    `checkpoint` must be a `ShardedCheckpointing`.

    `progress`: a bar on a terminal, a line per interval in a log (`minitron.progress`);
    `progress_file`: the latest progress written there too (by the leader only when sharded), for a
    process that waits on this one (a Ray worker's output does not reach the run's log)."""
    start = time.perf_counter()
    available = source.steps_available(cfg.batch_size)
    if available is not None and available < schedule.steps:
        raise MinitronError(
            f"the teacher targets hold {available} steps of {cfg.batch_size} sequences; "
            f"{schedule.steps} are needed"
        )
    device, bf16 = cfg.placement.apply()
    student.to(device).train()
    part = None
    if sharding is not None:
        if aux is not None:
            raise MinitronError("sharded retraining does not support the intermediate loss")
        if cfg.weights.head is Head.CANDIDATES:
            # the decoder would run without the sharded root's hooks that gather its parameters
            raise MinitronError("sharded retraining needs the student's whole vocabulary (head=vocabulary)")
        part = sharding.part(cfg.batch_size)
        sharding.shard(student)
    first_row, last_row = part or (0, cfg.batch_size)
    micros = micro_batches(last_row - first_row, cfg.micro_batch)
    micro_rows = (last_row - first_row) // micros
    if aux is not None:
        aux.to(device)
    params = [p for p in student.parameters() if p.requires_grad]
    params += list(aux.parameters()) if aux is not None else []
    trainer = Trainer(params, schedule, cfg.weight_decay, cfg.grad_clip)
    resumed = checkpoint.restore(student, trainer.optimizer, aux) if checkpoint is not None else None
    if resumed is None:
        torch.manual_seed(cfg.seed)
        step, records, earlier = 0, [], 0.0
    else:
        step, records, earlier = resumed.step, resumed.history, resumed.seconds
        print(f"resuming {resumed.folder.parent} at step {step} of {schedule.steps}", flush=True)
    seq_len = int(validation.shape[1])
    history = History(cfg.batch_size * seq_len, callback, records)
    train_seconds = eval_seconds = 0.0
    session = time.perf_counter()

    if cfg.micro_batch is not None:  # a validation pass holds no more than a training one
        eval_batch_size = min(eval_batch_size, cfg.micro_batch)

    def evaluate() -> None:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        loss = validation_loss(student, validation, batch_size=eval_batch_size, progress=False).loss
        eval_seconds += time.perf_counter() - t0
        history.validated(step, loss)

    if step == 0 and 0 in schedule.validate_at and not history.records:
        evaluate()
    points = set(schedule.validate_at)
    bar = Progress(
        desc,
        schedule.steps,
        initial=step,
        tokens_per_step=cfg.batch_size * seq_len,
        enabled=progress,
        file=progress_file if sharding is None or sharding.leader else None,
    )
    sharded, states_asked = sharding is not None, aux is not None
    try:
        yield step * micros
        while step < schedule.steps:
            step_loss: torch.Tensor | None = None
            for micro in range(micros):
                t0 = time.perf_counter()
                start = first_row + micro * micro_rows
                rows = (start, start + micro_rows) if micros > 1 or part is not None else None
                batch = source.batch(step, cfg.batch_size, device, bf16, rows)
                with precision(device, bf16):
                    loss, states = batch_loss(student, batch, cfg.weights, states_asked, sharded)
                if aux is not None and batch.teacher_states is not None and states is not None:
                    inter = aux(states, batch.teacher_states)
                    # Minitron weighs the intermediate term to the size of the logit term
                    loss = loss + (loss.detach() / inter.detach().clamp_min(1e-6)) * inter
                del batch, states
                if micros > 1:
                    loss = loss / micros  # equal micro-batches: the mean over the step's positions
                    if sharding is not None:  # FSDP reduces gradients after the last one only
                        student.set_requires_gradient_sync(micro == micros - 1)
                trainer.backward(loss)
                step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                train_seconds += time.perf_counter() - t0
                if micro < micros - 1:
                    _kill_mid_step(step)
                    yield step * micros + micro + 1
            t0 = time.perf_counter()
            trainer.step(step)
            assert step_loss is not None
            reported = step_loss if sharding is None else sharding.mean(step_loss)
            history.train_loss(reported)
            step += 1
            train_seconds += time.perf_counter() - t0
            bar.update(1, loss=reported)
            if step in points:
                evaluate()
            if checkpoint is not None and checkpoint.due(step, schedule.steps):
                seconds = earlier + time.perf_counter() - session
                checkpoint.save(step, history.records, seconds, student, trainer.optimizer, aux)
            yield step * micros
    except BaseException:
        bar.close(finished=False)
        raise
    bar.close()
    student.eval()
    return TrainResult(
        history=history.records,
        tokens=schedule.steps * cfg.batch_size * seq_len,
        seconds=time.perf_counter() - start,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        earlier_seconds=earlier,
        resumed_at=None if resumed is None else resumed.step,
    )


train = _to_the_end(training)
"""`training` run to its end: the same arguments, the `TrainResult`."""

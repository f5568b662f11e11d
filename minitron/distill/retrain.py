"""Full retraining: long distillation, exact resume, final checkpoint and test loss.

`retrain(student, teacher, tokens, cfg, out, tokenizer)` trains for `cfg.tokens` tokens on the train
split (a seeded order, reshuffled per epoch) through the one training loop (`minitron.distill.loop`),
against the teacher online or against cached top-k targets over the same order. It validates every
`eval_every` steps and writes a checkpoint every `checkpoint_every` steps into `out/checkpoint/`
(`minitron.distill.checkpoint`); killed at any point, the same call resumes from the last
checkpoint and ends with the same weights as an uninterrupted run. While it trains, its latest
progress is in `out/progress.json` (`minitron.progress`). The finished model's loss on
the test split (which nothing chooses with) is measured, and the model is written to `out/` as a
plain Hugging Face checkpoint (safetensors, config, tokenizer) plus `provenance.json`, which is
written last and marks the job complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minitron import codec
from minitron.data.tokens import SEQ_LEN, TokenizedCorpus, pack
from minitron.distill.checkpoint import Checkpointing
from minitron.distill.continuation import ORIGIN, adopt, origin, prefix_of
from minitron.distill.final import save_final, versions
from minitron.distill.history import Validation
from minitron.distill.loop import Run, TrainResult, in_lockstep, run_to_end, training
from minitron.distill.losses import IntermediateLoss, evenly_mapped_layers
from minitron.distill.provenance import ContinuedFrom, Origin, Provenance
from minitron.distill.schedule import Schedule, decay_steps
from minitron.distill.sharded import ShardedCheckpointing, Sharding
from minitron.distill.sources import CachedTargets, OnlineTeacher, Shared, Source
from minitron.distill.step import Callback, LossWeights
from minitron.distill.targets import TeacherTargets
from minitron.errors import MinitronError
from minitron.eval.loss import (
    TEST_SEQUENCES,
    VALIDATION_SEQUENCES,
    domain_losses,
    domain_test_sets,
    validation_loss,
)
from minitron.model.architecture import Architecture
from minitron.progress import Progress
from minitron.runtime import Placement

#: The latest progress of a retraining in `out/` while it runs (`minitron.progress`): how a process
#: that waits on it (the search, for a winner retrained in a Ray worker) follows it.
PROGRESS = "progress.json"


@dataclass(frozen=True)
class RetrainConfig:
    """Settings of a full retraining run; all of them are part of the job's identity."""

    tokens: int
    """Training tokens (rounded down to whole steps)."""
    seq_len: int = SEQ_LEN
    """Tokens per packed sequence."""
    batch_size: int = 4
    """Sequences per optimizer step."""
    micro_batch: int | None = None
    """Sequences per forward and backward pass (per worker when sharded): a step accumulates the
    gradients of batch / micro-batch passes. None: the whole batch at once. Not part of what is
    computed (up to summation order), so not of a job's identity: a run may resume with another."""
    lr: float = 1.2e-3
    """Peak learning rate. Minitron used 1e-4 at batch 1152 × 8192; at batch 4 × 256 and 128k tokens
    1.2e-3 gave the lowest validation loss of 2e-4, 6e-4 and 1.2e-3 (`bench/rank_fidelity.py`:
    4.537, 4.396, 4.383 for the width-only 70M shape). 6e-4 was better for that shape at 64k
    tokens but worse for the depth-only shape the default search picks (docs/measurements.md)."""
    min_lr: float = 1e-5
    """Cosine decay floor."""
    warmup_steps: int = 40
    """Linear warm-up steps (Minitron: 40), capped at a tenth of the run."""
    decay_fraction: float = 1.0
    """Share of the run in the final cosine decay to `min_lr`; the steps before it, after the
    warm-up, stay at `lr` (warm-up/stable/decay). 1.0: the cosine over the whole run (Minitron's).
    A search's winners stay at `lr` for as long as a full probe runs and decay over the rest, so
    that their probes are their first steps (`minitron.distill.continuation`)."""
    weights: LossWeights = field(default_factory=LossWeights)
    """KD / CE mix and temperature; `kd=0` trains without a teacher."""
    intermediate: bool = False
    """Add the cosine loss on hidden states (helps heavily depth-pruned students)."""
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 50
    """Steps between validations."""
    eval_sequences: int = VALIDATION_SEQUENCES
    """Validation sequences (of `seq_len`) per validation."""
    test_sequences: int = TEST_SEQUENCES
    """Test sequences behind the final test loss (each part of a mix: half as many)."""
    checkpoint_every: int = 50
    """Steps between checkpoints."""
    seed: int = 0
    placement: Placement = field(default_factory=Placement)
    """Device, precision and CPU threads (only the precision is part of the job's identity)."""

    @property
    def steps(self) -> int:
        return self.tokens // (self.seq_len * self.batch_size)

    def schedule(self) -> Schedule:
        """Warm-up capped at a tenth of the run, the peak, the cosine to `min_lr` over the last
        `decay_fraction`, validations every `eval_every`."""
        steps = self.steps
        warmup = min(self.warmup_steps, max(steps // 10, 1))
        return Schedule(
            steps,
            self.lr,
            self.min_lr,
            warmup,
            Schedule.every(steps, self.eval_every, start=True),
            decay_steps(steps, self.decay_fraction),
        )


@dataclass
class RetrainResult:
    """A finished run."""

    out: Path
    """Folder of the final Hugging Face checkpoint."""
    history: list[Validation]
    """One entry per validation."""
    provenance: Provenance
    """Everything written to `provenance.json`."""
    test_loss: float
    """Loss on the test split (nothing chose with it)."""
    test_losses: dict[str, float] = field(default_factory=dict)
    """Loss on each part's test split, for a mix (`minitron.data.mix`); empty for one corpus."""


def job_identity(
    cfg: RetrainConfig, student: Any, teacher_id: str, data_key: str, targets: dict[str, Any] | None = None
) -> str:
    """A hash of everything that makes two runs the same job (resume only continues the same job)."""
    # where and in what pieces it computes is not what it computes (up to summation order)
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("placement", "micro_batch")}
    config["bf16"] = cfg.placement.bf16  # the precision changes the numbers; device and threads do not
    payload = {
        "config": config,
        "student": student.config.to_json_string(use_diff=False),
        "teacher": teacher_id,
        "data": data_key,
        "targets": targets,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _layer_map(student: Any, teacher: Any, kept_layers: list[int] | None) -> list[tuple[int, int]]:
    s_layers, t_layers = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    mapped = (
        kept_layers
        if kept_layers and len(kept_layers) == s_layers
        else evenly_mapped_layers(s_layers, t_layers)
    )
    # hidden_states[0] is the embedding output; layer i's output is hidden_states[i + 1]
    return [(i + 1, t + 1) for i, t in enumerate(mapped)]


def retrain(
    student: Any,
    teacher: Any | None,
    tokens: TokenizedCorpus,
    cfg: RetrainConfig,
    out: Path,
    tokenizer: Any,
    teacher_id: str = "",
    provenance: Origin | None = None,
    kept_layers: list[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    targets: TeacherTargets | None = None,
    sharding: Sharding | None = None,
    start_from: Path | None = None,
) -> RetrainResult:
    """Distill `student` (trained in place) and save it to `out`; resumes from `out/checkpoint/`.

    With `targets` (the teacher's top-k logits over this run's training order: `compute_targets` on
    `minitron.distill.sources.training_windows`) the teacher is not run at all: retraining costs what a
    probe costs per token. Otherwise the teacher runs online on every batch.

    With `sharding` this process is one worker of a data-parallel group (`minitron.distill.sharded`):
    every worker calls `retrain` with the same arguments; rank 0 writes the final checkpoint.

    With `start_from` (a probe's state, `minitron.distill.continuation`) a run that has no checkpoint
    yet continues from the probe's end when the probe is its first steps, else starts afresh.
    """
    _check(cfg, teacher, targets)
    source = _source(teacher, tokens, cfg, targets)
    trainee = Trainee(student, Path(out), provenance, kept_layers, start_from)
    job = _Job(trainee, teacher, tokens, cfg, tokenizer, teacher_id, targets)
    return job.finish(run_to_end(job.run(source, callback, progress, sharding)), sharding, progress)


@dataclass
class Trainee:
    """One of the students `retrain_together` trains."""

    student: Any
    """Trained in place."""
    out: Path
    """Where its final checkpoint goes (its own `checkpoint/` to resume from)."""
    provenance: Origin | None = None
    """What the caller says of its origin, for its `provenance.json`."""
    kept_layers: list[int] | None = None
    """The teacher layers it kept (maps the intermediate loss)."""
    start_from: Path | None = None
    """A probe state to continue from (`minitron.distill.continuation`), when it is a prefix."""


def retrain_together(
    trainees: list[Trainee],
    teacher: Any,
    tokens: TokenizedCorpus,
    cfg: RetrainConfig,
    tokenizer: Any,
    teacher_id: str = "",
    progress: bool = False,
) -> list[RetrainResult | Exception]:
    """`retrain` several students with the teacher online, in lock-step on one teacher pass per step.

    Every student is the job `retrain` would run alone (the same identity, checkpoints and resume,
    the same data order), and ends with the same weights: the teacher's output for a step is made
    once and handed to each (`sources.Shared`, `loop.in_lockstep`). What it saves is the teacher's
    forward pass of every student but the first, about a quarter of a 70M student's step with the
    135M teacher in fp32 (docs/speed.md). Results in the order of `trainees`; a student whose
    training fails has its exception there, and the others go on."""
    _check(cfg, teacher, None)
    source = Shared(_source(teacher, tokens, cfg, None))
    jobs = [_Job(t, teacher, tokens, cfg, tokenizer, teacher_id, None) for t in trainees]
    runs = [job.run(source, None, progress, None) for job in jobs]
    results: list[RetrainResult | Exception] = []
    for job, trained in zip(jobs, in_lockstep(runs), strict=True):
        if isinstance(trained, Exception):
            results.append(trained)
            continue
        try:
            results.append(job.finish(trained, None, progress))
        except Exception as err:  # this student's failure is its result
            results.append(err)
    return results


def _check(cfg: RetrainConfig, teacher: Any | None, targets: TeacherTargets | None) -> None:
    if cfg.weights.kd and teacher is None and targets is None:
        raise MinitronError("a KD weight needs a teacher")
    if cfg.steps < 1:
        raise MinitronError(
            f"--tokens {cfg.tokens:,} is less than one step of {cfg.batch_size} x {cfg.seq_len} tokens"
        )
    if targets is not None and cfg.intermediate:
        raise MinitronError("the intermediate loss needs the teacher online, not cached targets")


def _source(
    teacher: Any | None, tokens: TokenizedCorpus, cfg: RetrainConfig, targets: TeacherTargets | None
) -> Source:
    if targets is not None:
        return CachedTargets(targets)
    device, _ = cfg.placement.apply()
    if teacher is not None:
        teacher.to(device).eval()
    want_states = cfg.intermediate and teacher is not None
    return OnlineTeacher(
        teacher if cfg.weights.kd else None, pack(tokens.train, cfg.seq_len), cfg.seed, want_states
    )


class _Job:
    """One student's retraining: its training run, then its test loss and final checkpoint."""

    def __init__(
        self,
        trainee: Trainee,
        teacher: Any | None,
        tokens: TokenizedCorpus,
        cfg: RetrainConfig,
        tokenizer: Any,
        teacher_id: str,
        targets: TeacherTargets | None,
    ) -> None:
        self.trainee, self.teacher, self.tokens, self.cfg = trainee, teacher, tokens, cfg
        self.tokenizer, self.teacher_id, self.targets = tokenizer, teacher_id, targets
        self.validation = pack(tokens.validation, cfg.seq_len, cfg.eval_sequences)
        self.test = pack(tokens.test, cfg.seq_len, cfg.test_sequences)
        self.domain_tests = domain_test_sets(tokens, cfg.seq_len, cfg.test_sequences)
        self.job = job_identity(
            cfg, trainee.student, teacher_id, tokens.key, None if targets is None else targets.meta
        )

    def run(
        self, source: Source, callback: Callback | None, progress: bool, sharding: Sharding | None
    ) -> Run:
        cfg, student, out = self.cfg, self.trainee.student, self.trainee.out
        self._continue(sharding)
        aux = None
        if self.targets is None and cfg.intermediate and self.teacher is not None:
            aux = IntermediateLoss(
                student.config.hidden_size,
                self.teacher.config.hidden_size,
                _layer_map(student, self.teacher, self.trainee.kept_layers),
            )
        return training(
            student,
            source,
            cfg.schedule(),
            cfg,
            self.validation,
            callback=callback,
            checkpoint=(
                Checkpointing(out / "checkpoint", self.job, cfg.checkpoint_every)
                if sharding is None
                else ShardedCheckpointing(out / "checkpoint", self.job, cfg.checkpoint_every, sharding)
            ),
            aux=aux,
            eval_batch_size=cfg.batch_size,
            progress=progress,
            desc="retrain",
            sharding=sharding,
            progress_file=out / PROGRESS,
        )

    def _continue(self, sharding: Sharding | None) -> None:
        """Adopt the trainee's probe state as the checkpoint to resume from, when there is none yet
        (a run that has one resumes it, whatever it started from)."""
        cfg, out, start = self.cfg, self.trainee.out, self.trainee.start_from
        self.fresh_because: str | None = None
        if (out / "checkpoint" / "state.json").exists():
            return
        (out / ORIGIN).unlink(missing_ok=True)  # left by an adoption whose checkpoint never landed
        if start is None:
            return
        if sharding is not None or (cfg.intermediate and self.teacher is not None):
            why = "sharded retraining" if sharding is not None else "the intermediate loss adds parameters"
            self.fresh_because = why
            print(f"[retrain] {out.name}: starts from its pruned weights ({why})", flush=True)
            return
        prefix = prefix_of(
            self.trainee.student, cfg.schedule(), cfg.batch_size, cfg.seq_len, cfg.seed, self.tokens.key
        )
        adopted = adopt(start, out / "checkpoint", self.job, prefix)
        if isinstance(adopted, str):
            self.fresh_because = adopted
            print(f"[retrain] {out.name}: starts from its pruned weights; {adopted}", flush=True)
        else:
            print(
                f"[retrain] {out.name}: continues from its probe at step {adopted['step']} "
                f"({adopted['tokens']:,} tokens)",
                flush=True,
            )

    def finish(self, result: TrainResult, sharding: Sharding | None, progress: bool) -> RetrainResult:
        cfg, student, out, targets = self.cfg, self.trainee.student, self.trainee.out, self.targets
        device, bf16 = cfg.placement.apply()
        # the test losses take a while too (64 + 32 per part sequences): counted in the same file
        size = cfg.micro_batch or cfg.batch_size  # a forward pass holds no more than a training one
        batches = sum(-(-len(s) // size) for s in (self.test, *self.domain_tests.values()))
        file = out / PROGRESS if sharding is None or sharding.leader else None
        tested = Progress("test loss", batches, unit="batch", enabled=progress, draw=False, file=file)
        test_loss = validation_loss(student, self.test, size, progress=False, counter=tested).loss
        test_losses = domain_losses(student, self.domain_tests, size, counter=tested)
        tested.close()
        continued = origin(out)
        record = Provenance(
            origin=self.trainee.provenance,
            job=self.job,
            teacher=self.teacher_id,
            targets=None if targets is None else targets.meta,
            architecture=Architecture.from_mapping(student.config).as_dict(),
            params=sum(p.numel() for p in student.parameters()),
            retrain=codec.encode({**dataclasses.asdict(cfg), "bf16_used": bf16, "device_used": str(device)}),
            data=self.tokens.key,
            tokens_trained=result.tokens,
            continued_from=codec.decode(ContinuedFrom, continued, ORIGIN) if continued is not None else None,
            not_continued_because=getattr(self, "fresh_because", None),
            history=result.history,
            final_val_loss=result.loss,
            test_loss=test_loss,
            test_losses=test_losses,
            test_tokens=int(self.test.numel() - len(self.test)),
            train_seconds=round(result.earlier_seconds + result.train_seconds + result.eval_seconds, 1),
            wall_seconds_this_session=round(result.seconds, 1),
            resumed_at_step=result.resumed_at,
            versions=versions(),
            workers=sharding.world if sharding is not None else None,
        )
        if sharding is None:
            save_final(out, student, self.tokenizer, record)
        else:  # gathered onto rank 0 into a fresh model from the student's config
            full = sharding.full_model(student)
            if full is not None:
                save_final(out, full, self.tokenizer, record)
            sharding.barrier()
        if sharding is None or sharding.leader:
            (out / PROGRESS).unlink(missing_ok=True)  # the run is over: provenance.json says the rest
        return RetrainResult(
            out=out, history=result.history, provenance=record, test_loss=test_loss, test_losses=test_losses
        )

"""A probe's end state, kept so that a winner's retraining continues from it instead of restarting.

A search probes each candidate for a few steps and retrains its winners for many. When the probe's
learning rates are the first rates of the retraining (`schedule.Schedule`: warm-up, then a constant
phase; the decay comes only at the end of the retraining), and it read the first batches of the
retraining's data order (`sources.training_windows`), then the probe *is* the retraining's first
steps. So a probe that runs to its end writes its state (`ProbeState`: weights, AdamW moments, RNG,
step, validation history, and what makes it a prefix), and the winner's retraining adopts it as
the checkpoint it resumes from (`adopt`), after checking that the state really is such a prefix.
Whatever does not match (another schedule, seed, data, batch or shape) is refused with the reason,
and the winner starts from its pruned weights as before.

What differs between the two parts: the probe distils on the cached top-k teacher logits (the
student's softmax over the batch's candidate tokens), the rest of a retraining with the teacher
online by default. The continued winner's provenance records where its first steps came from.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from minitron.atomic import publish, staging_dir, write_json
from minitron.distill.checkpoint import Checkpointing, CheckpointState, Resumed
from minitron.distill.history import Validation
from minitron.distill.schedule import Schedule

ORIGIN = "continued_from.json"
"""Written into a retraining's folder when it adopts a probe state; read into its provenance."""


@dataclass(frozen=True)
class Prefix:
    """What a probe state must share with a retraining to be its first steps."""

    architecture: dict[str, int]
    batch_size: int
    seq_len: int
    seed: int
    """The data order's seed (`sources.TrainOrder`)."""
    data: str
    """The tokenized data's key (`TokenizedCorpus.key`)."""
    schedule: dict[str, Any]
    """The probe's `Schedule` (its steps, rates, warm-up, decay)."""

    def mismatch(self, other: Prefix, steps: int) -> str | None:
        """Why this probe (`self`, `steps` trained) is not the first steps of `other`; None if it is."""
        for name in ("architecture", "batch_size", "seq_len", "seed", "data"):
            if getattr(self, name) != getattr(other, name):
                return f"its {name.replace('_', ' ')} differs from the retraining's"
        mine, theirs = _schedule(self.schedule), _schedule(other.schedule)
        if not mine.is_prefix_of(theirs, steps):
            return (
                f"its {steps} steps do not have the retraining's learning rates (the retraining "
                f"decays from step {theirs.decay_start} of {theirs.steps})"
            )
        return None


def _schedule(fields: dict[str, Any]) -> Schedule:
    return Schedule(**{**fields, "validate_at": tuple(fields["validate_at"])})


def prefix_of(
    student: Any, schedule: Schedule, batch_size: int, seq_len: int, seed: int, data: str
) -> Prefix:
    """The `Prefix` of a run of `student` on `schedule`."""
    from minitron.model.architecture import Architecture

    return Prefix(
        architecture=Architecture.from_mapping(student.config).as_dict(),
        batch_size=batch_size,
        seq_len=seq_len,
        seed=seed,
        data=data,
        schedule=asdict(schedule),
    )


class ProbeState(Checkpointing):
    """The training loop's checkpoint hook for a probe: one checkpoint, after its last step, in the
    retraining's checkpoint format, with the `Prefix` and `origin` (who wrote it) in its state.

    It never restores: a probe that runs again (a retried trial) starts over and writes it anew."""

    def __init__(self, folder: Path, prefix: Prefix, origin: dict[str, Any]) -> None:
        super().__init__(folder, job="probe", every=0)
        self.prefix, self.origin = prefix, origin

    def due(self, step: int, steps: int) -> bool:
        return step == steps

    def write_state(self, folder: Path, step: int, history: list[Validation], seconds: float) -> None:
        CheckpointState(self.job, step, list(history), seconds, asdict(self.prefix), self.origin).write(
            folder
        )

    def restore(self, student: Any, optimizer: Any, aux: Any) -> Resumed | None:
        return None


def adopt(probe: Path, checkpoint: Path, job: str, prefix: Prefix) -> dict[str, Any] | str:
    """Make the probe state in `probe` the checkpoint of retraining `job` in `checkpoint`, when it
    is a prefix of that retraining (`prefix`). Returns what was adopted (the origin, the step and
    tokens, written to `<checkpoint>/../continued_from.json` first), or why not."""
    state_file = probe / "state.json"
    if not state_file.exists():
        return f"no probe state in {probe}"
    state = CheckpointState.read(probe)
    if state.job != "probe" or state.prefix is None:
        return f"{probe} holds no probe state"
    step = state.step
    reason = Prefix(**state.prefix).mismatch(prefix, step)
    if reason is not None:
        return f"the probe state is not the retraining's start: {reason}"
    record = {
        **(state.origin or {}),
        "step": step,
        "tokens": step * prefix.batch_size * prefix.seq_len,
        "seconds": state.seconds,
    }
    # the origin first: a kill before the checkpoint is published leaves no checkpoint, and the
    # next attempt adopts again (and rewrites it)
    write_json(checkpoint.parent / ORIGIN, record)
    with staging_dir(checkpoint) as tmp:
        for name in ("student.safetensors", "optimizer.pt"):
            shutil.copyfile(probe / name, tmp / name)
        Checkpointing(checkpoint, job, 0).write_state(tmp, step, state.history, state.seconds)
        publish(tmp, checkpoint)
    return record


def origin(out: Path) -> dict[str, Any] | None:
    """What a retraining in `out` continued from (`adopt`), or None when it started from its weights."""
    path = out / ORIGIN
    return json.loads(path.read_text()) if path.exists() else None

"""One winner's retraining job: what it is (`WinnerJob`), how it runs in one process or as one of
several Ray Train workers (`retrain_winner`), how several run in one process on one teacher pass
(`retrain_winners_together`), and how a finished one is read back (`finished_result`).

A winner is cut again from the teacher (pruning is deterministic given the importance): from the
teacher's safetensors checkpoint, slice by slice, without loading the teacher, unless the teacher
runs online or has no such checkpoint (a GGUF file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.distill.provenance import Provenance, WinnerOrigin
from minitron.distill.sharded import Sharding
from minitron.distill.targets import TeacherTargets
from minitron.errors import failure_line
from minitron.importance.scores import Importance
from minitron.model.architecture import Architecture
from search.outputs.outcomes import WinnerResult
from search.plan.settings import SearchSettings


@dataclass(frozen=True)
class WinnerJob:
    rank: int
    trial_id: str
    arch: Architecture
    out: str
    teacher: str
    settings: SearchSettings
    probe_state: str | None = None
    """The winner's probe state to continue from (`minitron.distill.continuation`); None: start
    from the pruned weights."""


def retrain_winner(
    job: WinnerJob, importance: Importance, targets: TeacherTargets | None, sharding: Sharding | None = None
) -> WinnerResult:
    """Runs inside a Ray worker: prune, distill, save; returns its `WinnerResult`. With
    `sharding`, this is one of the winner's Ray Train workers (`search.run.train_workers`)."""
    from minitron.distill.retrain import retrain

    s = job.settings
    (student,), teacher, tokenizer, fingerprint = _students_and_teacher(
        [job], importance, online=targets is None
    )
    trainee = _trainee(job, student, importance)
    result = retrain(
        student,
        teacher,
        _tokens(s, tokenizer),
        s.retrain,
        trainee.out,
        tokenizer,
        teacher_id=f"{job.teacher}:{fingerprint}",
        provenance=trainee.provenance,
        kept_layers=trainee.kept_layers,
        progress=False,
        targets=targets,
        sharding=sharding,
        start_from=trainee.start_from,
    )
    return WinnerResult.of(job.out, result.provenance)


def retrain_winners_together(jobs: list[WinnerJob], importance: Importance) -> list[WinnerResult]:
    """Runs inside a Ray worker: every winner cut and retrained with the teacher online, in lock-step
    on one teacher pass per step (`minitron.distill.retrain.retrain_together`); each winner's job,
    checkpoints and final weights are the ones `retrain_winner` gives it. One `WinnerResult` per
    job, in order; a winner whose training fails has its error there."""
    from minitron.distill.retrain import retrain_together

    s = jobs[0].settings
    students, teacher, tokenizer, fingerprint = _students_and_teacher(jobs, importance, online=True)
    trainees = [_trainee(job, student, importance) for job, student in zip(jobs, students, strict=True)]
    results = retrain_together(
        trainees,
        teacher,
        _tokens(s, tokenizer),
        s.retrain,
        tokenizer,
        teacher_id=f"{jobs[0].teacher}:{fingerprint}",
    )
    return [
        WinnerResult.failed(job.out, failure_line(result))
        if isinstance(result, Exception)
        else WinnerResult.of(job.out, result.provenance)
        for job, result in zip(jobs, results, strict=True)
    ]


def _tokens(s: SearchSettings, tokenizer: Any) -> Any:
    from search.run.data import run_tokens

    return run_tokens(s, tokenizer, None)


def _trainee(job: WinnerJob, student: Any, importance: Importance) -> Any:
    from minitron.distill.retrain import Trainee
    from minitron.importance.selection import select

    s = job.settings
    layers = list(select(importance, job.arch, s.plan.depth).layers)
    return Trainee(
        student,
        Path(job.out),
        provenance=WinnerOrigin(
            search_run=s.name,
            rank=job.rank,
            trial_id=job.trial_id,
            importance=importance.meta.get("calibration"),
            depth_method=s.plan.depth.value,
            layer_block=job.arch.layer_block,
            kept_layers=layers,
        ),
        kept_layers=layers,
        start_from=Path(job.probe_state) if job.probe_state else None,
    )


def _students_and_teacher(
    jobs: list[WinnerJob], importance: Importance, online: bool
) -> tuple[list[Any], Any, Any, str]:
    """The winners cut afresh (fp32, on the CPU until training moves them), the teacher model only
    when it runs online (on the retraining's device, in its dtype there), the tokenizer and the
    teacher's fingerprint.

    Why: with cached targets a winner never needs the teacher's weights beyond the slices it keeps,
    so it reads them from the checkpoint (an 8B teacher in fp32 is 32 GB of host memory per
    winner); a teacher without a safetensors checkpoint (a GGUF file) is loaded whole, as before."""
    import torch

    from minitron.model.fingerprint import model_fingerprint
    from minitron.model.teacher import checkpoint_folder, load_teacher, load_tokenizer
    from minitron.prune import prune, prune_from_checkpoint

    job = jobs[0]
    s = job.settings
    depth = s.plan.depth
    checkpoint = checkpoint_folder(job.teacher)
    fingerprint = importance.meta.get("teacher_fingerprint")
    if checkpoint is None or fingerprint is None:
        whole = load_teacher(job.teacher, offline=True, **s.teacher_options())
        students = [prune(whole.model, j.arch, importance, depth=depth) for j in jobs]
        return students, whole.model if online else None, whole.tokenizer, model_fingerprint(whole.model)
    students = [prune_from_checkpoint(checkpoint, j.arch, importance, depth, torch.float32) for j in jobs]
    tokenizer, _ = load_tokenizer(job.teacher, s.trust_remote_code)
    teacher = None
    if online:
        placement = s.retrain.placement.teacher()
        teacher = load_teacher(job.teacher, offline=True, **s.teacher_options(), **placement).model
    return students, teacher, tokenizer, str(fingerprint)


def finished_result(out: Path) -> WinnerResult | None:
    """The result of a winner retrained earlier (its `provenance.json` is written last), else None."""
    if not (out / "provenance.json").exists():
        return None
    return WinnerResult.of(out, Provenance.load(out))

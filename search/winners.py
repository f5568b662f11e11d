"""Retraining the winners: each one a Ray task with a trial's resources, resumable on its own.

A winner is cut again from the teacher (pruning is deterministic given the importance) and distilled
for the run's retraining tokens into `winners/<rank>-<architecture>/`: on the teacher targets cached
for the run (the same top-k logits the probes used, over the whole retraining stream) or, with
`--retrain-teacher online`, with the teacher running on every batch. Its loss on the test split,
which nothing in the search chose with, is what the report quotes. A
winner whose folder already holds `provenance.json` is finished and skipped; an interrupted one
resumes from its checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.distill.sharded import Sharding
from minitron.distill.targets import TeacherTargets
from minitron.faults import kill_point
from minitron.importance.scores import Importance
from minitron.model.architecture import Architecture
from search.records import TrialRecord
from search.rundir import RunDir
from search.settings import SearchSettings
from search.summary import WinnerResult


@dataclass(frozen=True)
class WinnerJob:
    rank: int
    trial_id: str
    arch: Architecture
    out: str
    teacher: str
    settings: SearchSettings


def winner_dir(run: RunDir, rank: int, arch: Architecture) -> Path:
    return run.winners / f"{rank}-{arch.short()}"


def retrain_winner(
    job: WinnerJob, importance: Importance, targets: TeacherTargets | None, sharding: Sharding | None = None
) -> dict[str, Any]:
    """Runs inside a Ray worker: prune, distill, save; returns the `WinnerResult` as JSON. With
    `sharding`, this is one of the winner's Ray Train workers (`search.train_workers`)."""
    from minitron.data.corpus import load_corpus
    from minitron.data.tokens import tokenize_corpus
    from minitron.distill.retrain import retrain
    from minitron.importance.selection import select

    s = job.settings
    student, teacher, tokenizer, fingerprint = _student_and_teacher(job, importance, online=targets is None)
    tokens = tokenize_corpus(load_corpus(s.data, offline=True), tokenizer)
    result = retrain(
        student,
        teacher,
        tokens,
        s.retrain,
        Path(job.out),
        tokenizer,
        teacher_id=f"{job.teacher}:{fingerprint}",
        provenance={
            "search_run": s.name,
            "rank": job.rank,
            "trial_id": job.trial_id,
            "importance": importance.meta.get("calibration"),
            "depth_method": s.plan.depth.value,
        },
        kept_layers=list(select(importance, job.arch, s.plan.depth).layers),
        progress=False,
        targets=targets,
        sharding=sharding,
    )
    return WinnerResult(
        path=job.out,
        final_loss=result.history[-1]["val_loss"],
        tokens_trained=result.provenance["tokens_trained"],
        test_loss=result.test_loss,
    ).to_json()


def _student_and_teacher(job: WinnerJob, importance: Importance, online: bool) -> tuple[Any, Any, Any, str]:
    """The winner cut afresh (fp32, on the CPU until training moves it), the teacher model only
    when it runs online (on the retraining's device, in its dtype there), the tokenizer and the
    teacher's fingerprint.

    Why: with cached targets a winner never needs the teacher's weights beyond the slices it keeps,
    so it reads them from the checkpoint (an 8B teacher in fp32 is 32 GB of host memory per
    winner); a teacher without a safetensors checkpoint (a GGUF file) is loaded whole, as before."""
    import torch

    from minitron.model.fingerprint import model_fingerprint
    from minitron.model.teacher import checkpoint_folder, load_teacher, load_tokenizer
    from minitron.prune import prune, prune_from_checkpoint

    s = job.settings
    depth = s.plan.depth
    checkpoint = checkpoint_folder(job.teacher)
    fingerprint = importance.meta.get("teacher_fingerprint")
    if checkpoint is None or fingerprint is None:
        whole = load_teacher(job.teacher, offline=True, **s.teacher_options())
        student = prune(whole.model, job.arch, importance, depth=depth)
        return student, whole.model if online else None, whole.tokenizer, model_fingerprint(whole.model)
    student = prune_from_checkpoint(checkpoint, job.arch, importance, depth, torch.float32)
    tokenizer, _ = load_tokenizer(job.teacher, s.trust_remote_code)
    teacher = None
    if online:
        placement = s.retrain.placement.teacher()
        teacher = load_teacher(job.teacher, offline=True, **s.teacher_options(), **placement).model
    return student, teacher, tokenizer, str(fingerprint)


def finished_result(out: Path) -> WinnerResult | None:
    """The result of a winner retrained earlier (its `provenance.json` is written last), else None."""
    provenance = out / "provenance.json"
    if not provenance.exists():
        return None
    record = json.loads(provenance.read_text())
    return WinnerResult(
        str(out), record["final_val_loss"], record["tokens_trained"], test_loss=record.get("test_loss")
    )


def retrain_winners(
    run: RunDir,
    settings: SearchSettings,
    teacher: str,
    importance: Importance,
    winners: list[TrialRecord],
    targets: TeacherTargets | None = None,
) -> dict[str, WinnerResult]:
    """Retrain every winner (in parallel as resources allow); results by trial id."""
    results: dict[str, WinnerResult] = {}
    jobs = []
    for rank, winner in enumerate(winners, 1):
        out = winner_dir(run, rank, winner.architecture)
        done = finished_result(out)
        if done is not None:
            results[winner.trial_id] = done
            print(f"[winners] {winner.architecture.short()} already retrained", flush=True)
            continue
        jobs.append(WinnerJob(rank, winner.trial_id, winner.architecture, str(out), teacher, settings))
    if not jobs:
        return results
    import ray

    from search.ray_runtime import error_line, remote, start_ray

    start_ray(settings.resources)
    shared, cached = ray.put(importance), ray.put(targets)
    tokens, workers = settings.retrain.tokens, settings.resources.retrain_workers
    source = "cached teacher targets" if targets is not None else "the teacher online"
    if workers > 1:  # one winner at a time, each on all its workers
        from search.train_workers import retrain_sharded

        for job in jobs:
            print(
                f"[winners] retraining {job.arch.short()} ({tokens:,} tokens on {source}, "
                f"{workers} Ray Train workers)",
                flush=True,
            )
            result = retrain_sharded(job, shared, cached, settings.resources, run.root / "train")
            results[job.trial_id] = result
            if result.error:
                print(f"[winners] {job.arch.short()} failed: {result.error}", flush=True)
            else:
                kill_point("retrain")
        return results
    task = remote(retrain_winner, settings.resources)
    refs = [task.remote(job, shared, cached) for job in jobs]
    for job, ref in zip(jobs, refs, strict=True):
        print(f"[winners] retraining {job.arch.short()} ({tokens:,} tokens on {source})", flush=True)
        try:
            results[job.trial_id] = WinnerResult.from_json(ray.get(ref))
            kill_point("retrain")
        except ray.exceptions.RayError as err:
            last = error_line(err)
            results[job.trial_id] = WinnerResult(job.out, None, error=last)
            print(f"[winners] {job.arch.short()} failed: {last}", flush=True)
    return results

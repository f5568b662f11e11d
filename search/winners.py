"""Retraining the winners: each one a Ray task with a trial's resources, resumable on its own.

A winner is cut again from the teacher (pruning is deterministic given the importance) and distilled
with the teacher online for `--retrain-tokens` tokens into `winners/<rank>-<architecture>/`. A winner
whose folder already holds `provenance.json` is finished and skipped; an interrupted one resumes
from its checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.architecture import Architecture
from minitron.faults import kill_point
from minitron.importance import Importance
from search.progress import error_line
from search.rundir import RunDir
from search.settings import SearchSettings
from search.tuning import WORKER_RETRIES


@dataclass(frozen=True)
class WinnerJob:
    rank: int
    trial_id: str
    arch: Architecture
    out: str
    teacher: str
    settings: SearchSettings
    threads: int | None


def retrain_winner(job: WinnerJob, importance: Importance) -> dict[str, Any]:
    """Runs inside a Ray worker: prune, distill, save; returns the final loss and the path."""
    from minitron.corpus import load_corpus
    from minitron.distill.core import LossWeights
    from minitron.distill.retrain import RetrainConfig, retrain
    from minitron.importance import model_fingerprint
    from minitron.prune import prune
    from minitron.selection import select
    from minitron.teacher import load_teacher
    from minitron.tokens import tokenize_corpus

    s = job.settings
    teacher = load_teacher(job.teacher, offline=True, **s.teacher_options())
    tokens = tokenize_corpus(load_corpus(s.data, offline=True), teacher.tokenizer)
    student = prune(teacher.model, job.arch, importance, depth=s.depth)
    steps = max(s.retrain_tokens // (s.seq_len * s.batch_size), 1)
    cfg = RetrainConfig(
        tokens=s.retrain_tokens,
        seq_len=s.seq_len,
        batch_size=s.batch_size,
        lr=s.retrain_lr,
        weights=LossWeights(),
        eval_every=max(steps // 4, 1),
        eval_sequences=s.eval_sequences,
        checkpoint_every=max(steps // 8, 1),
        seed=s.seed,
        threads=job.threads,
    )
    result = retrain(
        student,
        teacher.model,
        tokens,
        cfg,
        Path(job.out),
        teacher.tokenizer,
        teacher_id=f"{job.teacher}:{model_fingerprint(teacher.model)}",
        provenance={
            "search_run": s.name,
            "rank": job.rank,
            "trial_id": job.trial_id,
            "importance": importance.meta.get("calibration"),
            "depth_method": s.depth,
        },
        kept_layers=list(select(importance, job.arch, s.depth).layers),
        progress=False,
    )
    return {
        "path": job.out,
        "final_loss": result.history[-1]["val_loss"],
        "tokens_trained": result.provenance["tokens_trained"],
    }


def retrain_winners(
    run: RunDir, settings: SearchSettings, teacher: str, importance: Importance, winners: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Retrain every winner (in parallel as resources allow); results by trial id."""
    import ray

    from search.runner import cpu_threads

    results: dict[str, dict[str, Any]] = {}
    jobs = []
    for rank, winner in enumerate(winners, 1):
        arch = Architecture(**winner["architecture"])
        out = run.winners / f"{rank}-{arch.short()}"
        provenance = out / "provenance.json"
        if provenance.exists():
            record = json.loads(provenance.read_text())
            results[winner["trial_id"]] = {
                "path": str(out),
                "final_loss": record["final_val_loss"],
                "tokens_trained": record["tokens_trained"],
            }
            print(f"[winners] {arch.short()} already retrained", flush=True)
            continue
        jobs.append(
            WinnerJob(rank, winner["trial_id"], arch, str(out), teacher, settings, cpu_threads(settings))
        )
    if not jobs:
        return results
    task = ray.remote(
        num_cpus=settings.cpus_per_trial, num_gpus=settings.gpus_per_trial, max_retries=WORKER_RETRIES
    )(retrain_winner)
    shared = ray.put(importance)
    refs = [task.remote(job, shared) for job in jobs]
    for job, ref in zip(jobs, refs, strict=True):
        print(f"[winners] retraining {job.arch.short()} ({settings.retrain_tokens:,} tokens)", flush=True)
        try:
            results[job.trial_id] = ray.get(ref)
            kill_point("retrain")
        except ray.exceptions.RayError as err:
            last = error_line(err)
            results[job.trial_id] = {"path": job.out, "final_loss": None, "error": last}
            print(f"[winners] {job.arch.short()} failed: {last}", flush=True)
    return results

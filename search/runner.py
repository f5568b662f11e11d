"""The search, stage by stage: teacher → importance → teacher targets → Ray Tune → ranking →
retraining of the winners → report. Each stage logs its start, end and duration, and everything it
produces lands in the run directory, so `--resume` can skip what is finished.
"""

from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from minitron.architecture import Architecture
from minitron.budget import format_count
from minitron.calibrate import importance_for
from minitron.corpus import load_corpus
from minitron.distill.core import LossWeights
from minitron.distill.probe import ProbeConfig
from minitron.distill.targets import TeacherTargets, compute_targets, probe_batches
from minitron.errors import Interrupted, MinitronError
from minitron.evaluate import check_data
from minitron.faults import kill_point
from minitron.importance import Importance, ImportanceConfig
from minitron.speed import measure_speed
from minitron.teacher import Teacher, load_teacher
from minitron.tokens import TokenizedCorpus, pack, tokenize_corpus
from minitron.validation import validation_loss
from search.candidates import Candidate, feasible
from search.dryrun import check_teacher_matches
from search.progress import stage
from search.rundir import RunDir, TrialLog, write_json
from search.settings import SearchSettings
from search.space import SearchSpace, load_space


def default_name(budget: int) -> str:
    return f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}-{format_count(budget)}"


def check_run_dir(run: RunDir, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written, a new run whose directory already holds something."""
    if not resume and not overwrite and run.root.exists() and any(run.root.iterdir()):
        raise MinitronError(
            f"{run.root} already holds a run; pass --resume {run.root} to continue it, --overwrite to "
            "start over, or choose another --name"
        )


def check_corpus(tokens: TokenizedCorpus, settings: SearchSettings) -> None:
    """Refuse a corpus too small for the calibration, probe and validation sets it must provide."""
    seq = settings.seq_len
    needs = {
        "calibration": (
            max(settings.calibration_samples, ImportanceConfig().depth_samples),
            "--calibration-samples",
        ),
        "validation": (settings.eval_sequences, "--eval-sequences"),
        "train": (max(settings.probe_tokens // seq, settings.batch_size), "--probe-tokens"),
    }
    for split, (sequences, option) in needs.items():
        found = tokens.split(split).size
        if found < sequences * seq:
            raise MinitronError(
                f"corpus {settings.data!r} is too small: its {split} split needs {sequences * seq:,} "
                f"tokens ({sequences} sequences of {seq}) and holds {found:,}; give a larger --data or "
                f"a smaller {option}"
            )


def prepare_run_dir(
    run: RunDir,
    settings: SearchSettings,
    space: SearchSpace,
    candidates: list[Candidate],
    resume: bool,
    overwrite: bool,
) -> None:
    """Create the run directory and its config, or check that a resumed one is a run."""
    if resume:
        return  # the caller read the settings from this run's config.json
    check_run_dir(run, resume, overwrite)
    if run.root.exists():
        shutil.rmtree(run.root)
    created = [p for p in (run.root, *run.root.parents) if not p.exists()]
    run.root.mkdir(parents=True, exist_ok=True)
    try:
        write_json(
            run.config,
            {
                "settings": settings.to_json(),
                "space": {"name": space.name, "path": str(space.path), "band": space.band},
                "feasible_candidates": len(candidates),
                "created": datetime.datetime.now().isoformat(timespec="seconds"),
            },
        )
    except BaseException:  # e.g. a full disk: leave no empty run directory behind
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _teacher_spec(spec: str) -> str:
    """A spec trial processes can load: local paths made absolute (Tune changes working directories)."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def _importance(
    run: RunDir,
    teacher: Teacher,
    tokens: TokenizedCorpus,
    settings: SearchSettings,
    candidates: list[Candidate],
) -> Importance:
    total = teacher.architecture.num_hidden_layers
    drops = sorted({total - c.arch.num_hidden_layers for c in candidates} - {0})
    if settings.depth == "layer_loss":
        drops = [1]
    cfg = ImportanceConfig(num_samples=settings.calibration_samples, seq_len=settings.seq_len)
    by_accuracy = settings.depth == "block_accuracy"
    importance = importance_for(
        teacher.model,
        tokens,
        cfg,
        block_sizes=drops,
        name=settings.teacher,
        tokenizer=teacher.tokenizer,
        depth_accuracy_items=settings.depth_accuracy_items if by_accuracy else 0,
    )
    importance.save(run.importance)  # the run keeps the exact scores its trials used
    return importance


def _targets(
    run: RunDir, teacher: Teacher, tokens: TokenizedCorpus, settings: SearchSettings
) -> TeacherTargets:
    if (run.targets / "targets.json").exists():
        return TeacherTargets.load(run.targets)
    sequences = max(settings.probe_tokens // settings.seq_len, settings.batch_size)
    ids = probe_batches(tokens.train, settings.seq_len, sequences, seed=settings.seed)
    targets = compute_targets(
        teacher.model,
        ids,
        k=settings.probe_top_k,
        meta={"teacher": settings.teacher, "seed": settings.seed, "tokens": tokens.key},
    )
    kill_point("targets")
    targets.save(run.targets)
    return targets


def _teacher_record(run: RunDir, teacher: Teacher, validation: torch.Tensor) -> dict[str, Any]:
    path = run.root / "teacher.json"
    if path.exists():
        import json

        return dict(json.loads(path.read_text()))
    speed = measure_speed(teacher.model, seq_len=int(validation.shape[1]))
    record = {
        "name": teacher.name,
        "architecture": teacher.architecture.as_dict(),
        "params": sum(p.numel() for p in teacher.model.parameters()),
        "zero_shot_loss": validation_loss(teacher.model, validation, desc="teacher loss").loss,
        "latency_ms": speed.latency_ms,
        "tokens_per_s": speed.tokens_per_s,
        "device": speed.device,
    }
    write_json(path, record)
    return record


def run_search(settings: SearchSettings, resume: bool = False, overwrite: bool = False) -> Path:
    """Run (or resume) a whole search; returns the run directory.

    Ctrl-C (or SIGTERM, see search.py) becomes `Interrupted`, whose message says how to resume:
    every finished piece of work is already on disk (trials, importance, winners, scores)."""
    run = RunDir(Path(settings.out).expanduser().resolve() / settings.name)  # Tune needs absolute paths
    try:
        return _run_stages(run, settings, resume, overwrite)
    except KeyboardInterrupt:
        if run.is_run():
            raise Interrupted(
                f"interrupted; the finished work is kept in {run.root}: continue with "
                f"python search.py --resume {run.root}"
            ) from None
        raise Interrupted("interrupted before the run directory was written; nothing was kept") from None


def _run_stages(run: RunDir, settings: SearchSettings, resume: bool, overwrite: bool) -> Path:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    space = load_space(settings.space)
    candidates = feasible(space, settings.budget)
    check_run_dir(run, resume, overwrite)

    # Everything the input decides is checked before the run directory is written: a bad teacher,
    # corpus or benchmark asset costs seconds and leaves nothing behind.
    with stage("teacher", timings):
        if settings.eval_tasks:
            check_data(settings.eval_tasks)
        if settings.address:  # attach first: an unreachable cluster fails before the teacher loads
            from search.tuning import start_ray

            start_ray(settings)
        teacher = load_teacher(settings.teacher, **settings.teacher_options())
        check_teacher_matches(space, settings.teacher, teacher.model.config)
        tokens = tokenize_corpus(load_corpus(settings.data), teacher.tokenizer)
        check_corpus(tokens, settings)
        prepare_run_dir(run, settings, space, candidates, resume, overwrite)
        print(
            f"[search] run directory {run.root}; {len(candidates)} feasible candidates at "
            f"{format_count(settings.budget)} ±{space.band:.0%}",
            flush=True,
        )
        validation = pack(tokens.validation, settings.seq_len, settings.eval_sequences)
        teacher_record = _teacher_record(run, teacher, validation)
    with stage("importance", timings):
        importance = _importance(run, teacher, tokens, settings, candidates)
    with stage("teacher targets", timings):
        targets = _targets(run, teacher, tokens, settings)
    del teacher  # trials and winners load their own copy

    from search.tuning import run_tune  # Ray is imported only once the search really starts

    with stage("search", timings):
        log, rejected, dashboard = run_tune(
            run, settings, space, importance, targets, validation, _teacher_spec(settings.teacher), candidates
        )
    ranking = rank(log)
    winners = [r for r in ranking if r["status"] == "completed"][: settings.top_k]
    with stage("retrain winners", timings):
        from search.winners import retrain_winners

        finals = retrain_winners(run, settings, _teacher_spec(settings.teacher), importance, winners)
    with stage("benchmarks", timings):
        from search.benchmarks import run_benchmarks

        benchmarks = run_benchmarks(run, settings, _teacher_spec(settings.teacher), finals)
    with stage("report", timings):
        summary = build_summary(
            run,
            settings,
            space,
            teacher_record,
            ranking,
            winners,
            finals,
            timings,
            rejected,
            time.perf_counter() - started,
            dashboard,
            benchmarks,
        )
        write_json(run.summary, summary)
        kill_point("report")
        from search.report import write_report

        write_report(run.root, summary)
    _print_result(run, summary)
    return run.root


def rank(log: TrialLog) -> list[dict[str, Any]]:
    """Trials ordered by final probe loss; completed probes first, early-stopped next, failed last."""
    order = {"completed": 0, "stopped early": 1}
    records = list(log.records.values())
    return sorted(records, key=lambda r: (order.get(r["status"], 2), r.get("probe_loss") or float("inf")))


def build_summary(
    run: RunDir,
    settings: SearchSettings,
    space: SearchSpace,
    teacher: dict[str, Any],
    ranking: list[dict[str, Any]],
    winners: list[dict[str, Any]],
    finals: dict[str, dict[str, Any]],
    timings: dict[str, float],
    rejected: dict[str, int],
    seconds: float,
    dashboard: str | None,
    benchmarks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    teacher_params = teacher["params"]
    winner_ids = {w["trial_id"]: i + 1 for i, w in enumerate(winners)}
    rows = []
    for position, record in enumerate(ranking, 1):
        final = finals.get(record["trial_id"], {})
        scored = record["status"] in ("completed", "stopped early") and record.get("probe_loss") is not None
        rows.append(
            {
                **record,
                "rank": position if scored else None,
                "fraction": (record.get("params") or 0) / teacher_params,
                "final_loss": final.get("final_loss"),
                "winner": record["trial_id"] in winner_ids,
            }
        )
    return {
        "name": settings.name,
        "budget": settings.budget,
        "band": space.band,
        "space": str(space.path),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "limited": None,
        "teacher": teacher,
        "settings": {**settings.to_json(), "dashboard": dashboard},
        "candidates": rows,
        "winners": [
            {
                "rank": winner_ids[w["trial_id"]],
                "trial_id": w["trial_id"],
                "architecture": w["architecture"],
                "params": w["params"],
                **finals.get(w["trial_id"], {}),
                **_winner_scores(benchmarks, w["trial_id"]),
            }
            for w in winners
        ],
        "benchmarks": benchmarks,
        "rejected_suggestions": rejected,
        "stages": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(seconds, 1),
        "run_dir": str(run.root),
    }


def _winner_scores(benchmarks: dict[str, Any] | None, trial_id: str) -> dict[str, Any]:
    """A winner's headline benchmark scores and their change against the teacher, in points."""
    model = (benchmarks or {}).get("models", {}).get(trial_id)
    if not model or "scores" not in model:
        return {}
    return {"benchmarks": model["scores"], "benchmarks_change_points": model["change_points"]}


def _print_result(run: RunDir, summary: dict[str, Any]) -> None:
    print(f"[search] finished in {summary['seconds'] / 60:.1f} min; report {run.root / 'report.html'}")
    for w in summary["winners"]:
        arch = Architecture(**w["architecture"])
        loss = w.get("final_loss")
        print(
            f"  winner {w['rank']}: {arch.short()} {w['params']:,} params, final loss "
            f"{'failed' if loss is None else f'{loss:.4f}'} -> {w.get('path')}"
        )
    table = benchmark_table(summary)
    if table:
        print(table)


def benchmark_table(summary: dict[str, Any]) -> str:
    """The teacher-vs-winners benchmark table (Markdown) of a summary, or "" without benchmarks."""
    from minitron.evaluate import Scores, format_table

    bench = summary.get("benchmarks")
    if not bench:
        return ""
    config = {"tasks": bench["tasks"], "limit": bench["limit"], "num_fewshot": bench["num_fewshot"]}
    names = {"teacher": "teacher"} | {w["trial_id"]: f"winner {w['rank']}" for w in summary["winners"]}
    columns = {
        label: Scores(results=m["results"], n_samples=m.get("n-samples", {}), config=config)
        for key, label in names.items()
        if "results" in (m := bench["models"].get(key, {}))
    }
    return format_table(columns, tuple(bench["tasks"]), baseline="teacher")


def probe_steps(settings: SearchSettings) -> int:
    """Optimizer steps of one probe (at least one)."""
    return max(settings.probe_tokens // (settings.seq_len * settings.batch_size), 1)


def probe_config(settings: SearchSettings, threads: int | None) -> ProbeConfig:
    steps = probe_steps(settings)
    return ProbeConfig(
        batch_size=settings.batch_size,
        lr=settings.probe_lr,
        eval_every=max(steps // 4, 1),
        weights=LossWeights(),
        seed=settings.seed,
        threads=threads,
    )


def probe_reports(settings: SearchSettings) -> int:
    """How many validation losses a probe reports (the intermediate ones and the final one)."""
    every = probe_config(settings, None).eval_every
    return sum(1 for step in range(1, probe_steps(settings)) if step % every == 0) + 1


def cpu_threads(settings: SearchSettings) -> int | None:
    """Torch threads for a trial: its CPU share (at least one), or None to leave torch's default."""
    return max(int(settings.cpus_per_trial), 1) if settings.cpus_per_trial else None

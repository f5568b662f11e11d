"""Benchmark stage: lm-eval scores of the teacher (cached per teacher) and of every retrained winner.

Each evaluation runs as a Ray task with a trial's resources (so on a cluster it lands on a GPU
node). Results are written atomically, the teacher's to `evals/teacher.json` and each winner's
to `winners/<rank>-<arch>/benchmarks.json`; `--resume` re-evaluates only what has no file yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minitron.atomic import write_json
from minitron.evaluate import TASKS, EvalConfig, Scores
from minitron.faults import kill_point
from search.progress import error_line
from search.rundir import RunDir
from search.settings import SearchSettings
from search.tuning import WORKER_RETRIES


def eval_config(settings: SearchSettings) -> EvalConfig:
    return EvalConfig(
        tasks=tuple(settings.eval_tasks), limit=settings.eval_limit, num_fewshot=settings.eval_fewshot
    )


def _score_teacher(spec: str, cfg: EvalConfig, options: dict[str, bool]) -> dict[str, Any]:
    """The teacher: scored once per weights and settings (cached across runs)."""
    from minitron.evaluate import evaluate_path

    return evaluate_path(spec, cfg, None, cache=True, **options).to_json()


def _score_checkpoint(path: str, cfg: EvalConfig, options: dict[str, bool]) -> dict[str, Any]:
    """A retrained winner: our own safetensors checkpoint, so `options` are not needed."""
    from minitron.evaluate import evaluate_path

    return evaluate_path(path, cfg).to_json()


def run_benchmarks(
    run: RunDir, settings: SearchSettings, teacher: str, finals: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """Score the teacher and the retrained winners; returns the `benchmarks` part of the summary."""
    if not settings.eval_tasks:
        return None
    import ray

    cfg = eval_config(settings)
    jobs: dict[str, tuple[Path, Any, str]] = {}  # name -> (result file, function, what it loads)
    jobs["teacher"] = (run.root / "evals" / "teacher.json", _score_teacher, teacher)
    for trial_id, final in finals.items():
        if final.get("final_loss") is not None and final.get("path"):
            jobs[trial_id] = (Path(final["path"]) / "benchmarks.json", _score_checkpoint, final["path"])
    scores: dict[str, Scores] = {}
    pending = {}
    for name, (path, fn, what) in jobs.items():
        if path.exists():
            scores[name] = Scores.load(path)
            continue
        task = ray.remote(
            num_cpus=settings.cpus_per_trial, num_gpus=settings.gpus_per_trial, max_retries=WORKER_RETRIES
        )(fn)
        pending[name] = task.remote(what, cfg, settings.teacher_options())
    errors: dict[str, str] = {}
    for name, ref in pending.items():
        print(f"[benchmarks] scoring {jobs[name][2]} on {', '.join(cfg.tasks)}", flush=True)
        try:
            scores[name] = Scores.from_json(ray.get(ref))
        except ray.exceptions.RayError as err:
            last = error_line(err)
            errors[name] = last
            print(f"[benchmarks] {jobs[name][2]} failed: {last}", flush=True)
            continue
        write_json(jobs[name][0], scores[name].to_json())
        kill_point("benchmarks")
    return benchmarks_summary(cfg, scores, errors, {k: str(v[0]) for k, v in jobs.items()})


def _points(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else 100 * (value - base)


def benchmarks_summary(
    cfg: EvalConfig, scores: dict[str, Scores], errors: dict[str, str], files: dict[str, str]
) -> dict[str, Any]:
    """Headline scores per model (teacher and winners by trial id), lm-eval's full results per model."""
    teacher = scores.get("teacher")
    models: dict[str, Any] = {}
    for name, s in scores.items():
        headline = {t: s.headline(t)[1] for t in cfg.tasks}
        delta = None
        if teacher is not None and name != "teacher":
            delta = {t: _points(v, teacher.headline(t)[1]) for t, v in headline.items()}
        models[name] = {
            "scores": headline,
            "change_points": delta,
            "results": s.results,
            "n-samples": s.n_samples,
            "file": files.get(name),
        }
    for name, error in errors.items():
        models[name] = {"error": error, "file": files.get(name)}
    limited = cfg.limit is not None
    return {
        "tasks": list(cfg.tasks),
        "metrics": {t: TASKS[t][1] for t in cfg.tasks},
        "limit": cfg.limit,
        "num_fewshot": cfg.num_fewshot or 0,
        "limited": (
            f"at most {cfg.limit} items per task (per subject for mmlu): not comparable with full-set scores"
            if limited
            else None
        ),
        "models": models,
    }

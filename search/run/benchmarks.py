"""Benchmark stage: lm-eval scores of the teacher (cached per teacher) and of every retrained winner.

Each evaluation runs as a Ray task with a trial's resources (so on a cluster it lands on a GPU
node). Results are written atomically, the teacher's to `evals/teacher.json` and each winner's
to `winners/<rank>-<arch>/benchmarks.json`; `--resume` re-evaluates only what has no file yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minitron.atomic import write_json
from minitron.eval.benchmarks import TASKS, EvalConfig, Scores
from minitron.faults import kill_point
from minitron.watch import Watch
from search.outputs.rundir import RunDir
from search.outputs.summary import WinnerResult
from search.plan.settings import SearchSettings


def _score_teacher(
    spec: str, cfg: EvalConfig, options: dict[str, bool], progress: Path | None = None
) -> dict[str, Any]:
    """The teacher: scored once per weights and settings (cached across runs)."""
    from minitron.eval.benchmarks import evaluate_path

    return evaluate_path(spec, cfg, None, cache=True, **options, progress_file=progress).to_json()


def _score_checkpoint(
    path: str, cfg: EvalConfig, options: dict[str, bool], progress: Path | None = None
) -> dict[str, Any]:
    """A retrained winner: our own safetensors checkpoint, so `options` are not needed."""
    from minitron.eval.benchmarks import evaluate_path

    return evaluate_path(path, cfg, progress_file=progress).to_json()


def run_benchmarks(
    run: RunDir, settings: SearchSettings, teacher: str, finals: dict[str, WinnerResult]
) -> dict[str, Any] | None:
    """Score the teacher and the retrained winners; returns the `benchmarks` part of the summary."""
    cfg = settings.eval
    if not cfg.tasks:
        return None
    jobs: dict[str, tuple[Path, Any, str]] = {}  # name -> (result file, function, what it loads)
    jobs["teacher"] = (run.evals / "teacher.json", _score_teacher, teacher)
    for trial_id, final in finals.items():
        if final.final_loss is not None and final.path:
            jobs[trial_id] = (Path(final.path) / "benchmarks.json", _score_checkpoint, final.path)
    scores = {name: Scores.load(path) for name, (path, _, _) in jobs.items() if path.exists()}
    errors: dict[str, str] = {}
    todo = [name for name in jobs if name not in scores]
    if todo:
        import ray

        from search.run.ray_runtime import error_line, remote, start_ray

        start_ray(settings.resources)
        # lm-eval's requests counted in the worker, printed here (a Ray worker's output stays out of the log)
        label = {name: "teacher" if name == "teacher" else Path(jobs[name][2]).name for name in todo}
        progress = {name: run.progress / f"benchmarks-{name}.json" for name in todo}
        pending = {
            name: remote(jobs[name][1], settings.resources).remote(
                jobs[name][2], cfg, settings.teacher_options(), progress[name]
            )
            for name in todo
        }
        for name, ref in pending.items():
            print(f"[benchmarks] scoring {jobs[name][2]} on {', '.join(cfg.tasks)}", flush=True)
            files = {label[n]: progress[n] for n in todo}
            try:
                with Watch("benchmarks", f"scoring {label[name]}: loading or summing up", files):
                    scores[name] = Scores.from_json(ray.get(ref))
            except ray.exceptions.RayError as err:
                errors[name] = error_line(err)
                print(f"[benchmarks] {jobs[name][2]} failed: {errors[name]}", flush=True)
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
        "metrics": {t: TASKS[t].metric for t in cfg.tasks},
        "limit": cfg.limit,
        "num_fewshot": cfg.num_fewshot or 0,
        "limited": (
            f"at most {cfg.limit} items per task (per subject for mmlu): not comparable with full-set scores"
            if limited
            else None
        ),
        "models": models,
    }

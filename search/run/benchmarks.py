"""Benchmark stage: lm-eval scores of the teacher (cached per teacher) and of every retrained winner.

Each evaluation runs as a Ray task with a trial's resources (so on a cluster it lands on a GPU
node). Results are written atomically, the teacher's to `evals/teacher.json` and each winner's
to `winners/<rank>-<arch>/benchmarks.json`; `--resume` re-evaluates only what has no file yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minitron.atomic import write_json
from minitron.eval.benchmarks import EvalConfig, Scores
from minitron.faults import kill_point
from minitron.watch import Watch
from search.outputs.outcomes import BenchmarkResults, WinnerResult
from search.outputs.rundir import RunDir
from search.plan.settings import SearchSettings


def _score_teacher(
    spec: str, cfg: EvalConfig, options: dict[str, bool], progress: Path | None = None
) -> Scores:
    """The teacher: scored once per weights and settings (cached across runs)."""
    from minitron.eval.benchmarks import evaluate_path

    return evaluate_path(spec, cfg, None, cache=True, **options, progress_file=progress)


def _score_checkpoint(
    path: str, cfg: EvalConfig, options: dict[str, bool], progress: Path | None = None
) -> Scores:
    """A retrained winner: our own safetensors checkpoint, so `options` are not needed."""
    from minitron.eval.benchmarks import evaluate_path

    return evaluate_path(path, cfg, progress_file=progress)


def run_benchmarks(
    run: RunDir, settings: SearchSettings, teacher: str, finals: dict[str, WinnerResult]
) -> BenchmarkResults | None:
    """Score the teacher and the retrained winners (None without benchmarks to score)."""
    cfg = settings.eval
    if not cfg.tasks:
        return None
    jobs: dict[str, tuple[Path, Any, str]] = {}  # name -> (result file, function, what it loads)
    jobs["teacher"] = (run.evals / "teacher.json", _score_teacher, teacher)
    for trial_id, final in finals.items():
        if final.finished and final.path:
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
                    scores[name] = ray.get(ref)
            except ray.exceptions.RayError as err:
                errors[name] = error_line(err)
                print(f"[benchmarks] {jobs[name][2]} failed: {errors[name]}", flush=True)
                continue
            write_json(jobs[name][0], scores[name].to_json())
            kill_point("benchmarks")
    return BenchmarkResults.of(cfg, scores, errors, {k: str(v[0]) for k, v in jobs.items()})

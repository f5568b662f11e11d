"""A search, from top to bottom: preflight, then the stages in order (teacher → importance → teacher
targets → search → latency → retraining of the winners → benchmarks → GGUF files → text samples →
report), each a function with explicit inputs and outputs (`search.run.stages.Stage` names them).

Everything a stage produces lands in the run directory, so `--resume` reads finished stages back
and re-does only the work that was in flight (`search.run.stages.done_stages` says which are done).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from minitron import codec
from minitron.atomic import write_json
from minitron.distill.targets import TeacherTargets
from minitron.errors import Interrupted
from minitron.faults import kill_point
from minitron.importance.scores import Importance
from minitron.runtime import machine_description
from search.outputs.console import print_result
from search.outputs.outcomes import BenchmarkResults, Samples, TeacherRecord, WinnerResult
from search.outputs.records import LatencyMeasurements, TrialLog, TrialRecord, rank, with_latency, with_names
from search.outputs.result import SearchResult
from search.outputs.rundir import RunDir, check_run_dir
from search.outputs.summary import Summary, build_summary
from search.plan.spec import RunSpec
from search.run import teacher_work
from search.run.artifacts import write_gguf_files, write_samples
from search.run.preflight import preflight
from search.run.selection import winners_of
from search.run.stages import Stage, StageLog
from search.run.timebudget import time_budget
from search.run.winners import retrain_winners


def run_search(spec: RunSpec, resume: bool = False, overwrite: bool = False) -> SearchResult:
    """Run (or resume) a whole search; returns what it found.

    Ctrl-C (or SIGTERM, see `minitron.commands.common`) becomes `Interrupted`, whose message says how
    to resume: every finished piece of work is already on disk (trials, importance, winners, scores)."""
    run = RunDir(spec.run_dir)
    check_run_dir(run, resume, overwrite)
    try:
        summary = _search(spec, run, resume, overwrite)
    except KeyboardInterrupt:
        if run.is_run():
            raise Interrupted(
                f"interrupted; the finished work is kept in {run.root}: continue with "
                f"python search.py --resume {run.root}"
            ) from None
        raise Interrupted("interrupted before the run directory was written; nothing was kept") from None
    print_result(summary, run.report)
    return SearchResult.of(summary, run.root, run.report)


def _search(spec: RunSpec, run: RunDir, resume: bool, overwrite: bool) -> Summary:
    """The recipe."""
    settings = spec.settings
    stage = StageLog(run)
    inputs = preflight(spec, run, resume, overwrite)

    teacher = stage(Stage.TEACHER, lambda done: teacher_work.teacher_record(spec, run, inputs))
    stage.estimates = time_budget(spec, inputs, teacher.params or 0, stage.todo())
    importance = stage(
        Stage.IMPORTANCE,
        lambda done: Importance.load(run.importance) if done else teacher_work.importance(spec, run, inputs),
    )
    targets = stage(
        Stage.TARGETS,
        lambda done: TeacherTargets.load(run.targets) if done else teacher_work.targets(spec, run, inputs),
    )
    inputs.release_teacher()  # trials and winners load their own copy

    trials, rejected = stage(
        Stage.SEARCH, lambda done: probe_candidates(spec, run, importance, targets, inputs.validation, done)
    )
    trials, teacher = stage(
        Stage.LATENCY,
        lambda done: measure_latency(spec, run, importance, trials, teacher, inputs.validation, done),
    )
    winners = winners_of(spec, trials)
    finals = stage(
        Stage.RETRAIN,  # reads finished winners back and retrains the rest, whether or not it is done
        lambda done: retrain_winners(run, spec, importance, [w for w, _ in winners], targets),
    )
    benchmarks = stage(Stage.BENCHMARKS, lambda done: score_benchmarks(spec, run, finals))
    stage(Stage.GGUF, lambda done: None if done or not settings.gguf else write_gguf_files(settings, finals))
    samples = stage(Stage.SAMPLES, lambda done: draw_samples(spec, run, finals, done))
    return stage(
        Stage.REPORT,
        lambda done: report(
            spec, run, stage, teacher, trials, winners, finals, benchmarks, samples, rejected
        ),
    )


def probe_candidates(
    spec: RunSpec,
    run: RunDir,
    importance: Importance,
    targets: TeacherTargets,
    validation: torch.Tensor,
    done: bool,
) -> tuple[list[TrialRecord], dict[str, int]]:
    """The search stage: the candidates probed as Ray Tune trials (`search.run.tuning`); every
    trial's record (with the names of the known and hand shapes) and the suggestions the searcher
    answered without a trial."""
    names = {k.arch: k.name for k in spec.seeds}
    if done:
        trials = list(TrialLog(run.trials).records.values())
    else:
        from search.run.ray_runtime import start_ray  # Ray is imported only once the search really starts
        from search.run.tuning import run_tune

        start_ray(spec.settings.resources)
        if spec.seeds:
            print(f"[search] probing first: {', '.join(k.name for k in spec.seeds)}", flush=True)
        trials = list(run_tune(run, spec, importance, targets, validation).records.values())
    rejected = codec.load(dict[str, int], run.searcher) if run.searcher.exists() else {}
    return with_names(trials, names), rejected


def measure_latency(
    spec: RunSpec,
    run: RunDir,
    importance: Importance,
    trials: list[TrialRecord],
    teacher: TeacherRecord,
    validation: torch.Tensor,
    done: bool,
) -> tuple[list[TrialRecord], TeacherRecord]:
    """The latency stage: every probed candidate timed in turn with the teacher on one worker
    (`search.run.latency`); the trials then carry those latencies and speed-ups, the teacher record
    its own (saved again in `teacher.json` when they are new)."""
    if not done:
        from search.run.latency import measure_run

        measured = measure_run(spec.settings, spec.teacher_spec, importance, trials, int(validation.shape[1]))
        measured.save(run.latency)
    measured = LatencyMeasurements.load(run.latency)
    speed = measured.teacher
    if speed.latency_ms is not None and teacher.latency_ms != speed.latency_ms:
        teacher = dataclasses.replace(teacher, **dataclasses.asdict(speed))
        teacher.save(run.teacher)
    return with_latency(trials, measured), teacher


def score_benchmarks(spec: RunSpec, run: RunDir, finals: dict[str, WinnerResult]) -> BenchmarkResults | None:
    """The benchmarks stage: lm-eval scores of the teacher and every finished winner (those written
    earlier are read back, the rest computed)."""
    from search.run.benchmarks import run_benchmarks

    return run_benchmarks(run, spec.settings, spec.teacher_spec, finals)


def draw_samples(spec: RunSpec, run: RunDir, finals: dict[str, WinnerResult], done: bool) -> Samples | None:
    """The samples stage: greedy continuations of fixed prompts by the teacher and every winner."""
    if not done:
        write_samples(run, spec.settings, finals, None)
    return Samples.load(run.samples)


def report(
    spec: RunSpec,
    run: RunDir,
    stage: StageLog,
    teacher: TeacherRecord,
    trials: list[TrialRecord],
    winners: list[tuple[TrialRecord, float | None]],
    finals: dict[str, WinnerResult],
    benchmarks: BenchmarkResults | None,
    samples: Samples | None,
    rejected: dict[str, int],
) -> Summary:
    """The report stage: `summary.json`, the winners' model cards, `report.html` and `pareto.png`,
    drawn from everything on disk (every session)."""
    from search.outputs.cards import write_model_cards
    from search.outputs.report import write_report
    from search.run.ray_runtime import dashboard_url

    summary = build_summary(
        settings=spec.settings,
        band=spec.space.band,
        space=str(spec.space.path),
        teacher=teacher,
        dashboard=dashboard_url(),
        ranking=rank(trials),
        winners=[w for w, _ in winners],
        budget_points={w.trial_id: point for w, point in winners if point is not None},
        samples=samples,
        finals=finals,
        benchmarks=benchmarks,
        rejected=rejected,
        stages=stage.timings,
        seconds=time.perf_counter() - stage.started,
        run_dir=run.root,
        estimated_stages=stage.estimates,
        machine=machine_description(),
    )
    write_model_cards(summary, spec.settings)
    write_json(run.summary, codec.encode(summary))
    kill_point("report")
    write_report(run.root, summary)
    return summary

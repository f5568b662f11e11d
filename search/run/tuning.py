"""The Ray Tune experiment of a run: set up (or restore) and run it, with the searcher and scheduler."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from ray.tune.stopper import Stopper

from minitron.distill.targets import TeacherTargets
from minitron.importance.scores import Importance
from minitron.model.teacher import checkpoint_folder
from minitron.watch import Watch
from search.outputs.records import PROBE_LOSS, PROBE_TOKENS, ProbeReport, TrialLog, TrialStatus
from search.outputs.rundir import RunDir
from search.plan.settings import Scheduler, SearchSettings
from search.plan.spec import RunSpec
from search.run.progress import TrialRecorder
from search.run.ray_runtime import WORKER_RETRIES, start_ray


def run_tune(
    run: RunDir, spec: RunSpec, importance: Importance, targets: TeacherTargets, validation: torch.Tensor
) -> TrialLog:
    """Run the Tune experiment (restoring it when the run directory holds one); the spec's seeds
    (known and hand-designed shapes) are probed first."""
    from ray import tune

    from search.run.sampling import make_searcher
    from search.run.trial import SharedInputs, probe_trial

    # Save Tune's experiment state after every event, so a killed driver loses at most the trials
    # in flight (our own record of finished trials covers the rest, see SharedInputs.finished).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    # Ctrl-C must stop the run (Tune's own handler ends `fit()` normally, and the pipeline would go
    # on to retrain winners of a half-done search); the run resumes from the state saved above.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # A trial that fails in its own code reports its error instead of a probe loss (see
    # search.run.trial), so not every result carries the metric.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    logging.getLogger("optuna").setLevel(logging.WARNING)
    settings, space = spec.settings, spec.space
    start_ray(settings.resources)
    log = TrialLog(run.trials)
    finished = {
        r.architecture.short(): r
        for r in log.records.values()
        if r.status in (TrialStatus.COMPLETED, TrialStatus.FAILED)
    }
    checkpoint = checkpoint_folder(spec.teacher_spec)
    shared = SharedInputs(
        settings=settings,
        teacher_path=spec.teacher_spec,
        teacher_checkpoint=str(checkpoint) if checkpoint else None,
        importance=importance,
        targets=targets,
        validation=validation,
        finished=finished,
        probe_starts=str(run.probe_starts),
        probe_states=str(run.probes) if settings.plan.keeps_probe_states else None,
        progress=str(run.progress),
    )
    resources = {"cpu": settings.resources.cpus_per_trial, "gpu": settings.resources.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(probe_trial, shared=shared), resources)
    total = min(settings.plan.trials, len(spec.candidates))
    recorder = TrialRecorder(log, total, settings.resources.concurrency, _dropper(run, settings))

    if tune.Tuner.can_restore(str(run.tune)):
        print(f"[search] resuming the Tune experiment in {run.tune}", flush=True)
        tuner = tune.Tuner.restore(
            str(run.tune),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
    else:
        searcher = make_searcher(
            space,
            settings.budget,
            settings.plan.sampler,
            settings.seed,
            f"sqlite:///{run.optuna_db}",
            settings.name,
            [k.arch for k in spec.seeds],
            stats_path=str(run.searcher),
            low=settings.budget_low,
            objective=settings.plan.objective,
            pool={c.arch: c.params for c in spec.candidates},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_scheduler(settings),
                num_samples=total,
                max_concurrent_trials=settings.resources.concurrency,
                # Trials run one after another in the same worker process: each saves the ~3 s of
                # starting Python and importing torch, transformers and Ray Tune again.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=run.tune.name,
                storage_path=str(run.root),  # trial folders and their TensorBoard logs stay in the run
                callbacks=[recorder],
                stop=ProbeBudget(
                    settings.tokens.probe_budget,
                    run.trials,
                    list(settings.tokens.probe_points),
                    reserve_for=total if settings.is_range else 0,
                ),
                verbose=0,
                # Only a lost worker or node reaches Tune as a failure (a trial's own errors are
                # reported, see search.run.trial): run that trial again, up to twice.
                failure_config=tune.FailureConfig(max_failures=WORKER_RETRIES),
            ),
        )
    print(f"[search] TensorBoard: tensorboard --logdir {run.tune}", flush=True)
    with Watch("search", "probing candidates", folder=run.progress):  # a line per probe in a log
        tuner.fit()
    return TrialLog(run.trials)


def _dropper(run: RunDir, settings: SearchSettings) -> Any:
    """The recorder's hook that deletes the states of probes that can no longer win."""
    if not settings.plan.keeps_probe_states:
        return None
    from search.run.probe_states import contenders, drop_losers

    objective = settings.plan.objective.key if settings.is_range else None

    def drop(records: list[Any]) -> None:
        drop_losers(run.probes, records, contenders(records, settings.plan.top_k, objective))

    return drop


def _scheduler(settings: SearchSettings) -> Any:
    """ASHA when asked for, on the probe's own rungs: it measures time in probe tokens, its first
    rung is the probe's first validation and each next one twice as far (as the probe validates)."""
    if settings.plan.scheduler is not Scheduler.ASHA:
        return None
    from ray.tune.schedulers import ASHAScheduler

    points = settings.tokens.probe_points
    return ASHAScheduler(
        metric=PROBE_LOSS,
        mode="min",
        time_attr=PROBE_TOKENS,
        max_t=points[-1],
        grace_period=points[0],
        reduction_factor=2,
    )


class ProbeBudget(Stopper):
    """Keeps the probes within the tokens the search may spend (`--overhead`, and `--max-not-kept`
    beside the winners' own probes: `SearchSettings.probe_budget`): a trial is stopped
    at a validation when training on to its next one would cross the budget, and no new trial
    starts once the budget has no room for a first rung. With `reserve_for` (a range search: every
    planned trial must reach the front) the first rungs of the trials not yet started are kept
    free: no trial goes on into them. With trials one at a time the probes never
    spend more than the budget; with N at once, trials in flight can cross it by at most N - 1
    first rungs (a stopper sees a trial only once it reports). Tokens are counted from every
    trial's reports, and on a restored experiment from `trials.jsonl` again (a pickled count
    would be stale). `points`: the probe tokens at which a probe validates (its rungs), the last
    its end."""

    def __init__(self, budget: int, log_path: Path, points: list[int], reserve_for: int = 0) -> None:
        self.budget, self.log_path, self.points = budget, log_path, sorted(points)
        self.reserve_for = reserve_for
        self.spent = {r.trial_id: float(r.probe_tokens or 0) for r in TrialLog(log_path).records.values()}

    def _reserved(self) -> float:
        return max(self.reserve_for - len(self.spent), 0) * self.points[0]

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        report = ProbeReport.of(result)
        tokens = float(report.probe_tokens or 0)
        self.spent[trial_id] = max(self.spent.get(trial_id, 0.0), tokens)
        following = [p for p in self.points if p > self.spent[trial_id]]
        if report.probe_done or not following or report.probe_tokens is None:
            return False
        room = self.budget - self._reserved()
        return sum(self.spent.values()) + following[0] - self.spent[trial_id] > room

    def stop_all(self) -> bool:
        return sum(self.spent.values()) + self.points[0] > self.budget

    def __getstate__(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "log_path": self.log_path,
            "points": self.points,
            "reserve_for": self.reserve_for,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["budget"], state["log_path"], state["points"], state.get("reserve_for", 0))  # type: ignore[misc]

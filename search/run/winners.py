"""Retraining the winners: each one a Ray task with a trial's resources, resumable on its own.

A winner is cut again from the teacher (pruning is deterministic given the importance) and distilled
for the run's retraining tokens into `winners/<rank>-<architecture>/`: on the teacher targets cached
for the run (the same top-k logits the probes used, over the whole retraining stream) or, with
`--retrain-teacher online`, with the teacher running on every batch. Its loss on the test split,
which nothing in the search chose with, is what the report quotes. A
winner whose folder already holds `provenance.json` is finished and skipped; an interrupted one
resumes from its checkpoint.

Where the winners would run one after another anyway (one place for a retraining task, as on a
laptop) and all of them fit one task's memory, they are retrained in one task, in lock-step on one
teacher pass per step (`lockstep`): each winner's job and weights are the same, and the teacher's
forward pass is paid once instead of once per winner.
"""

from __future__ import annotations

from pathlib import Path

from minitron.distill.targets import TeacherTargets
from minitron.faults import kill_point
from minitron.importance.scores import Importance
from minitron.model.architecture import Architecture
from minitron.model.memory import trained_together
from minitron.watch import Watch
from search.outputs.outcomes import WinnerResult
from search.outputs.records import TrialRecord
from search.outputs.rundir import RunDir
from search.plan.memory_plan import Capacity, fits, retraining_memory, trial_capacity
from search.plan.resources import local_resources, retraining_places
from search.plan.settings import TeacherMode
from search.plan.spec import RunSpec
from search.run.probe_states import keep_only
from search.run.winner_job import WinnerJob, finished_result, retrain_winner, retrain_winners_together


def winner_dir(run: RunDir, rank: int, arch: Architecture) -> Path:
    return run.winners / f"{rank}-{arch.short()}"


def lockstep(spec: RunSpec, archs: list[Architecture], places: float, capacity: Capacity | None) -> bool:
    """Whether winners of `archs` are retrained in one task on one teacher pass: with the teacher
    online, one process per winner (no `--retrain-workers`), fewer `places` for retraining tasks
    than winners (they would queue), and all of them within a task's `capacity` (students' weights
    and moments together, one step's activations, the teacher once)."""
    settings = spec.settings
    online = settings.plan.retrain_teacher is TeacherMode.ONLINE
    if len(archs) < 2 or not online or settings.resources.retrain_workers > 1:
        return False
    if places >= len(archs) or capacity is None:
        return False
    memories = [retraining_memory(spec.space, arch, spec.memory) for arch in archs]
    return bool(fits(trained_together(memories), capacity))


def lockstep_expected(spec: RunSpec) -> bool:
    """`lockstep` judged before the winners are known (for the time budget): `top_k` winners of the
    largest candidate, on this machine's local Ray (False on a cluster)."""
    settings = spec.settings
    if settings.resources.address or not spec.candidates:
        return False
    largest = max(spec.candidates, key=lambda c: c.params).arch
    places = retraining_places(settings.resources, [local_resources()])
    return lockstep(spec, [largest] * settings.plan.top_k, places, trial_capacity(settings.resources))


def retrain_winners(
    run: RunDir,
    spec: RunSpec,
    importance: Importance,
    winners: list[TrialRecord],
    targets: TeacherTargets | None = None,
) -> dict[str, WinnerResult]:
    """Retrain every winner (in parallel as resources allow); results by trial id. `targets` (the
    run's cached teacher targets) are used only with `--retrain-teacher cached`. A winner continues
    from its probe's state when the run kept it; states are deleted once their winner is retrained."""
    settings = spec.settings
    if settings.plan.retrain_teacher is not TeacherMode.CACHED:
        targets = None
    results: dict[str, WinnerResult] = {}
    jobs = []
    for rank, winner in enumerate(winners, 1):
        out = winner_dir(run, rank, winner.architecture)
        done = finished_result(out)
        if done is not None:
            results[winner.trial_id] = done
            print(f"[winners] {winner.architecture.short()} already retrained", flush=True)
            continue
        state = run.probes / winner.architecture.short()
        jobs.append(
            WinnerJob(
                rank,
                winner.trial_id,
                winner.architecture,
                str(out),
                spec.teacher_spec,
                settings,
                probe_state=str(state) if settings.plan.continue_probes and state.is_dir() else None,
            )
        )
    # the winners' probe states are all that is kept from here on
    keep_only(run.probes, {job.arch.short() for job in jobs})
    if jobs:
        results |= _run_jobs(run, jobs, spec, importance, targets)
    failed = {w.architecture.short() for w in winners if (r := results.get(w.trial_id)) is None or r.error}
    keep_only(run.probes, failed)  # a failed winner may continue from its probe when resumed
    return results


def _run_jobs(
    run: RunDir,
    jobs: list[WinnerJob],
    spec: RunSpec,
    importance: Importance,
    targets: TeacherTargets | None,
) -> dict[str, WinnerResult]:
    """The winners' jobs as Ray tasks: sharded, in lock-step, or one task each; results by trial id."""
    settings = spec.settings
    results: dict[str, WinnerResult] = {}
    import ray

    from search.run.ray_runtime import cluster_nodes, error_line, remote, start_ray

    start_ray(settings.resources)
    shared, cached = ray.put(importance), ray.put(targets)
    tokens, workers = settings.retrain.tokens, settings.resources.retrain_workers
    source = "cached teacher targets" if targets is not None else "the teacher online"
    if workers > 1:  # one winner at a time, each on all its workers
        from search.run.train_workers import retrain_sharded

        for job in jobs:
            print(
                f"[winners] retraining {job.arch.short()} ({tokens:,} tokens on {source}, "
                f"{workers} Ray Train workers)",
                flush=True,
            )
            with _watch([job]):
                result = retrain_sharded(job, shared, cached, settings.resources, run.root / "train")
            results[job.trial_id] = result
            if result.error:
                print(f"[winners] {job.arch.short()} failed: {result.error}", flush=True)
            else:
                kill_point("retrain")
        return results
    places = retraining_places(settings.resources, cluster_nodes())
    # what a retraining task here really has (not the plan's --trial-memory)
    if lockstep(spec, [job.arch for job in jobs], places, trial_capacity(settings.resources)):
        names = " and ".join(job.arch.short() for job in jobs)
        print(
            f"[winners] retraining {names} in lock-step ({tokens:,} tokens each on {source}, one "
            "teacher pass per step for all)",
            flush=True,
        )
        try:
            with _watch(jobs):
                answers = ray.get(remote(retrain_winners_together, settings.resources).remote(jobs, shared))
        except ray.exceptions.RayError as err:
            last = error_line(err)
            answers = [WinnerResult.failed(job.out, last) for job in jobs]
        for job, answer in zip(jobs, answers, strict=True):
            results[job.trial_id] = result = answer
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
            with _watch(jobs):
                results[job.trial_id] = ray.get(ref)
            kill_point("retrain")
        except ray.exceptions.RayError as err:
            last = error_line(err)
            results[job.trial_id] = WinnerResult.failed(job.out, last)
            print(f"[winners] {job.arch.short()} failed: {last}", flush=True)
    return results


def _watch(jobs: list[WinnerJob]) -> Watch:
    """In a log, each winner's progress at the interval while the driver waits on its Ray task:
    the worker writes it beside its checkpoint (a Ray worker's output does not reach the log)."""
    from minitron.distill.retrain import PROGRESS

    files = {Path(job.out).name: Path(job.out) / PROGRESS for job in jobs}
    names = " and ".join(files)
    return Watch("winners", f"retraining {names}: loading, testing or saving", files)

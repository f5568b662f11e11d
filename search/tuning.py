"""Ray and Ray Tune: start or attach to Ray, run (or restore) the Tune experiment of a run."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from typing import Any

import torch

from minitron.distill.targets import TeacherTargets
from minitron.errors import MinitronError
from minitron.importance import Importance
from search.candidates import Candidate
from search.progress import TrialRecorder
from search.rundir import RunDir, TrialLog
from search.settings import SearchSettings
from search.space import SearchSpace

WORKER_RETRIES = 2
"""Times a trial (or a winner's retraining, a benchmark job) is run again after its worker died."""

_dashboard_url: str | None = None
"""The dashboard URL of the Ray this process started or attached to (start_ray runs once)."""


def check_address(address: str) -> None:
    """Fail in seconds when no Ray cluster answers at `--address` (ray.init would wait ~40 s, then
    fail with pages of log); `auto` without RAY_ADDRESS is left to ray.init, which fails at once."""
    target = (os.environ.get("RAY_ADDRESS") or address) if address == "auto" else address
    if target == "auto":
        return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise MinitronError(f"--address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise MinitronError(
            f"--address {address}: no Ray cluster answers at {host}:{port} ({reason}); start one there "
            "with `ray start --head`, or leave out --address to run a local Ray"
        ) from None


def start_ray(settings: SearchSettings) -> str | None:
    """Start a local Ray sized to this machine, or attach to `--address`; returns the dashboard URL.

    Called before the run directory is written when `--address` is given, so an unreachable
    cluster costs seconds and leaves nothing behind."""
    global _dashboard_url
    import ray

    if ray.is_initialized():
        return _dashboard_url
    # Workers inherit our MINITRON_* and HF_* settings (cache location, offline switches, test hooks).
    env = {k: v for k, v in os.environ.items() if k.startswith(("MINITRON_", "HF_"))}
    env["TOKENIZERS_PARALLELISM"] = "false"
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": env},
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    try:
        if settings.address:
            check_address(settings.address)
            # Nodes of an existing cluster may not have this project installed: ship our two
            # packages with the job (Ray uploads them once; workers import them from there).
            import minitron
            import search

            kwargs["runtime_env"]["py_modules"] = [minitron, search]
            context = ray.init(address=settings.address, **kwargs)
        else:
            if settings.dashboard_host not in ("127.0.0.1", "localhost"):
                print(
                    f"warning: the Ray dashboard will listen on {settings.dashboard_host}, reachable from "
                    "other machines; Ray's token authentication stays on",
                    file=sys.stderr,
                )
            context = ray.init(
                num_cpus=os.cpu_count() or 1,
                num_gpus=torch.cuda.device_count(),
                include_dashboard=True,
                dashboard_host=settings.dashboard_host,
                **kwargs,
            )
    except (ConnectionError, RuntimeError, ValueError, OSError) as err:  # e.g. TMPDIR too long for sockets
        where = settings.address or "a local Ray"
        raise MinitronError(f"cannot start or reach Ray at {where}: {str(err).splitlines()[0]}") from None
    url = getattr(context, "dashboard_url", None)
    if url:
        url = url if url.startswith("http") else f"http://{url}"
        print(f"[ray] dashboard {url} (token: run `ray get-auth-token`)", flush=True)
    _dashboard_url = url
    return url


def run_tune(
    run: RunDir,
    settings: SearchSettings,
    space: SearchSpace,
    importance: Importance,
    targets: TeacherTargets,
    validation: torch.Tensor,
    teacher_spec: str,
    candidates: list[Candidate],
) -> tuple[TrialLog, dict[str, int], str | None]:
    """Run the Tune experiment (restoring it when the run directory holds one)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from search.runner import cpu_threads, probe_config, probe_reports
    from search.sampling import make_searcher
    from search.trial import SharedInputs, probe_trial

    # Save Tune's experiment state after every event, so a killed driver loses at most the trials
    # in flight (our own record of finished trials covers the rest, see SharedInputs.finished).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    # Ctrl-C must stop the run (Tune's own handler ends `fit()` normally, and the pipeline would go
    # on to retrain winners of a half-done search); the run resumes from the state saved above.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # A trial that fails in its own code reports its error instead of a probe loss (see
    # search.trial), so not every result carries the metric.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    logging.getLogger("optuna").setLevel(logging.WARNING)
    dashboard = start_ray(settings)
    log = TrialLog(run.trials)
    finished = {
        _short(r["architecture"]): r for r in log.records.values() if r["status"] in ("completed", "failed")
    }
    probe = probe_config(settings, cpu_threads(settings))
    shared = SharedInputs(
        teacher_path=teacher_spec,
        teacher_options=settings.teacher_options(),
        importance=importance,
        targets=targets,
        validation=validation,
        probe=probe,
        depth=settings.depth,
        threads=cpu_threads(settings),
        finished=finished,
        probe_starts=str(run.probe_starts),
    )
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(probe_trial, shared=shared), resources)
    total = min(settings.trials, len(candidates))
    recorder = TrialRecorder(log, total, settings.concurrency)

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
        known = {c.arch for c in candidates}
        seeds = [k.arch for k in space.known if k.arch in known]
        searcher = make_searcher(
            space,
            settings.budget,
            settings.sampler,
            settings.seed,
            f"sqlite:///{run.optuna_db}",
            settings.name,
            seeds,
            stats_path=str(run.root / "searcher.json"),
        )
        # ASHA counts reports: its last rung must be the probe's final report, or it would stop
        # every probe just before the end.
        evals = probe_reports(settings)
        scheduler = (
            ASHAScheduler(
                metric="probe_loss",
                mode="min",
                time_attr="training_iteration",
                max_t=evals,
                grace_period=max(evals // 2, 1),
                reduction_factor=2,
            )
            if settings.scheduler == "asha"
            else None
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=total,
                max_concurrent_trials=settings.concurrency,
            ),
            run_config=tune.RunConfig(
                name=run.tune.name,
                storage_path=str(run.root),
                callbacks=[recorder],
                verbose=0,
                # Only a lost worker or node reaches Tune as a failure (a trial's own errors are
                # reported, see search.trial): run that trial again, up to twice.
                failure_config=tune.FailureConfig(max_failures=WORKER_RETRIES),
            ),
        )
    tuner.fit()
    stats = run.root / "searcher.json"
    rejected = json.loads(stats.read_text()) if stats.exists() else {}
    return TrialLog(run.trials), rejected, dashboard


def _short(arch: dict[str, int]) -> str:
    from minitron.architecture import Architecture

    return Architecture(**arch).short()

"""Ray, in one place: start a local Ray or attach to a cluster, check that trials fit, run tasks.

Everything else in `search/` reaches Ray through here (Tune itself in `search.run.tuning`), so the way
workers are started, what they inherit and how their failures read is decided once.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from minitron.errors import MinitronError
from search.plan.settings import Resources

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


def local_resources() -> tuple[int, int]:
    """(CPUs, GPUs) a local Ray gets: all of this machine's."""
    import torch

    return os.cpu_count() or 1, torch.cuda.device_count()


def check_fits(resources: Resources, nodes: list[tuple[float, float]], where: str) -> None:
    """Refuse trial resources that no node can ever give (a search that would wait forever).

    `nodes` holds (CPUs, GPUs) per node."""
    if resources.cpus_per_trial <= 0:
        raise MinitronError(f"--cpus-per-trial must be positive, got {resources.cpus_per_trial:g}")
    if resources.gpus_per_trial < 0:
        raise MinitronError(f"--gpus-per-trial must be 0 or more, got {resources.gpus_per_trial:g}")
    if resources.concurrency < 1:
        raise MinitronError(f"--concurrency must be at least 1, got {resources.concurrency}")
    if resources.retrain_workers < 1:
        raise MinitronError(f"--retrain-workers must be at least 1, got {resources.retrain_workers}")
    if not any(cpus >= resources.cpus_per_trial and gpus >= resources.gpus_per_trial for cpus, gpus in nodes):
        have = ", ".join(f"{cpus:g} CPUs and {gpus:g} GPUs" for cpus, gpus in nodes) or "no node"
        raise MinitronError(
            f"a trial asks for {resources.cpus_per_trial:g} CPUs and {resources.gpus_per_trial:g} GPUs, but "
            f"{where} has {have}; lower --cpus-per-trial / --gpus-per-trial"
        )
    places = retraining_places(resources, nodes)
    if places < resources.retrain_workers:
        raise MinitronError(
            f"--retrain-workers {resources.retrain_workers} needs {resources.retrain_workers} workers of "
            f"{resources.cpus_per_trial:g} CPUs and {resources.gpus_per_trial:g} GPUs, but {where} holds "
            f"{places:g}; lower --retrain-workers or the per-trial resources"
        )


def retraining_places(resources: Resources, nodes: list[tuple[float, float]]) -> float:
    """How many tasks with a trial's resources the nodes of (CPUs, GPUs) run at once."""
    return sum(_trials_fitting(resources, cpus, gpus) for cpus, gpus in nodes)


def _trials_fitting(resources: Resources, cpus: float, gpus: float) -> float:
    """How many workers with a trial's resources one node of (cpus, gpus) holds at once."""
    fits = math.inf if math.isinf(cpus) else cpus // resources.cpus_per_trial
    if resources.gpus_per_trial > 0 and not math.isinf(gpus):
        fits = min(fits, gpus // resources.gpus_per_trial)
    return fits


def cluster_nodes() -> list[tuple[float, float]]:
    """(CPUs, GPUs) of every live node of the Ray this process is attached to."""
    import ray

    return [
        (float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    ]


def start_ray(resources: Resources) -> str | None:
    """Start a local Ray sized to this machine, or attach to `--address`; returns the dashboard URL.

    Called before the run directory is written when `--address` is given, so an unreachable
    cluster (or one where no trial fits) costs seconds and leaves nothing behind."""
    global _dashboard_url
    import ray

    if ray.is_initialized():
        return _dashboard_url
    # Workers inherit our MINITRON_*, HF_* and TQDM_* settings (cache location, offline switches,
    # test hooks, progress bars).
    env = {k: v for k, v in os.environ.items() if k.startswith(("MINITRON_", "HF_", "TQDM_"))}
    env["TOKENIZERS_PARALLELISM"] = "false"
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": env},
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    # Ray's core installs a crash handler for SIGTERM that ends the driver at once; ours (see
    # minitron.commands.common) stops the run as Ctrl-C does, saying how to resume: keep ours.
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        if resources.address:
            check_address(resources.address)
            # Nodes of an existing cluster may not have this project installed: ship our two
            # packages with the job (Ray uploads them once; workers import them from there).
            import minitron
            import search

            kwargs["runtime_env"]["py_modules"] = [minitron, search]
            context = ray.init(address=resources.address, **kwargs)
        else:
            if resources.dashboard_host not in ("127.0.0.1", "localhost"):
                print(
                    f"warning: the Ray dashboard will listen on {resources.dashboard_host}, reachable "
                    "from other machines; Ray's token authentication stays on",
                    file=sys.stderr,
                )
            cpus, gpus = local_resources()
            context = ray.init(
                num_cpus=cpus,
                num_gpus=gpus,
                include_dashboard=True,
                dashboard_host=resources.dashboard_host,
                **kwargs,
            )
    except (ConnectionError, RuntimeError, ValueError, OSError) as err:  # e.g. TMPDIR too long for sockets
        where = resources.address or "a local Ray"
        raise MinitronError(f"cannot start or reach Ray at {where}: {str(err).splitlines()[0]}") from None
    if callable(on_term) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    url = getattr(context, "dashboard_url", None)
    if url:
        url = url if url.startswith("http") else f"http://{url}"
        print(f"[ray] dashboard {url} (token: run `ray get-auth-token`)", flush=True)
    _dashboard_url = url
    if resources.address:
        check_fits(resources, cluster_nodes(), f"the cluster at {resources.address}")
    return url


def remote(fn: Callable[..., Any], resources: Resources) -> Any:
    """`fn` as a Ray task with a trial's resources, run again (twice at most) if its worker dies."""
    import ray

    return ray.remote(
        num_cpus=resources.cpus_per_trial, num_gpus=resources.gpus_per_trial, max_retries=WORKER_RETRIES
    )(fn)


def error_line(err: BaseException) -> str:
    """The last line of a Ray error (the remote exception's type and message)."""
    text = str(err).strip()
    return text.splitlines()[-1] if text else type(err).__name__

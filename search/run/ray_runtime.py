"""Ray, in one place: start a local Ray or attach to a cluster, check that trials fit, run tasks.

Everything else in `search/` reaches Ray through here (Tune itself in `search.run.tuning`), so the way
workers are started, what they inherit and how their failures read is decided once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from minitron.errors import MinitronError
from search.plan.resources import Resources, check_fits, local_resources

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


def dashboard_url() -> str | None:
    """The dashboard URL of the Ray this process started or attached to (None: it has not)."""
    return _dashboard_url


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

"""Where a run's work goes: the resources of a trial, what this machine (or a cluster's nodes) can
give, and the checks that refuse a run that would wait forever. Plain arithmetic, no Ray: the plan
is checked before Ray starts (`search.run.ray_runtime` attaches and checks a cluster's nodes)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from minitron.errors import MinitronError


@dataclass(frozen=True)
class Resources:
    """Where trials, retraining and benchmarks run."""

    cpus_per_trial: float = 2.0
    gpus_per_trial: float = 0.0
    concurrency: int = 1
    """Trials run at once."""
    address: str | None = None
    """Ray cluster to attach to (`auto` or host:port); None starts a local Ray."""
    retrain_workers: int = 1
    """Ray Train workers that retrain each winner together (FSDP2, data-parallel, sharded), each with
    a trial's resources; 1 retrains a winner in one process."""
    dashboard_host: str = "127.0.0.1"

    @property
    def threads(self) -> int:
        """Torch threads per trial: its CPU share, at least one."""
        return max(int(self.cpus_per_trial), 1)


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

"""A winner's retraining spread over several workers with Ray Train (`--retrain-workers N`).

Ray Train's `TorchTrainer` starts N workers (each with a trial's resources: one GPU per worker on a
GPU cluster, or a share of one; CPUs on the gloo backend here), sets up their process group (NCCL
on GPUs, gloo on CPUs) and runs `_worker` on each. Every worker cuts the winner from the teacher's
checkpoint and calls `minitron.distill.retrain.retrain` with its `Sharding`: FSDP2 shards the
student's parameters, gradients and optimizer state, each worker trains on its rows of the global
batch, and checkpoints are sharded folders any number of workers can resume from
(`minitron.distill.sharded`).

Faults: Ray Train restarts the worker group after a lost worker (up to `RESTARTS` times) and the
workers resume from the winner's last checkpoint; a run killed whole resumes the same way with
`--resume`, on the same or another number of workers. On a multi-node cluster the run directory
must be on storage every node shares (the workers write the checkpoint shards into it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from minitron.distill.targets import TeacherTargets
from minitron.importance.scores import Importance
from search.outputs.outcomes import WinnerResult
from search.plan.settings import Resources

#: Worker-group restarts Ray Train may make for one winner (a lost worker or node).
RESTARTS = 2


def retrain_sharded(
    job: Any, importance: Any, targets: Any, resources: Resources, storage: Path, restarts: int = RESTARTS
) -> WinnerResult:
    """Retrain one winner on `resources.retrain_workers` Ray Train workers; blocks until done.

    `importance` and `targets` are Ray object refs (put once, read by every worker); `storage` is
    where Ray Train keeps its own run records; `restarts`: worker-group restarts allowed."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchConfig, TorchTrainer

    from search.run.ray_runtime import error_line
    from search.run.winner_job import finished_result

    per_worker = {"CPU": resources.cpus_per_trial, "GPU": resources.gpus_per_trial}
    # NCCL refuses two ranks on one GPU: workers given a share of a GPU talk over gloo instead
    backend = "gloo" if 0 < resources.gpus_per_trial < 1 else None
    inputs = {"job": job, "importance": importance, "targets": targets}
    trainer = TorchTrainer(
        _worker,
        train_loop_config=inputs,
        torch_config=TorchConfig(backend=backend),
        scaling_config=ScalingConfig(
            num_workers=resources.retrain_workers,
            use_gpu=resources.gpus_per_trial > 0,
            resources_per_worker={k: v for k, v in per_worker.items() if v > 0},
        ),
        run_config=RunConfig(
            name=Path(job.out).name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=restarts),
        ),
    )
    try:
        trainer.fit()
    except TrainingFailedError as err:
        return WinnerResult.failed(job.out, error_line(err))
    done = finished_result(Path(job.out))
    if done is None:
        return WinnerResult.failed(job.out, "the workers finished without writing the model")
    return done


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the same retraining as a one-process winner, on this worker's device
    and share of each batch."""
    import ray
    import ray.train.torch

    from minitron.distill.sharded import Sharding
    from search.run.winner_job import retrain_winner

    job = config["job"]
    settings = job.settings
    # the run's placement (precision, a trial's threads) on the device Ray Train gave this worker
    placement = dataclasses.replace(settings.retrain.placement, device=str(ray.train.torch.get_device()))
    retrain = dataclasses.replace(settings.retrain, placement=placement)
    job = dataclasses.replace(job, settings=dataclasses.replace(settings, retrain=retrain))
    importance: Importance = ray.get(config["importance"])
    targets: TeacherTargets | None = ray.get(config["targets"])
    retrain_winner(job, importance, targets, sharding=Sharding.current())

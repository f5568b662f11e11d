"""Data-parallel training with sharded parameters, gradients and optimizer state (PyTorch FSDP2).

A retraining run spread over the processes of an initialised `torch.distributed` group: Ray Train's
workers (`search.run.train_workers`), or `torchrun`'s. Every process builds the same student, shards it
with `fully_shard` (each decoder layer, then the root, so a layer's weights are gathered only while
it computes) and trains on its share of each global batch: with `batch_size` sequences per step
over `world` processes, process `rank` takes rows `rank * b .. (rank + 1) * b` (`b = batch_size /
world`). Each process's loss is the mean over its rows and FSDP averages gradients over processes,
so a step is the step one process takes on the whole batch, up to summation order.

Checkpoints are `torch.distributed.checkpoint` folders (each process writes its shards; the reader
reshards), so a run resumes on another number of workers. Why no RNG state is saved: the data
order is a function of the step (`sources.TrainOrder`) and the models have no dropout, so nothing a
step computes depends on a random generator. The final model is gathered onto rank 0 and loaded
into a fresh model built from the student's config, which rank 0 saves like a one-process run.

Testing hook: `MINITRON_KILL_AFTER_STEP=N` kills every process (SIGKILL) right after the checkpoint
of step N is published, as a lost node would.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from minitron.distill.checkpoint import Checkpointing, Resumed
from minitron.distill.history import Validation
from minitron.errors import MinitronError


@dataclass(frozen=True)
class Sharding:
    """This process's place in the training group."""

    rank: int
    world: int

    @classmethod
    def current(cls) -> Sharding:
        """The default process group's rank and size (it must be initialised)."""
        if not dist.is_available() or not dist.is_initialized():
            raise MinitronError("sharded training needs an initialised torch.distributed process group")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def leader(self) -> bool:
        """Rank 0: the process that writes shared files and saves the final model."""
        return self.rank == 0

    def part(self, batch_size: int) -> tuple[int, int]:
        """The rows `[start, stop)` of a global batch this process trains on."""
        if batch_size % self.world:
            raise MinitronError(
                f"a batch of {batch_size} sequences cannot be split evenly over {self.world} workers; "
                "choose a worker count that divides the batch size"
            )
        share = batch_size // self.world
        return self.rank * share, (self.rank + 1) * share

    def shard(self, model: Any) -> Any:
        """Shard `model` in place: each decoder layer, then the root (embeddings, norm, head)."""
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
        return model

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of `value` over the processes (for logs: every process sees the same number)."""
        total = value.detach().float().clone()
        dist.all_reduce(total)
        return total / self.world

    def barrier(self) -> None:
        dist.barrier()

    def full_model(self, student: Any) -> Any | None:
        """On rank 0: a fresh, unsharded copy of `student` built from its config, with the gathered
        weights (on the CPU, fp32); None elsewhere. Every process must call it."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        from transformers import AutoModelForCausalLM

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(student, options=options)
        if not self.leader:
            return None
        fresh = AutoModelForCausalLM.from_config(student.config, dtype=torch.float32)
        fresh.load_state_dict(state)
        return fresh.eval()


class ShardedCheckpointing(Checkpointing):
    """`Checkpointing` for a sharded run: every process writes its shards into one folder (on
    storage all workers share), rank 0 writes the state and publishes the folder by a rename."""

    def __init__(self, folder: Path, job: str, every: int, sharding: Sharding) -> None:
        super().__init__(folder, job, every)
        self.sharding = sharding

    def save(
        self,
        step: int,
        history: list[Validation],
        seconds: float,
        student: Any,
        optimizer: torch.optim.Optimizer,
        aux: torch.nn.Module | None,
    ) -> None:
        """`aux` is always None here: `loop.train` refuses the intermediate loss when sharded."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        staging = self.folder.with_name(f".{self.folder.name}.staging")
        if self.sharding.leader:
            shutil.rmtree(staging, ignore_errors=True)  # a save killed half-way
            staging.mkdir(parents=True)
        self.sharding.barrier()
        model_state, optim_state = get_state_dict(student, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(staging))
        self.sharding.barrier()  # every shard is written
        if self.sharding.leader:
            self.write_state(staging, step, history, seconds)
            old = self.folder.with_name(f".{self.folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if self.folder.exists():
                os.replace(self.folder, old)
            os.replace(staging, self.folder)
            shutil.rmtree(old, ignore_errors=True)
        self.sharding.barrier()
        self.kill_point(step)

    def restore(
        self, student: Any, optimizer: torch.optim.Optimizer, aux: torch.nn.Module | None
    ) -> Resumed | None:
        """Load the checkpoint's shards into the student and optimizer (whatever the number of
        processes that wrote them); None when there is none."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        folder = self.folder
        if not (folder / "state.json").exists():
            old = folder.with_name(f".{folder.name}.old")  # killed between the two renames
            if not (old / "state.json").exists():
                return None
            folder = old
        state = self.state(folder)
        model_state, optim_state = get_state_dict(student, optimizer)
        dcp.load({"model": model_state, "optim": optim_state}, checkpoint_id=str(folder))  # in place
        set_state_dict(student, optimizer, model_state_dict=model_state, optim_state_dict=optim_state)
        return Resumed(state.step, list(state.history), state.seconds, folder)

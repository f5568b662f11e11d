"""Checkpoints of a training run: the hook only retraining uses.

Every `every` steps the loop hands the hook its state; the hook writes student weights (safetensors),
optimizer state, RNG states, step, history and the job's identity into one folder, atomically (a
crash keeps the previous checkpoint). A run started again with the same hook resumes from it and
ends with the same weights as an uninterrupted run.

Testing hook: with `MINITRON_KILL_AFTER_STEP=N` in the environment the process kills itself
(SIGKILL) right after the checkpoint of step N, as a crash would.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from minitron import codec
from minitron.atomic import publish, staging_dir
from minitron.distill.history import Validation
from minitron.errors import MinitronError


@dataclass(frozen=True)
class CheckpointState:
    """A checkpoint folder's `state.json`: whose it is, how far it got, and (for a probe's state,
    `minitron.distill.continuation`) what makes it a prefix and who wrote it."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = ("prefix", "origin")
    job: str
    step: int
    history: list[Validation]
    seconds: float
    """Training time spent so far (every session)."""
    prefix: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None

    def write(self, folder: Path) -> None:
        (folder / "state.json").write_text(json.dumps(codec.encode(self), indent=2))

    @classmethod
    def read(cls, folder: Path) -> CheckpointState:
        return codec.load(cls, folder / "state.json")


@dataclass
class Resumed:
    step: int
    history: list[Validation]
    seconds: float
    """Training time spent in earlier sessions."""
    folder: Path
    """The checkpoint folder it came from."""


class Checkpointing:
    """Save every `every` steps into `folder`; resume only a checkpoint of the same `job`."""

    def __init__(self, folder: Path, job: str, every: int) -> None:
        self.folder, self.job, self.every = Path(folder), job, every

    def due(self, step: int, steps: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step < steps

    def save(
        self,
        step: int,
        history: list[Validation],
        seconds: float,
        student: Any,
        optimizer: torch.optim.Optimizer,
        aux: torch.nn.Module | None,
    ) -> None:
        with staging_dir(self.folder) as tmp:
            save_model(student, str(tmp / "student.safetensors"))  # handles tied embeddings
            if aux is not None:
                save_file(
                    {k: v.contiguous() for k, v in aux.state_dict().items()}, str(tmp / "aux.safetensors")
                )
            rng: dict[str, Any] = {"torch": torch.get_rng_state()}
            if torch.cuda.is_available():
                rng["cuda"] = torch.cuda.get_rng_state_all()
            torch.save({"optimizer": optimizer.state_dict(), "rng": rng}, tmp / "optimizer.pt")
            self.write_state(tmp, step, history, seconds)
            publish(tmp, self.folder)
        self.kill_point(step)

    @staticmethod
    def kill_point(step: int) -> None:
        """The testing hook: SIGKILL this process right after the checkpoint of the named step."""
        if os.environ.get("MINITRON_KILL_AFTER_STEP") == str(step):
            os.kill(os.getpid(), signal.SIGKILL)

    def write_state(self, folder: Path, step: int, history: list[Validation], seconds: float) -> None:
        """The `state.json` that `state` reads back: this job's identity, step, history and time."""
        CheckpointState(self.job, step, list(history), seconds).write(folder)

    def state(self, folder: Path) -> CheckpointState:
        """A checkpoint folder's `state.json`, refused when it belongs to another job."""
        state = CheckpointState.read(folder)
        if state.job != self.job:
            raise MinitronError(
                f"{self.folder.parent} holds a checkpoint of a different job (other student, teacher, "
                "data or settings); choose another --out or pass --overwrite"
            )
        return state

    def restore(
        self, student: Any, optimizer: torch.optim.Optimizer, aux: torch.nn.Module | None
    ) -> Resumed | None:
        """Load the checkpoint into the student, optimizer and RNGs; None when there is none."""
        if not (self.folder / "state.json").exists():
            return None
        state = self.state(self.folder)
        load_model(
            student, str(self.folder / "student.safetensors"), device=str(next(student.parameters()).device)
        )
        if aux is not None:
            aux.load_state_dict(load_file(str(self.folder / "aux.safetensors")))
        # our own file, read without unpickling arbitrary objects
        saved = torch.load(self.folder / "optimizer.pt", weights_only=True, map_location="cpu")
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"]["torch"])
        if "cuda" in saved["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
        return Resumed(state.step, list(state.history), state.seconds, self.folder)

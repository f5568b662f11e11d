"""One validation of a training run (`Validation`): what the loop hands its callback and keeps in its
history, in checkpoints, in a probe's state and in `provenance.json`.

In JSON a validation reads as it always has: `{"step": 4.0, "tokens": 4096.0, "val_loss": ...,
"train_loss": ...}` (step and tokens written as numbers with a fraction, as files of earlier runs
hold them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Validation:
    """The validation loss after `step` optimizer steps (`tokens` training tokens), and the mean
    training loss since the previous validation (NaN when no step came between)."""

    step: int
    tokens: int
    val_loss: float
    train_loss: float = math.nan

    def to_json(self) -> dict[str, float]:
        return {
            "step": float(self.step),
            "tokens": float(self.tokens),
            "val_loss": self.val_loss,
            "train_loss": self.train_loss,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Validation:
        unknown = sorted(set(data) - {"step", "tokens", "val_loss", "train_loss"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]}")
        return cls(
            step=int(data["step"]),
            tokens=int(data["tokens"]),
            val_loss=float(data["val_loss"]),
            train_loss=float(data.get("train_loss", math.nan)),
        )


def last_loss(history: list[Validation]) -> float:
    """The last validation loss of a history."""
    return history[-1].val_loss

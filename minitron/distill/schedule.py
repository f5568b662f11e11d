"""Where a training run's learning rates and validations fall.

One `Schedule` type serves probes and retraining: linear warm-up, cosine decay to a floor (Minitron:
1e-4 → 1e-5), and the steps after which the run validates. A probe run by successive halving
validates at geometric rungs (`Schedule.rungs`: 1, 2, 4, 8 × the first rung), which are also the
points where ASHA compares trials, so the number of rungs follows from the schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def lr_at(step: int, total_steps: int, peak: float, warmup_steps: int, floor: float) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total_steps`."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps - 1, 1)  # the last step runs at the floor
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Schedule:
    """Optimizer steps, learning rate and validation points of one training run."""

    steps: int
    """Optimizer steps in all."""
    peak_lr: float
    floor_lr: float
    warmup: int
    """Steps of linear warm-up."""
    validate_at: tuple[int, ...]
    """Steps after which the validation loss is measured, ascending, the last one `steps`; 0 means
    once before training (the starting point, for the record)."""

    def __post_init__(self) -> None:
        points = self.validate_at
        if self.steps < 1 or not points or points[-1] != self.steps or list(points) != sorted(set(points)):
            raise ValueError(f"validations {points} must ascend and end at the last step {self.steps}")

    def lr(self, step: int) -> float:
        return lr_at(step, self.steps, self.peak_lr, self.warmup, self.floor_lr)

    @property
    def rungs(self) -> int:
        """Validations during or after training (what a scheduler can compare trials on)."""
        return sum(1 for point in self.validate_at if point > 0)

    @staticmethod
    def every(steps: int, every: int, start: bool = False) -> tuple[int, ...]:
        """Validation points every `every` steps and at the end (and at step 0 with `start`)."""
        points = {steps} | ({0} if start else set())
        if every > 0:
            points |= set(range(every, steps, every))
        return tuple(sorted(points))

    @staticmethod
    def geometric(steps: int, rungs: int, factor: int = 2) -> tuple[int, ...]:
        """`rungs` validation points, each `factor` × the one before, the last one at `steps`."""
        points = {max(steps // factor**k, 1) for k in range(max(rungs, 1))}
        return tuple(sorted(points))

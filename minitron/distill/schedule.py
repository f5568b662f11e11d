"""Where a training run's learning rates and validations fall.

One `Schedule` type serves probes and retraining: linear warm-up, then a constant phase at the peak,
then a cosine decay to a floor over the last `decay` steps (warm-up/stable/decay, "WSD"; Minitron
decays 1e-4 → 1e-5). With `decay` = every step after the warm-up it is the plain cosine schedule;
with `decay` = 0 the rate stays at the peak to the end.

Why the constant phase: a run whose learning rate does not depend on its length until the decay
starts can be stopped and continued. A search's probe is then the first steps of its winner's
retraining (`search.run.winner_job`: the winner continues from where its probe stood), so the
tokens a winner spent on its probe are not thrown away.

A probe run by successive halving validates at geometric rungs (`Schedule.rungs`: 1, 2, 4, 8 × the
first rung), which are also the points where ASHA compares trials, so the number of rungs follows
from the schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def lr_at(
    step: int, total_steps: int, peak: float, warmup_steps: int, floor: float, decay_steps: int | None = None
) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total_steps`; the cosine decay spans the
    last `decay_steps` steps (None: all steps after the warm-up), the last step at the floor."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    after = total_steps - warmup_steps
    decay = after if decay_steps is None else min(decay_steps, after)
    start = total_steps - decay  # the first step of the decay
    if decay <= 0 or step < start:
        return peak
    span = max(decay - 1, 1)  # the last step runs at the floor
    progress = min((step - start) / span, 1.0)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def decay_steps(steps: int, fraction: float) -> int | None:
    """The steps of the final decay for a `fraction` of the run (≥ 1 when the fraction is positive;
    None for a fraction of 1 or more: the plain cosine over every step after the warm-up)."""
    if fraction >= 1.0:
        return None
    return max(1, round(steps * fraction)) if fraction > 0 else 0


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
    decay: int | None = None
    """Steps of the final cosine decay to `floor_lr`; None: every step after the warm-up (cosine);
    0: none (the rate stays at the peak)."""

    def __post_init__(self) -> None:
        points = self.validate_at
        if self.steps < 1 or not points or points[-1] != self.steps or list(points) != sorted(set(points)):
            raise ValueError(f"validations {points} must ascend and end at the last step {self.steps}")

    def lr(self, step: int) -> float:
        return lr_at(step, self.steps, self.peak_lr, self.warmup, self.floor_lr, self.decay)

    @property
    def decay_start(self) -> int:
        """The first step of the decay (its rate still the peak); `steps` without a decay."""
        after = max(self.steps - self.warmup, 0)
        return self.steps - (after if self.decay is None else min(self.decay, after))

    def is_prefix_of(self, longer: Schedule, steps: int) -> bool:
        """Whether this run's first `steps` steps have exactly the rates of `longer`'s first steps."""
        return steps <= min(self.steps, longer.steps) and all(
            self.lr(s) == longer.lr(s) for s in range(steps)
        )

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

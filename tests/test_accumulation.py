"""Gradient accumulation: a step of k micro-batches is the step of one k-times-larger batch.

Tolerances, fp32 on the CPU: the gradients of the micro-batches are summed in another order than
one pass sums them over the batch, so they agree to a few float32 roundings of their size (1e-6
relative here); a wrong weighting (micro-batch losses summed, not averaged, or a step per
micro-batch) is off by a factor of k or by whole optimizer steps, orders of magnitude above it.
Weights after AdamW steps are compared at 1e-4 absolute, 1 % of the learning rate (1e-2, about
what each step moves a weight): AdamW divides a gradient by its running size plus `eps` (1e-8), so
an entry whose gradient is near zero, a few `eps`, moves its weight by a share of the rate that
the last roundings of that gradient decide (measured: 2.8e-5 after the first step and no more
after four, 4.0e-5 with clipping, on an AMD EPYC).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
import torch

from minitron.distill.loop import micro_batches, train
from minitron.distill.schedule import Schedule
from minitron.distill.sources import OnlineTeacher
from minitron.distill.step import LossWeights
from minitron.errors import MinitronError
from minitron.runtime import Placement
from tests.tiny import tiny_model


@dataclass(frozen=True)
class Settings:
    batch_size: int = 8
    micro_batch: int | None = None
    weights: LossWeights = field(default_factory=lambda: LossWeights(kd=1.0, ce=0.5))
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    seed: int = 0
    placement: Placement = field(default_factory=lambda: Placement(device="cpu", bf16=False))


def _trained(micro_batch: int | None, steps: int, grad_clip: float = 0.0):
    teacher = tiny_model(num_hidden_layers=3, seed=1).eval()
    student = tiny_model(num_hidden_layers=2, seed=2)
    torch.manual_seed(3)
    train_windows = torch.randint(0, 97, (64, 16))
    validation = torch.randint(0, 97, (4, 16))
    schedule = Schedule(steps, 1e-2, 1e-3, 1, (steps,), None)
    cfg = Settings(micro_batch=micro_batch, grad_clip=grad_clip)
    result = train(student, OnlineTeacher(teacher, train_windows, seed=0), schedule, cfg, validation)
    return student, result


def _gradients(micro_batch: int | None) -> list[torch.Tensor]:
    """The gradients one step accumulates (the optimizer step replaced by a capture)."""
    captured: list[torch.Tensor] = []
    original = torch.optim.AdamW.step

    def capture(self, *args, **kwargs):
        captured.extend(p.grad.detach().clone() for group in self.param_groups for p in group["params"])
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = capture  # type: ignore[method-assign]
    try:
        _trained(micro_batch, steps=1)
    finally:
        torch.optim.AdamW.step = original  # type: ignore[method-assign]
    return captured


@pytest.mark.parametrize("micro_batch", [1, 2, 4])
def test_accumulated_micro_batches_give_the_gradients_of_the_whole_batch(micro_batch):
    whole, accumulated = _gradients(None), _gradients(micro_batch)
    assert len(whole) == len(accumulated) > 0
    for a, b in zip(whole, accumulated, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6 * a.abs().max().item())


def test_accumulated_training_follows_the_whole_batch_over_several_steps():
    (whole, one), (accumulated, four) = (
        _trained(None, steps=4, grad_clip=1.0),
        _trained(2, steps=4, grad_clip=1.0),
    )
    for (name, a), b in zip(whole.named_parameters(), accumulated.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4, msg=name)
    assert one.history[-1].train_loss == pytest.approx(four.history[-1].train_loss, rel=1e-5)
    assert one.tokens == four.tokens == 4 * 8 * 16
    start = tiny_model(num_hidden_layers=2, seed=2)
    moved = max(
        (a - s).abs().max().item() for a, s in zip(whole.parameters(), start.parameters(), strict=True)
    )
    assert moved > 1e-2, "the weights moved far more than the tolerance"


def test_a_micro_batch_that_does_not_divide_the_batch_is_refused():
    assert micro_batches(8, None) == micro_batches(8, 8) == micro_batches(8, 16) == 1
    assert micro_batches(8, 2) == 4
    with pytest.raises(MinitronError, match="does not divide the 8 sequences"):
        micro_batches(8, 3)
    student = copy.deepcopy(tiny_model(num_hidden_layers=1))
    source = OnlineTeacher(None, torch.randint(0, 97, (16, 8)), 0)
    schedule = Schedule(1, 1e-3, 1e-4, 0, (1,))
    with pytest.raises(MinitronError, match="micro-batch of 3"):
        train(student, source, schedule, Settings(micro_batch=3), torch.randint(0, 97, (2, 8)))

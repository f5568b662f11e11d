"""What the search may spend on probes, and the probe schedule that spending buys.

The user states the search's overhead: probe tokens of the whole search ÷ retraining tokens of all
winners (default 0.25; at real scale a candidate probe is ~2B tokens against 80-100B for the final
run). From it follows the probe schedule: with successive halving (ASHA) every trial trains to the
first rung r, half of them on to 2r, a quarter to 4r, ... up to the full probe r·2^(K-1) for K
rungs. Successive halving over n trials costs n·r·(K+1)/2 tokens; asynchronous halving, where
trials run one after another, lets the first trials through before there is anything to compare
them with, so the estimate adds one full probe: n·r·(K+1)/2 + r·2^(K-1). Without a scheduler every
trial runs the full probe. The search also stops once the probes have spent the budget
(`search.run.tuning.ProbeBudget`), so the estimate is a plan and the budget a cap.
"""

from __future__ import annotations

from typing import Protocol

from minitron.budget import format_count
from minitron.errors import MinitronError


def cost_in_first_rungs(trials: int, rungs: int, scheduler: str) -> float:
    """Expected probe tokens of a search, in units of the first rung's tokens."""
    full = 2 ** (rungs - 1)
    if scheduler == "asha":
        return trials * (rungs + 1) / 2 + full
    return trials * full


def probe_budget(overhead: float, retrain_tokens: int, winners: int) -> int:
    """Probe tokens the search may spend: `overhead` × the retraining tokens of all winners (of one
    winner's, when the search only ranks)."""
    return int(overhead * retrain_tokens * max(winners, 1))


class Plan(Protocol):
    """What the probe plan reads from a `SearchPlan`."""

    @property
    def probe_tokens(self) -> int: ...
    @property
    def overhead(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def trials(self) -> int: ...
    @property
    def rungs(self) -> int: ...
    @property
    def scheduler(self) -> str: ...


def full_probe_steps(plan: Plan, retrain_tokens: int, tokens_per_step: int) -> int:
    """Optimizer steps of a full probe: the plan's `probe_tokens` when given (checked against the
    budget), else the most whole first-rung steps the budget pays for."""
    probe_tokens, overhead, winners = plan.probe_tokens, plan.overhead, plan.top_k
    trials, rungs, scheduler = plan.trials, plan.rungs, plan.scheduler
    budget = probe_budget(overhead, retrain_tokens, winners)
    units = cost_in_first_rungs(trials, rungs, scheduler)
    full = 2 ** (rungs - 1)
    if probe_tokens:
        steps = max(probe_tokens // tokens_per_step, 1)
        expected = steps * tokens_per_step * units / full
        if expected > budget:
            raise MinitronError(
                f"--probe-tokens {format_count(probe_tokens)} for {trials} trials ({scheduler} scheduler) "
                f"costs about {format_count(int(expected))} tokens, more than --overhead {overhead:g} of "
                f"{format_count(retrain_tokens * max(winners, 1))} retraining tokens allows "
                f"({format_count(budget)}); lower --probe-tokens or --trials, or raise --overhead"
            )
        return steps
    first = int(budget // (units * tokens_per_step))
    if first < 1:
        raise MinitronError(
            f"--overhead {overhead:g} of {format_count(retrain_tokens * max(winners, 1))} retraining "
            f"tokens ({format_count(budget)} probe tokens) cannot pay for one step "
            f"({format_count(tokens_per_step)} tokens) per rung for {trials} trials; raise --overhead "
            "or --retrain-tokens, or lower --trials or --rungs"
        )
    return first * full

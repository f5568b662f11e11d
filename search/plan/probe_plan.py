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

When winners continue from their probes, a winner's probe tokens are part of its retraining and
what the search really costs is the tokens of the candidates that were not kept. The user caps
their share of all tokens trained (`--max-not-kept`, default 0.1): with W the winners' retraining
tokens (their probes included), n ≤ f·(W + n) ⟺ n ≤ f/(1−f)·W. The plan sizes the rungs so that
the expected probes beyond the winners' own (full probes, as ASHA's ranking puts completed probes
first) stay within that, and the budget the search stops at is at most it plus the winners' probes.
"""

from __future__ import annotations

import math
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


def not_kept_allowance(max_not_kept: float, winner_tokens: int) -> float:
    """Tokens the candidates that are not kept may train for their share of all tokens to stay at
    most `max_not_kept`, beside `winner_tokens` trained by all winners (infinite at 1: no cap)."""
    if max_not_kept >= 1:
        return math.inf
    return max_not_kept / (1 - max_not_kept) * winner_tokens


def spend_cap(plan: Plan, retrain_tokens: int, winner_tokens: int, probe_tokens: int) -> int:
    """Probe tokens the search may spend, all trials together: the overhead's budget and, when
    winners continue from their probes, at most the allowance for candidates not kept plus the
    winners' own full probes (`probe_tokens` each)."""
    budget = probe_budget(plan.overhead, retrain_tokens, plan.top_k)
    if not (plan.continue_probes and plan.top_k > 0):
        return budget
    allowance = not_kept_allowance(plan.max_not_kept, winner_tokens)
    return int(min(budget, allowance + plan.top_k * probe_tokens))


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
    @property
    def continue_probes(self) -> bool: ...
    @property
    def max_not_kept(self) -> float: ...


def full_probe_steps(plan: Plan, retrain_tokens: int, tokens_per_step: int, winner_tokens: int) -> int:
    """Optimizer steps of a full probe: the plan's `probe_tokens` when given (checked against the
    budget and the share of candidates not kept), else the most whole first-rung steps both pay
    for. `winner_tokens`: what all winners train, their probes included."""
    probe_tokens, overhead, winners = plan.probe_tokens, plan.overhead, plan.top_k
    trials, rungs, scheduler = plan.trials, plan.rungs, plan.scheduler
    budget = probe_budget(overhead, retrain_tokens, winners)
    units = cost_in_first_rungs(trials, rungs, scheduler)
    full = 2 ** (rungs - 1)
    # first rungs the candidates not kept train (the winners keep a full probe each), and what they may
    kept = plan.continue_probes and winners > 0
    beyond = units - min(winners, trials) * full if kept else 0.0
    allowance = not_kept_allowance(plan.max_not_kept, winner_tokens) if kept else math.inf
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
        not_kept = steps * tokens_per_step * beyond / full
        if not_kept > allowance:
            raise MinitronError(
                f"--probe-tokens {format_count(probe_tokens)} for {trials} trials ({scheduler} scheduler) "
                f"spends about {format_count(int(not_kept))} tokens on candidates that are not kept, more "
                f"than --max-not-kept {plan.max_not_kept:g} of all tokens allows "
                f"({format_count(int(allowance))}); lower --probe-tokens or --trials, or raise --max-not-kept"
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
    if beyond > 0 and allowance < math.inf:
        first = min(first, int(allowance // (beyond * tokens_per_step)))
        if first < 1:
            raise MinitronError(
                f"--max-not-kept {plan.max_not_kept:g}: candidates that are not kept may train "
                f"{format_count(int(allowance))} tokens beside the winners' {format_count(winner_tokens)}, "
                f"less than one step ({format_count(tokens_per_step)} tokens) per rung for {trials} trials "
                f"and {winners} winner(s); raise --max-not-kept or --retrain-tokens, or lower --trials "
                "or --rungs"
            )
    return first * full

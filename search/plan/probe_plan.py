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
from dataclasses import dataclass
from typing import Any, Protocol

from minitron.budget import format_count
from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.errors import MinitronError


def cost_in_first_rungs(trials: int, rungs: int, scheduler: str) -> float:
    """Expected probe tokens of a search, in units of the first rung's tokens."""
    full = 2 ** (rungs - 1)
    if str(scheduler) == "asha":
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
    def scheduler(self) -> Any: ...
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
            "or --retrain-tokens, or lower --trials, --rungs or the step (--global-batch, --seq-len)"
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


@dataclass(frozen=True)
class TokenPlan:
    """Every token count of a run, derived once from its settings (`SearchSettings.tokens`): the
    one place that turns batches, steps and the plan into tokens."""

    probe_step: int
    """Tokens per probe step (sequence length x probe batch)."""
    retrain_step: int
    """Tokens per retraining step."""
    retrain_steps: int
    """Optimizer steps of one winner's retraining (at least one)."""
    winner_tokens: int
    """Tokens all winners train together (each one's retraining, its probe included when it
    continues from it); one winner's when the search only ranks."""
    probe_steps: int
    """Optimizer steps of a full probe (at least one)."""
    probe_budget: int
    """Probe tokens the search may spend, all trials together (`spend_cap`)."""
    probe_points: tuple[int, ...]
    """Probe tokens at which every probe validates (ASHA's rungs; the last is the probe's end)."""
    target_sequences: int
    """Sequences of the cached teacher targets: the probes' and, when winners train on cached
    targets, a retraining's (both read the same seeded order from its start)."""

    @property
    def probe_tokens(self) -> int:
        """Training tokens of a full probe."""
        return self.probe_steps * self.probe_step

    @property
    def probe_reports(self) -> int:
        """How many validation losses a probe reports (its rungs)."""
        return len(self.probe_points)

    @classmethod
    def of(
        cls, plan: Plan, seq_len: int, probe: ProbeConfig, retrain: RetrainConfig, cached_retraining: bool
    ) -> TokenPlan:
        """The counts of a run whose probes and retraining are `probe` and `retrain` at `seq_len`;
        `cached_retraining`: winners train on the cached targets."""
        probe_step = seq_len * probe.batch_size
        retrain_step = seq_len * retrain.batch_size
        retrain_steps = max(retrain.tokens // retrain_step, 1)
        winner_tokens = retrain_steps * retrain_step * max(plan.top_k, 1)
        probe_steps = max(probe.tokens // probe_step, 1)
        budget = spend_cap(plan, retrain.tokens, winner_tokens, probe_steps * probe_step)
        schedule = probe.schedule(probe_steps)
        retraining = retrain_steps * retrain.batch_size if cached_retraining and plan.top_k > 0 else 0
        return cls(
            probe_step=probe_step,
            retrain_step=retrain_step,
            retrain_steps=retrain_steps,
            winner_tokens=winner_tokens,
            probe_steps=probe_steps,
            probe_budget=budget,
            probe_points=tuple(step * probe_step for step in schedule.validate_at if step > 0),
            target_sequences=max(probe_steps * probe.batch_size, retraining),
        )

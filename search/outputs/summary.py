"""What a finished search found: the `Summary` that `summary.json` holds and the report reads.

Typed records for everything the summary carries (the teacher, every ranked candidate, every
winner and its retraining outcome); `to_json`/`from_json` keep the file's layout. `from_json` is
lenient about missing values (a report can be drawn from a partial or hand-made summary), never
about the shape of a record.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minitron import codec
from minitron.model.architecture import Architecture
from search.outputs.outcomes import BenchmarkResults, Samples, SearchCost, TeacherRecord, WinnerResult
from search.outputs.records import TrialRecord
from search.plan.settings import Objective, SearchSettings


@dataclass(frozen=True)
class CandidateRow:
    """A trial in the ranking, with what the ranking adds to it (one flat object in the file)."""

    trial: TrialRecord
    rank: int | None = None
    """1 for the best probe loss; None for a failed trial."""
    fraction: float | None = None
    """Parameters as a fraction of the teacher's."""
    final_loss: float | None = None
    """Validation loss after retraining, for winners."""
    test_loss: float | None = None
    """Test loss after retraining, for winners."""
    winner: bool = False

    def to_json(self) -> dict[str, Any]:
        extra = codec.encode_fields(self)
        extra.pop("trial")
        return {**codec.encode(self.trial), **extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CandidateRow:
        mine = set(cls.__dataclass_fields__) - {"trial"}
        trial = codec.decode(TrialRecord, {k: v for k, v in data.items() if k not in mine}, "summary.json")
        extra = {k: v for k, v in data.items() if k in mine}
        return codec.decode_fields(cls, {**extra, "trial": codec.encode(trial)}, "summary.json")


@dataclass(frozen=True)
class WinnerRow:
    """A retrained winner, its outcome and its headline benchmark scores."""

    rank: int
    trial_id: str
    architecture: Architecture
    params: int | None
    result: WinnerResult
    benchmarks: dict[str, float | None] | None = None
    """Headline score per task (0-1)."""
    benchmarks_change_points: dict[str, float | None] | None = None
    """Change against the teacher, in points."""
    budget_point: float | None = None
    """With a budget range: the budget (parameters, or latency in ms with `--objective latency`)
    at which this winner is the best candidate on the front; None for one budget."""

    def to_json(self) -> dict[str, Any]:
        first = ("rank", "trial_id", "architecture", "params")
        data = {name: codec.encode(getattr(self, name)) for name in first} | codec.encode(self.result)
        if self.budget_point is not None:
            data["budget_point"] = self.budget_point
        if self.benchmarks is not None:
            data["benchmarks"] = self.benchmarks
            data["benchmarks_change_points"] = self.benchmarks_change_points
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WinnerRow:
        mine = set(cls.__dataclass_fields__) - {"result"}
        result = {k: v for k, v in data.items() if k not in mine}
        values = {k: v for k, v in data.items() if k in mine}
        return codec.decode_fields(cls, {**values, "result": result}, "summary.json", "winners")


@dataclass(frozen=True)
class Summary:
    """Everything `summary.json` holds about one run. Every field may be missing in a file (a report
    can be drawn from a partial or hand-made summary); no field may have another shape."""

    name: str | None = None
    budget: int | None = None
    """The budget, or the upper end of a budget range."""
    budget_low: int | None = None
    """The lower end of a budget range (`--budget 50M:110M`); None for one budget."""
    objective: Objective = Objective.PARAMS
    """The search's second objective beside the probe loss: `params` or `latency` (ms)."""
    band: float | None = None
    """Relative half-width of the feasible band around the budget (around each end of a range)."""
    space: str | None = None
    created: str | None = None
    limited: str | None = None
    """A caveat shown at the top of the report (e.g. limited benchmark sets)."""
    teacher: TeacherRecord = field(default_factory=TeacherRecord)
    settings: SearchSettings | None = None
    """The run's settings (in the file, with the dashboard's URL beside them)."""
    dashboard: str | None = None
    """The Ray dashboard's URL while the run ran."""
    candidates: list[CandidateRow] = field(default_factory=list)
    """Every trial, best first."""
    winners: list[WinnerRow] = field(default_factory=list)
    benchmarks: BenchmarkResults | None = None
    """Tasks, limit and lm-eval's results per model (`search.run.benchmarks`)."""
    samples: Samples | None = None
    """Greedy continuations of fixed prompts by the teacher and each winner; None for runs before them."""
    rejected_suggestions: dict[str, int] = field(default_factory=dict)
    cost: SearchCost = field(default_factory=SearchCost)
    """What the search spent on probes against what retraining spent (see `search_cost`)."""
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds per stage."""
    estimated_stages: dict[str, float] = field(default_factory=dict)
    """Seconds per stage estimated before it ran, in the session that ran it (`search.run.timebudget`)."""
    machine: str | None = None
    """Where the driver ran the teacher's stages: CPU model, kernel level, bf16; or the GPU."""
    seconds: float | None = None
    run_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = codec.encode_fields(self)
        dashboard = data.pop("dashboard")
        data["settings"] = {**(data["settings"] or {}), "dashboard": dashboard}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        data = dict(data)
        settings = dict(data.get("settings") or {})
        data["dashboard"] = settings.pop("dashboard", None)
        data["settings"] = settings or None
        return codec.decode_fields(cls, data, "summary.json")

    @classmethod
    def load(cls, path: Path) -> Summary:
        return codec.load(cls, path)

    def candidate(self, trial_id: str) -> CandidateRow | None:
        return next((c for c in self.candidates if c.trial.trial_id == trial_id), None)


def build_summary(
    *,
    settings: SearchSettings,
    band: float,
    space: str,
    teacher: TeacherRecord,
    dashboard: str | None,
    ranking: list[TrialRecord],
    winners: list[TrialRecord],
    finals: dict[str, WinnerResult],
    benchmarks: BenchmarkResults | None,
    rejected: dict[str, int],
    stages: dict[str, float],
    seconds: float,
    run_dir: Path,
    estimated_stages: dict[str, float] | None = None,
    machine: str | None = None,
    budget_points: dict[str, float] | None = None,
    samples: Samples | None = None,
) -> Summary:
    """The summary of a run from its ranked trials, retrained winners and benchmark scores."""
    winner_ranks = {w.trial_id: i + 1 for i, w in enumerate(winners)}
    rows = []
    for position, record in enumerate(ranking, 1):
        final = finals.get(record.trial_id)
        scored = record.status.scored and record.probe_loss is not None
        rows.append(
            CandidateRow(
                record,
                rank=position if scored else None,
                fraction=(record.params or 0) / teacher.params if teacher.params else None,
                final_loss=final.final_loss if final else None,
                test_loss=final.test_loss if final else None,
                winner=record.trial_id in winner_ranks,
            )
        )
    points = budget_points or {}
    return Summary(
        name=settings.name,
        budget=settings.budget,
        budget_low=settings.budget_low,
        objective=settings.plan.objective,
        band=band,
        space=space,
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        limited=benchmarks.limited if benchmarks else None,
        teacher=teacher,
        settings=settings,
        dashboard=dashboard,
        candidates=rows,
        winners=[
            WinnerRow(
                rank=winner_ranks[w.trial_id],
                trial_id=w.trial_id,
                architecture=w.architecture,
                params=w.params,
                result=finals.get(w.trial_id) or WinnerResult.failed("", "not retrained"),
                **_winner_scores(benchmarks, w.trial_id),
                budget_point=points.get(w.trial_id),
            )
            for w in winners
        ],
        benchmarks=benchmarks,
        samples=samples,
        rejected_suggestions=rejected,
        cost=search_cost(ranking, finals, settings),
        stages={k: round(v, 1) for k, v in stages.items()},
        estimated_stages={k: round(v, 1) for k, v in (estimated_stages or {}).items()},
        machine=machine,
        seconds=round(seconds, 1),
        run_dir=str(run_dir),
    )


def search_cost(
    ranking: list[TrialRecord], finals: dict[str, WinnerResult], settings: SearchSettings
) -> SearchCost:
    """Probe tokens spent by every trial against the retraining tokens of the winners: the overhead
    the user allowed (`--overhead`) and the one actually spent; and what the search really cost,
    the tokens of candidates that were not kept ÷ all tokens trained (a winner that continued from
    its probe kept its probe's tokens: they are part of its `tokens_trained`) and the largest
    share allowed (`--max-not-kept`; None: no cap)."""
    plan = settings.plan
    spent = int(sum(r.probe_tokens or 0 for r in ranking))
    retrained = int(sum(f.tokens_trained or 0 for f in finals.values()))
    kept = int(sum(f.probe_tokens_kept for f in finals.values() if f.tokens_trained))
    basis = retrained or settings.retrain.tokens * max(plan.top_k, 1)
    total = spent + retrained - kept
    capped = plan.keeps_probe_states and plan.max_not_kept < 1
    return SearchCost(
        probe_tokens=spent,
        retrain_tokens=retrained,
        overhead=spent / basis if basis else None,
        overhead_allowed=plan.overhead,
        probe_budget=settings.tokens.probe_budget,
        probe_tokens_kept=kept,
        tokens_all=total,
        tokens_not_kept=spent - kept,
        not_kept_fraction=(spent - kept) / total if total and retrained else None,
        not_kept_allowed=plan.max_not_kept if capped else None,
    )


def _winner_scores(benchmarks: BenchmarkResults | None, trial_id: str) -> dict[str, Any]:
    """A winner's headline benchmark scores and their change against the teacher, in points."""
    model = benchmarks.models.get(trial_id) if benchmarks else None
    if model is None or model.scores is None:
        return {}
    return {"benchmarks": model.scores, "benchmarks_change_points": model.change_points}

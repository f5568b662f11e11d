"""What a finished search found: the `Summary` that `summary.json` holds and the report reads.

Typed records for everything the summary carries (the teacher, every ranked candidate, every
winner and its retraining outcome); `to_json`/`from_json` keep the file's layout. `from_json` is
lenient about missing values (a report can be drawn from a partial or hand-made summary), never
about the shape of a record.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minitron.model.architecture import Architecture
from search.outputs.records import TrialRecord
from search.outputs.report_data import not_kept_clause


def _fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of the dataclass `cls`."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class TeacherRecord:
    """The teacher as the run measured it (`teacher.json`, and the summary's `teacher`)."""

    name: str | None = None
    architecture: dict[str, int] = field(default_factory=dict)
    params: int | None = None
    zero_shot_loss: float | None = None
    """Validation loss on the run's validation sequences."""
    test_loss: float | None = None
    """Loss on the run's test sequences (beside the winners' test losses)."""
    test_losses: dict[str, float] = field(default_factory=dict)
    """Loss on each part's test sequences, for a mix (the part of weight 0 is out of domain)."""
    latency_ms: float | None = None
    """Median latency over the latency stage's rounds (`search.run.latency`)."""
    latency_low_ms: float | None = None
    """The fastest and slowest of those rounds."""
    latency_high_ms: float | None = None
    tokens_per_s: float | None = None
    device: str | None = None
    """Where its speed was measured (a trial's kind of device)."""
    stage_device: str | None = None
    """Where the teacher's stages ran in the driver: importance, depth losses, targets, its losses."""
    stage_dtype: str | None = None
    """The dtype of its weights there (bf16 on a GPU, fp32 on the CPU)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TeacherRecord:
        return cls(**_fields(cls, data))

    @classmethod
    def load(cls, path: Path) -> TeacherRecord:
        return cls.from_json(json.loads(path.read_text()))


@dataclass
class WinnerResult:
    """What retraining a winner produced (or why it failed)."""

    path: str
    """The winner's Hugging Face checkpoint folder."""
    final_loss: float | None
    """Validation loss after retraining; None when retraining failed."""
    tokens_trained: int | None = None
    error: str | None = None
    test_loss: float | None = None
    """Loss on the test split after retraining (nothing chose with it): the loss to quote."""
    test_losses: dict[str, float] = field(default_factory=dict)
    """Loss on each part's test split after retraining, for a mix."""
    probe_tokens_kept: int = 0
    """Of `tokens_trained`, those its probe trained (the retraining continued from the probe)."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "final_loss": self.final_loss, "test_loss": self.test_loss}
        if self.test_losses:
            data["test_losses"] = self.test_losses
        if self.probe_tokens_kept:
            data["probe_tokens_kept"] = self.probe_tokens_kept
        if self.tokens_trained is not None:
            data["tokens_trained"] = self.tokens_trained
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WinnerResult:
        return cls(**_fields(cls, {"path": "", "final_loss": None, **data}))


@dataclass
class CandidateRow:
    """A trial in the ranking, with what the ranking adds to it."""

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
        extra = {
            "rank": self.rank,
            "fraction": self.fraction,
            "final_loss": self.final_loss,
            "test_loss": self.test_loss,
        }
        return {**self.trial.to_json(), **extra, "winner": self.winner}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CandidateRow:
        return cls(TrialRecord.from_json(data), **_fields(cls, data))


@dataclass
class WinnerRow:
    """A retrained winner, its outcome and its headline benchmark scores."""

    rank: int
    trial_id: str
    architecture: dict[str, int]
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
        data = {name: getattr(self, name) for name in first} | self.result.to_json()
        if self.budget_point is not None:
            data["budget_point"] = self.budget_point
        if self.benchmarks is not None:
            data["benchmarks"] = self.benchmarks
            data["benchmarks_change_points"] = self.benchmarks_change_points
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WinnerRow:
        return cls(
            rank=data.get("rank", 0),
            trial_id=str(data.get("trial_id")),
            architecture=data.get("architecture") or {},
            params=data.get("params"),
            result=WinnerResult.from_json(data),
            benchmarks=data.get("benchmarks"),
            benchmarks_change_points=data.get("benchmarks_change_points"),
            budget_point=data.get("budget_point"),
        )


@dataclass
class Summary:
    """Everything `summary.json` holds about one run."""

    name: str | None = None
    budget: int | None = None
    """The budget, or the upper end of a budget range."""
    budget_low: int | None = None
    """The lower end of a budget range (`--budget 50M:110M`); None for one budget."""
    objective: str = "params"
    """The search's second objective beside the probe loss: `params` or `latency` (ms)."""
    band: float | None = None
    """Relative half-width of the feasible band around the budget (around each end of a range)."""
    space: str | None = None
    created: str | None = None
    limited: str | None = None
    """A caveat shown at the top of the report (e.g. limited benchmark sets)."""
    teacher: TeacherRecord = field(default_factory=TeacherRecord)
    settings: dict[str, Any] = field(default_factory=dict)
    """The run's settings (`SearchSettings.to_json()`) plus the dashboard URL."""
    candidates: list[CandidateRow] = field(default_factory=list)
    """Every trial, best first."""
    winners: list[WinnerRow] = field(default_factory=list)
    benchmarks: dict[str, Any] | None = None
    """Tasks, limit and lm-eval's results per model (see `search.run.benchmarks`)."""
    samples: dict[str, Any] | None = None
    """Greedy continuations of fixed prompts: `prompts`, and `continuations` by `teacher` and by
    each winner's trial id (`minitron.eval.samples`); None for runs from before them."""
    rejected_suggestions: dict[str, int] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
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
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["teacher"] = self.teacher.to_json()
        data["candidates"] = [c.to_json() for c in self.candidates]
        data["winners"] = [w.to_json() for w in self.winners]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        values = _fields(cls, data)
        values["teacher"] = TeacherRecord.from_json(data.get("teacher") or {})
        values["candidates"] = [CandidateRow.from_json(c) for c in data.get("candidates") or []]
        values["winners"] = [WinnerRow.from_json(w) for w in data.get("winners") or []]
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Summary:
        return cls.from_json(json.loads(path.read_text()))


def build_summary(
    *,
    name: str,
    budget: int,
    band: float,
    space: str,
    teacher: TeacherRecord,
    settings: dict[str, Any],
    ranking: list[TrialRecord],
    winners: list[TrialRecord],
    finals: dict[str, WinnerResult],
    benchmarks: dict[str, Any] | None,
    rejected: dict[str, int],
    stages: dict[str, float],
    seconds: float,
    run_dir: Path,
    estimated_stages: dict[str, float] | None = None,
    machine: str | None = None,
    budget_points: dict[str, float] | None = None,
    budget_low: int | None = None,
    objective: str = "params",
    samples: dict[str, Any] | None = None,
    probe_budget: int | None = None,
) -> Summary:
    """The summary of a run from its ranked trials, retrained winners and benchmark scores;
    `probe_budget`: the tokens the search stopped at (`SearchSettings.probe_budget`; None: the
    overhead's)."""
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
        name=name,
        budget=budget,
        budget_low=budget_low,
        objective=objective,
        band=band,
        space=space,
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        limited=(benchmarks or {}).get("limited"),
        teacher=teacher,
        settings=settings,
        candidates=rows,
        winners=[
            WinnerRow(
                rank=winner_ranks[w.trial_id],
                trial_id=w.trial_id,
                architecture=w.architecture.as_key(),
                params=w.params,
                result=finals.get(w.trial_id)
                or WinnerResult(path="", final_loss=None, error="not retrained"),
                **_winner_scores(benchmarks, w.trial_id),
                budget_point=points.get(w.trial_id),
            )
            for w in winners
        ],
        benchmarks=benchmarks,
        samples=samples,
        rejected_suggestions=rejected,
        cost=search_cost(ranking, finals, settings, probe_budget),
        stages={k: round(v, 1) for k, v in stages.items()},
        estimated_stages={k: round(v, 1) for k, v in (estimated_stages or {}).items()},
        machine=machine,
        seconds=round(seconds, 1),
        run_dir=str(run_dir),
    )


def search_cost(
    ranking: list[TrialRecord],
    finals: dict[str, WinnerResult],
    settings: dict[str, Any],
    budget: int | None = None,
) -> dict[str, Any]:
    """Probe tokens spent by every trial against the retraining tokens of the winners: the overhead
    the user allowed (`--overhead`) and the one actually spent; and what the search really cost,
    the tokens of candidates that were not kept ÷ all tokens trained (a winner that continued from
    its probe kept its probe's tokens: they are part of its `tokens_trained`) and the largest
    share allowed (`--max-not-kept`; None: no cap)."""
    from search.plan.probe_plan import probe_budget

    plan = settings.get("plan", {})
    spent = int(sum(r.probe_tokens or 0 for r in ranking))
    retrained = int(sum(f.tokens_trained or 0 for f in finals.values()))
    kept = int(sum(f.probe_tokens_kept for f in finals.values() if f.tokens_trained))
    retrain_tokens, winners = int(settings.get("retrain", {}).get("tokens", 0)), int(plan.get("top_k", 0))
    basis = retrained or retrain_tokens * max(winners, 1)
    total = spent + retrained - kept
    allowed = float(plan.get("max_not_kept", 1.0))
    return {
        "probe_tokens": spent,
        "retrain_tokens": retrained,
        "overhead": spent / basis if basis else None,
        "overhead_allowed": plan.get("overhead"),
        "probe_budget": budget or probe_budget(plan.get("overhead") or 0, retrain_tokens, winners),
        "probe_tokens_kept": kept,
        "tokens_all": total,
        "tokens_not_kept": spent - kept,
        "not_kept_fraction": (spent - kept) / total if total and retrained else None,
        "not_kept_allowed": allowed if plan.get("continue_probes") and winners and allowed < 1 else None,
    }


def _winner_scores(benchmarks: dict[str, Any] | None, trial_id: str) -> dict[str, Any]:
    """A winner's headline benchmark scores and their change against the teacher, in points."""
    model = (benchmarks or {}).get("models", {}).get(trial_id)
    if not model or "scores" not in model:
        return {}
    return {"benchmarks": model["scores"], "benchmarks_change_points": model["change_points"]}


def benchmark_table(summary: Summary, labels: dict[str, str] | None = None) -> str:
    """The teacher-vs-winners benchmark table (Markdown) of a summary, or "" without benchmarks.

    `labels` picks the columns (model key -> column title; default: the teacher and every winner).
    """
    from minitron.eval.benchmarks import Scores
    from minitron.eval.tables import format_table

    bench = summary.benchmarks
    if not bench:
        return ""
    config = {"tasks": bench["tasks"], "limit": bench["limit"], "num_fewshot": bench["num_fewshot"]}
    if labels is None:
        labels = {"teacher": "teacher"} | {w.trial_id: f"winner {w.rank}" for w in summary.winners}
    columns = {
        label: Scores(results=m["results"], n_samples=m.get("n-samples", {}), config=config)
        for key, label in labels.items()
        if "results" in (m := bench["models"].get(key, {}))
    }
    return format_table(columns, tuple(bench["tasks"]), baseline="teacher") if columns else ""


def print_result(summary: Summary, report: Path) -> None:
    print(f"[search] finished in {(summary.seconds or 0) / 60:.1f} min; report {report}")
    cost = summary.cost
    if cost.get("overhead") is not None:
        print(
            f"  probes spent {cost['probe_tokens']:,} tokens, {cost['overhead']:.0%} of the retraining "
            f"tokens (allowed: {cost['overhead_allowed']:.0%}){not_kept_clause(cost)}"
        )
    for w in summary.winners:
        test, val = w.result.test_loss, w.result.final_loss
        loss = (
            "failed"
            if val is None
            else f"test loss {test:.4f} (validation {val:.4f})"
            if test
            else f"validation loss {val:.4f}"
        )
        label = Architecture(**w.architecture).short()
        print(f"  winner {w.rank}: {label} {w.params:,} params, {loss} -> {w.result.path}")
    table = benchmark_table(summary)
    if table:
        print(table)

"""What `search.api.run` returns: the run's winners, its front and where everything was written,
read from its summary (`summary.json` holds the same)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minitron.model.architecture import Architecture
from search.outputs.outcomes import TeacherRecord
from search.outputs.records import TrialStatus
from search.outputs.summary import CandidateRow, Summary
from search.plan.pareto import pareto_front


@dataclass(frozen=True)
class Winner:
    """One retrained winner."""

    rank: int
    architecture: Architecture
    params: int | None
    path: Path | None
    """Its Hugging Face checkpoint folder (None when its retraining failed)."""
    validation_loss: float | None
    test_loss: float | None
    """On the run's test split (mixture), which nothing chose with."""
    test_losses: dict[str, float]
    """Per part of the mix (the part of weight 0 was kept out of training)."""
    benchmarks: dict[str, float | None]
    """Headline lm-eval score per task (0-1); empty without benchmarks."""
    budget_point: float | None
    """With a budget range: the point of the front it was chosen at."""
    error: str | None
    """Why its retraining failed, if it did."""


@dataclass(frozen=True)
class SearchResult:
    """A finished search."""

    run_dir: Path
    report: Path
    """`report.html`."""
    summary: Summary
    """Everything `summary.json` holds (every candidate, settings, cost, stage times)."""
    winners: tuple[Winner, ...]
    """Best first (for a range: along the front, smallest first)."""
    front: tuple[CandidateRow, ...]
    """The completed probes on the Pareto front of probe loss against parameters."""

    @property
    def teacher(self) -> TeacherRecord:
        return self.summary.teacher

    @classmethod
    def of(cls, summary: Summary, run_dir: Path, report: Path) -> SearchResult:
        winners = tuple(
            Winner(
                rank=w.rank,
                architecture=w.architecture,
                params=w.params,
                path=Path(w.result.path) if w.result.path and w.result.finished else None,
                validation_loss=w.result.final_loss,
                test_loss=w.result.test_loss,
                test_losses=dict(w.result.test_losses),
                benchmarks=dict(w.benchmarks or {}),
                budget_point=w.budget_point,
                error=w.result.error,
            )
            for w in summary.winners
        )
        done = [
            c
            for c in summary.candidates
            if c.trial.status is TrialStatus.COMPLETED and c.trial.probe_loss is not None and c.trial.params
        ]
        points = [(float(c.trial.params or 0), float(c.trial.probe_loss or 0.0)) for c in done]
        front = tuple(done[i] for i in pareto_front(points))
        return cls(run_dir, report, summary, winners, front)

"""What a run's stages produce besides the trials, as typed records: the teacher as measured
(`TeacherRecord`, `teacher.json`), a winner's retraining (`WinnerResult`), the benchmark scores of
the teacher and the winners (`BenchmarkResults`), the greedy samples (`Samples`, `samples.json`)
and what the search cost (`SearchCost`). Each is written and read through the strict codec
(`minitron.codec`) in the layout the run directory has always had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minitron import codec
from minitron.atomic import write_json
from minitron.distill.provenance import Provenance
from minitron.eval.benchmarks import TASKS, EvalConfig, Scores


@dataclass(frozen=True)
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

    def save(self, path: Path) -> None:
        write_json(path, codec.encode(self))

    @classmethod
    def load(cls, path: Path) -> TeacherRecord:
        return codec.load(cls, path)


@dataclass(frozen=True)
class WinnerResult:
    """What retraining a winner produced (or why it failed)."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = ("test_losses", "probe_tokens_kept", "tokens_trained", "error")
    path: str
    """The winner's Hugging Face checkpoint folder."""
    final_loss: float | None
    """Validation loss after retraining; None when retraining failed."""
    test_loss: float | None = None
    """Loss on the test split after retraining (nothing chose with it): the loss to quote."""
    test_losses: dict[str, float] = field(default_factory=dict)
    """Loss on each part's test split after retraining, for a mix."""
    probe_tokens_kept: int = 0
    """Of `tokens_trained`, those its probe trained (the retraining continued from the probe)."""
    tokens_trained: int | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.final_loss is not None and self.error is None

    @classmethod
    def failed(cls, path: str, error: str) -> WinnerResult:
        return cls(path, None, error=error)

    @classmethod
    def of(cls, path: str | Path, provenance: Provenance) -> WinnerResult:
        """The result a finished retraining's provenance records."""
        return cls(
            path=str(path),
            final_loss=provenance.final_val_loss,
            test_loss=provenance.test_loss,
            test_losses=dict(provenance.test_losses),
            probe_tokens_kept=provenance.probe_tokens_kept,
            tokens_trained=provenance.tokens_trained,
        )


@dataclass(frozen=True)
class ModelScores:
    """One model's benchmark outcome: headline scores (0-1) per task, their change against the
    teacher in points, and lm-eval's results; or the error that kept it from being scored."""

    scores: dict[str, float | None] | None = None
    change_points: dict[str, float | None] | None = None
    """None for the teacher itself."""
    results: dict[str, Any] | None = None
    """lm-eval's `results` (task -> metric -> value)."""
    n_samples: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    """The file its scores were written to."""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error, "file": self.file}
        return {
            "scores": self.scores,
            "change_points": self.change_points,
            "results": self.results,
            "n-samples": self.n_samples,
            "file": self.file,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelScores:
        values = {("n_samples" if k == "n-samples" else k): v for k, v in data.items()}
        return codec.decode_fields(cls, values, "benchmarks")

    def as_scores(self, config: dict[str, Any]) -> Scores | None:
        """lm-eval's results as `Scores` (for tables), None when not scored."""
        if self.results is None:
            return None
        return Scores(results=self.results, n_samples=self.n_samples, config=config)


@dataclass(frozen=True)
class BenchmarkResults:
    """The benchmarks of a run: tasks and settings, and each model's scores (`teacher`, and each
    winner by trial id)."""

    tasks: tuple[str, ...]
    metrics: dict[str, str]
    limit: int | None
    num_fewshot: int
    limited: str | None
    """A caveat for limited item counts (None: full sets)."""
    models: dict[str, ModelScores] = field(default_factory=dict)

    @classmethod
    def of(
        cls, cfg: EvalConfig, scores: dict[str, Scores], errors: dict[str, str], files: dict[str, str]
    ) -> BenchmarkResults:
        """Headline scores per model (the teacher's and each winner's, by trial id) and their change
        against the teacher, from lm-eval's scores; `errors` for models that could not be scored."""
        teacher = scores.get("teacher")
        models: dict[str, ModelScores] = {}
        for name, s in scores.items():
            headline = {t: s.headline(t)[1] for t in cfg.tasks}
            delta = None
            if teacher is not None and name != "teacher":
                delta = {t: _points(v, teacher.headline(t)[1]) for t, v in headline.items()}
            models[name] = ModelScores(headline, delta, s.results, s.n_samples, files.get(name))
        for name, error in errors.items():
            models[name] = ModelScores(file=files.get(name), error=error)
        limited = (
            f"at most {cfg.limit} items per task (per subject for mmlu): not comparable with full-set scores"
            if cfg.limit is not None
            else None
        )
        metrics = {t: TASKS[t].metric for t in cfg.tasks}
        return cls(tuple(cfg.tasks), metrics, cfg.limit, cfg.num_fewshot or 0, limited, models)

    @property
    def config(self) -> dict[str, Any]:
        """What `Scores.config` holds for these scores."""
        return {"tasks": list(self.tasks), "limit": self.limit, "num_fewshot": self.num_fewshot}

    def scored(self, name: str) -> Scores | None:
        """The lm-eval scores of model `name` (`teacher` or a trial id), None if it has none."""
        model = self.models.get(name)
        return model.as_scores(self.config) if model is not None else None


def _points(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else 100 * (value - base)


@dataclass(frozen=True)
class Samples:
    """`samples.json`: greedy continuations of fixed prompts by the teacher (`teacher`) and every
    winner (by trial id), side by side (`minitron.eval.samples`)."""

    prompts: tuple[str, ...] = ()
    continuations: dict[str, list[str]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        write_json(path, codec.encode(self))

    @classmethod
    def load(cls, path: Path) -> Samples | None:
        return codec.load(cls, path) if path.exists() else None


@dataclass(frozen=True)
class SearchCost:
    """What the search spent on probes against what retraining spent (`search_cost`)."""

    probe_tokens: int | None = None
    """Probe tokens of every trial."""
    retrain_tokens: int | None = None
    """Tokens the winners trained (their probes' included when they continued from them)."""
    overhead: float | None = None
    """Probe tokens ÷ retraining tokens."""
    overhead_allowed: float | None = None
    probe_budget: int | None = None
    """The probe tokens the search could stop at."""
    probe_tokens_kept: int | None = None
    """Probe tokens the winners kept (they continued from their probes)."""
    tokens_all: int | None = None
    """Every token trained, once."""
    tokens_not_kept: int | None = None
    not_kept_fraction: float | None = None
    """Share of all tokens spent on candidates that were not kept (None: no winner retrained)."""
    not_kept_allowed: float | None = None
    """The cap on that share (`--max-not-kept`; None: no cap)."""

    def line(self) -> str:
        """What the search cost: probe tokens against the winners' retraining tokens."""
        if self.probe_tokens is None or self.overhead is None:
            return "search cost: not recorded"
        allowed = self.overhead_allowed
        limit = f" (allowed {allowed:.0%})" if allowed is not None else ""
        line = (
            f"search cost: probes trained {self.probe_tokens:,} tokens, {self.overhead:.0%} of the "
            f"retraining tokens{limit}"
        )
        return line + self.not_kept_clause()

    def not_kept_clause(self) -> str:
        """`; ...` saying what share of all tokens went to candidates that were not kept (empty when
        not recorded: runs before winners continued from their probes, or no winner retrained)."""
        if self.not_kept_fraction is None:
            return ""
        allowed = self.not_kept_allowed
        limit = f" (allowed {allowed:.0%})" if allowed is not None else ""
        return (
            f"; winners kept {self.probe_tokens_kept or 0:,} of them (they continued from their probes), "
            f"so {self.tokens_not_kept or 0:,} tokens, {self.not_kept_fraction:.1%} of all "
            f"{self.tokens_all or 0:,} trained, went to candidates that were not kept{limit}"
        )

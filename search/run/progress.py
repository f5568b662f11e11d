"""Watching a search: a Tune callback that keeps `trials.jsonl` and prints progress and an ETA."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from minitron.faults import kill_point
from search.outputs.records import ProbeReport, TrialLog, TrialRecord, TrialStatus
from search.run.sampling import architecture_of
from search.run.stages import duration


class TrialRecorder(Callback):
    """Records every trial in `trials.jsonl` as it ends and prints done/total, the best so far, ETA."""

    def __init__(
        self,
        log: TrialLog,
        total: int,
        concurrency: int,
        recorded: Callable[[list[TrialRecord]], None] | None = None,
    ) -> None:
        self.log = log
        self.recorded = recorded
        """Called with every record so far after each trial is recorded (drops lost probe states)."""
        self.total = total
        self.concurrency = max(concurrency, 1)
        self.started = time.perf_counter()
        self.durations: list[float] = []
        self.last: dict[str, dict[str, Any]] = {}
        self.retries: dict[str, int] = {}
        """Times Tune ran a trial again after its worker died, by trial id."""

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.last[trial.trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = self.last.get(trial.trial_id) or trial.last_result or {}
        report = ProbeReport.of(result)
        if report.failed:  # the trial's own code failed (see search.run.trial)
            self._record(trial, result, TrialStatus.FAILED, report.trial_error)
            return
        status = TrialStatus.COMPLETED if report.probe_done else TrialStatus.STOPPED_EARLY
        self._record(trial, result, status, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Tune gave up on a trial whose worker (or node) died in every attempt."""
        error = _error_text(trial)
        self._record(trial, self.last.get(trial.trial_id) or {}, TrialStatus.FAILED, error)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        print(
            f"[search] the worker of trial {trial.trial_id} ({_label(trial.config)}) died: "
            f"{_error_text(trial)}; running it again (retry {self.retries[trial.trial_id]})",
            flush=True,
        )

    def _record(self, trial: Any, result: dict[str, Any], status: TrialStatus, error: str | None) -> None:
        report = ProbeReport.of(result) if result else None
        if report is not None and report.from_record and self._recorded(report.architecture):
            # a trial restarted after a driver crash replayed what is already recorded: under its own
            # id, or under a new one when the restored searcher (saved before it had suggested that
            # architecture) suggested it again; either way the searcher has now been told its result
            return
        config = trial.config
        record = TrialRecord(
            trial_id=trial.trial_id,
            architecture=architecture_of(config),
            params=config.get("params"),
            status=status,
            error=error,
            zero_shot_loss=report.zero_shot_loss if report else None,
            probe_loss=report.probe_loss if report else None,
            probe_tokens=report.probe_tokens if report else None,
            latency_ms=report.latency_ms if report else None,
            tokens_per_s=report.tokens_per_s if report else None,
            device=report.device if report else None,
            seconds=ProbeReport.tune_seconds(result),
            retries=self.retries.get(trial.trial_id, 0),
        )
        self.log.put(record)
        if self.recorded is not None:
            self.recorded(list(self.log.records.values()))
        if record.seconds:
            self.durations.append(float(record.seconds))
        self._print_progress(record)
        kill_point("search")

    def _recorded(self, label: str) -> bool:
        return any(r.architecture.short() == label for r in self.log.records.values())

    def _print_progress(self, record: TrialRecord) -> None:
        done = len(self.log.records)
        scored = [r for r in self.log.records.values() if r.status is TrialStatus.COMPLETED and r.probe_loss]
        best = min(scored, key=lambda r: r.probe_loss or 0.0) if scored else None
        remaining = max(self.total - done, 0)
        eta = (
            (sum(self.durations) / len(self.durations)) * remaining / self.concurrency
            if self.durations
            else None
        )
        parts = [f"[search] {done}/{self.total} trials done"]
        loss = record.probe_loss
        parts.append(
            f"last {record.architecture.short()} {record.status}" + (f" probe {loss:.3f}" if loss else "")
        )
        if best:
            parts.append(f"best {best.architecture.short()} probe {best.probe_loss:.3f}")
        if eta is not None and remaining:
            parts.append(f"ETA {duration(eta)}")
        print(", ".join(parts), flush=True)


def _label(config: dict[str, Any]) -> str:
    return architecture_of(config).short()


def _error_text(trial: Any) -> str:
    """The last line of the trial's error (exception type and message)."""
    path = getattr(trial, "error_file", None) or ""
    text = ""
    with contextlib.suppress(OSError):
        text = Path(path).read_text(encoding="utf-8") if path else ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "trial failed (no error text)"

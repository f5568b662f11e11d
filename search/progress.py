"""Watching a search: stage timings, a Tune callback that keeps `trials.jsonl` and prints progress."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray.tune import Callback

from minitron.architecture import ARCH_FIELDS
from minitron.faults import kill_point
from search.rundir import TrialLog


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Log a stage's start, end and duration (and keep the duration for the summary)."""
    print(f"[stage] {name} ...", flush=True)
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    timings[name] = timings.get(name, 0.0) + seconds
    print(f"[stage] {name} done in {_duration(seconds)}", flush=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


class TrialRecorder(Callback):
    """Records every trial in `trials.jsonl` as it ends and prints done/total, the best so far, ETA."""

    def __init__(self, log: TrialLog, total: int, concurrency: int) -> None:
        self.log = log
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
        if result.get("trial_error"):  # the trial's own code failed (see search.trial)
            self._record(trial, result, "failed", result["trial_error"])
            return
        status = "completed" if result.get("probe_done") else "stopped early"
        self._record(trial, result, status, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Tune gave up on a trial whose worker (or node) died in every attempt."""
        error = _error_text(trial)
        self._record(trial, self.last.get(trial.trial_id) or {}, "failed", error)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        print(
            f"[search] the worker of trial {trial.trial_id} ({_label(trial.config)}) died: "
            f"{_error_text(trial)}; running it again (retry {self.retries[trial.trial_id]})",
            flush=True,
        )

    def _record(self, trial: Any, result: dict[str, Any], status: str, error: str | None) -> None:
        if result.get("from_record") and trial.trial_id in self.log.records:
            return  # a trial restarted after a driver crash replayed what is already recorded
        config = trial.config
        record = {
            "trial_id": trial.trial_id,
            "architecture": {k: config[k] for k in ARCH_FIELDS},
            "params": config.get("params"),
            "status": status,
            "error": error,
            **{
                k: result.get(k)
                for k in (
                    "zero_shot_loss",
                    "probe_loss",
                    "probe_tokens",
                    "latency_ms",
                    "tokens_per_s",
                    "teacher_latency_ms",
                    "speedup",
                    "device",
                )
            },
            "seconds": result.get("time_total_s"),
            "retries": self.retries.get(trial.trial_id, 0),
        }
        self.log.put(record)
        if record["seconds"]:
            self.durations.append(float(record["seconds"]))
        self._print_progress(record)
        kill_point("search")

    def _print_progress(self, record: dict[str, Any]) -> None:
        done = len(self.log.records)
        scored = [
            r for r in self.log.records.values() if r.get("status") == "completed" and r.get("probe_loss")
        ]
        best = min(scored, key=lambda r: r["probe_loss"]) if scored else None
        remaining = max(self.total - done, 0)
        eta = (
            (sum(self.durations) / len(self.durations)) * remaining / self.concurrency
            if self.durations
            else None
        )
        parts = [f"[search] {done}/{self.total} trials done"]
        label = _label(record["architecture"])
        loss = record.get("probe_loss")
        parts.append(f"last {label} {record['status']}" + (f" probe {loss:.3f}" if loss else ""))
        if best:
            parts.append(f"best {_label(best['architecture'])} probe {best['probe_loss']:.3f}")
        if eta is not None and remaining:
            parts.append(f"ETA {_duration(eta)}")
        print(", ".join(parts), flush=True)


def _label(arch: dict[str, int]) -> str:
    return (
        f"L{arch['num_hidden_layers']}-h{arch['hidden_size']}-m{arch['intermediate_size']}"
        f"-q{arch['num_attention_heads']}kv{arch['num_key_value_heads']}-d{arch['head_dim']}"
    )


def _error_text(trial: Any) -> str:
    """The last line of the trial's error (exception type and message)."""
    path = getattr(trial, "error_file", None) or ""
    text = ""
    with contextlib.suppress(OSError):
        text = Path(path).read_text(encoding="utf-8") if path else ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "trial failed (no error text)"


def error_line(err: BaseException) -> str:
    """The last line of a Ray error (the remote exception's type and message)."""
    text = str(err).strip()
    return text.splitlines()[-1] if text else type(err).__name__

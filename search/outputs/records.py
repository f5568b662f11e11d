"""What one trial found, as the search records it: what a trial reports to Tune (`ProbeReport`),
how it ended (`TrialStatus`), its line of `trials.jsonl` (`TrialRecord`, `TrialLog`) and the latency
stage's figures (`LatencyMeasurements`, `latency.json`). Every file and Tune result is read and
written here, through the strict codec (`minitron.codec`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minitron import codec
from minitron.atomic import write_json, write_text
from minitron.choice import Choice
from minitron.model.architecture import Architecture

PROBE_LOSS = "probe_loss"
"""The metric trials report and the search minimizes (Tune's, ASHA's and Optuna's name for it)."""
PROBE_TOKENS = "probe_tokens"
"""The probe tokens behind each report: ASHA's time."""


@dataclass(frozen=True)
class ProbeReport:
    """What a trial reports to Tune: after each probe validation, or once when its own code fails
    (`trial_error`). Tune carries it as a dict (`metrics`) and adds its own keys; `of` reads one
    back, the only place that does."""

    architecture: str = ""
    """The candidate's label (`Architecture.short`)."""
    params: int = 0
    zero_shot_loss: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    device: str | None = None
    probe_loss: float | None = None
    """The validation loss at this report (the ranking metric)."""
    probe_tokens: float | None = None
    """Probe tokens trained at this report."""
    train_loss: float | None = None
    probe_done: bool = False
    """The probe ran to its end (its state is kept when the run keeps states)."""
    trial_error: str | None = None
    """The trial's own failure (one line); nothing else is reported then."""
    from_record: bool = False
    """Replayed from `trials.jsonl` by a trial Tune restarted after a driver crash."""
    seconds: float | None = None
    """The trial's wall time so far (Tune's `time_total_s`); read back only."""

    @property
    def failed(self) -> bool:
        return self.trial_error is not None

    @property
    def scored(self) -> bool:
        """Whether it carries the probe loss (a failed trial's report does not)."""
        return self.probe_loss is not None

    def metrics(self) -> dict[str, Any]:
        """The dict `tune.report` takes: the fields that hold a value (Tune's schedulers read a
        missing metric as 'not reported', never as None)."""
        data = codec.encode_fields(self)
        data.pop("seconds")
        if not self.from_record:
            data.pop("from_record")
        return {k: v for k, v in data.items() if v is not None}

    def objective(self, key: str) -> float | None:
        """The value of a second objective (`Objective.key`: `params` or `latency_ms`)."""
        value = getattr(self, key)
        return None if value is None else float(value)

    @classmethod
    def of(cls, result: Mapping[str, Any]) -> ProbeReport:
        """A Tune result (what `metrics` gave, plus Tune's own keys) read back."""
        names = {f.name for f in dataclasses.fields(cls)} - {"seconds"}
        values = {k: v for k, v in result.items() if k in names}
        return codec.decode(cls, values, "a trial's result")

    @classmethod
    def tune_seconds(cls, result: Mapping[str, Any]) -> float | None:
        """Tune's wall time of the trial in `result`."""
        value = result.get("time_total_s")
        return float(value) if isinstance(value, (int, float)) else None


class TrialStatus(Choice):
    """How a trial ended."""

    COMPLETED = "completed"
    """The probe ran to its end."""
    STOPPED_EARLY = "stopped early"
    """The scheduler (ASHA) stopped the probe; its last loss is kept."""
    FAILED = "failed"
    """The trial's own code failed, or its worker died in every attempt."""

    @property
    def scored(self) -> bool:
        """Whether a probe loss ranks this trial."""
        return self is not TrialStatus.FAILED

    @property
    def rank_order(self) -> int:
        """Completed probes rank first, early-stopped ones next, failed ones last."""
        return list(TrialStatus).index(self)


@dataclass(frozen=True)
class TrialRecord:
    """One line of `trials.jsonl`."""

    trial_id: str
    architecture: Architecture
    params: int | None
    status: TrialStatus
    error: str | None = None
    """The failure's last line (exception type and message), for failed trials."""
    zero_shot_loss: float | None = None
    """Validation loss right after pruning, before any training."""
    probe_loss: float | None = None
    """The probe's last validation loss (the ranking metric)."""
    probe_tokens: float | None = None
    """Training tokens the probe had seen at that loss."""
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    teacher_latency_ms: float | None = None
    """The teacher's median latency in the latency stage's rounds beside this candidate
    (`search.run.latency`); None until that stage has run."""
    speedup: float | None = None
    device: str | None = None
    name: str | None = None
    """The hand-designed shape this architecture is (`width-only-71M`, `depth-only@90M`), if any."""
    latency_low_ms: float | None = None
    """The fastest and slowest of the latency stage's rounds (`latency_ms` is their median); None
    until the latency stage has measured the candidate beside the teacher (`search.run.latency`)."""
    latency_high_ms: float | None = None
    speedup_low: float | None = None
    """The lowest and highest per-round speed-up (teacher ÷ candidate, measured in turn on one
    worker); `speedup` is their median."""
    speedup_high: float | None = None
    latency_rounds: int | None = None
    """Rounds the latency stage measured (each: the teacher, then the candidate)."""
    seconds: float | None = None
    """The trial's wall time."""
    retries: int = 0
    """Times the trial was run again after its worker died."""

    @property
    def ranked_loss(self) -> float | None:
        """The probe loss when it ranks this trial (never for a failed one)."""
        return self.probe_loss if self.status.scored else None

    def replayed(self) -> ProbeReport:
        """What a trial restarted after a driver crash reports: this recorded result (or error)."""
        label = self.architecture.short()
        if self.status is TrialStatus.FAILED:
            return ProbeReport(label, self.params or 0, trial_error=self.error, from_record=True)
        return ProbeReport(
            label,
            self.params or 0,
            zero_shot_loss=self.zero_shot_loss,
            latency_ms=self.latency_ms,
            tokens_per_s=self.tokens_per_s,
            device=self.device,
            probe_loss=self.probe_loss,
            probe_tokens=self.probe_tokens,
            probe_done=True,
            from_record=True,
        )


def rank(records: list[TrialRecord]) -> list[TrialRecord]:
    """Trials ordered by probe loss: completed probes first, then early-stopped ones (those that
    reached a later rung first: losses after fewer tokens are not comparable), failed last."""
    return sorted(
        records, key=lambda r: (r.status.rank_order, -(r.probe_tokens or 0), r.probe_loss or float("inf"))
    )


class TrialLog:
    """`trials.jsonl`, one record per trial id, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, TrialRecord] = {}
        if path.exists():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    record = codec.decode(TrialRecord, json.loads(line), f"{path.name} line {number}")
                    self.records[record.trial_id] = record

    # Tune pickles its callbacks with the experiment state; a restored log must read the file again
    # rather than bring back the records it held when it was pickled.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def put(self, record: TrialRecord) -> None:
        self.records[record.trial_id] = record
        lines = (json.dumps(codec.encode(r), default=str) + "\n" for r in self.records.values())
        write_text(self.path, "".join(lines))


@dataclass(frozen=True)
class ProbeStart:
    """One line of `probe_starts.jsonl`: a probe that actually started (an audit trail: a finished
    probe never starts again, whatever the driver or its workers went through)."""

    trial_id: str
    architecture: str
    """The candidate's label (`Architecture.short`)."""
    time: float
    host: str
    pid: int

    def append(self, path: Path) -> None:
        """Append the line; one short O_APPEND write is atomic, so parallel trials do not interleave."""
        line = (json.dumps(codec.encode(self)) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    @classmethod
    def read_all(cls, path: Path) -> list[ProbeStart]:
        """Every start recorded in `path`, in order (none when it does not exist)."""
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        return [
            codec.decode(cls, json.loads(line), f"{path.name} line {n}")
            for n, line in enumerate(lines, 1)
            if line
        ]


@dataclass(frozen=True)
class CandidateLatency:
    """One candidate in the latency stage, timed in turn with the teacher (or why it could not be)."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = (
        "latency_ms", "latency_low_ms", "latency_high_ms", "teacher_latency_ms", "speedup",
        "speedup_low", "speedup_high", "latency_rounds", "error",
    )  # fmt: skip
    latency_ms: float | None = None
    latency_low_ms: float | None = None
    latency_high_ms: float | None = None
    teacher_latency_ms: float | None = None
    speedup: float | None = None
    speedup_low: float | None = None
    speedup_high: float | None = None
    latency_rounds: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class TeacherLatency:
    """The teacher's speed in the latency stage (the median of its rounds beside the candidates)."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = (
        "latency_ms", "latency_low_ms", "latency_high_ms", "tokens_per_s", "device",
    )  # fmt: skip
    latency_ms: float | None = None
    latency_low_ms: float | None = None
    latency_high_ms: float | None = None
    tokens_per_s: float | None = None
    device: str | None = None


@dataclass(frozen=True)
class LatencyMeasurements:
    """`latency.json`: what the latency stage measured (`search.run.latency`)."""

    JSON_OMIT: ClassVar[tuple[str, ...]] = ("seq_len", "error")
    teacher: TeacherLatency = field(default_factory=TeacherLatency)
    candidates: dict[str, CandidateLatency] = field(default_factory=dict)
    """By architecture label."""
    rounds: int = 0
    seq_len: int | None = None
    error: str | None = None
    """Why the stage measured nothing (the run goes on without speed-ups)."""

    def save(self, path: Path) -> None:
        write_json(path, codec.encode(self))

    @classmethod
    def load(cls, path: Path) -> LatencyMeasurements:
        return codec.load(cls, path)


def with_latency(records: list[TrialRecord], measured: LatencyMeasurements) -> list[TrialRecord]:
    """The records with the latency stage's figures where it measured their architecture (the
    trial's own latency, taken alone, stays in `trials.jsonl`)."""
    out = []
    for record in records:
        figures = measured.candidates.get(record.architecture.short())
        if figures is None or figures.error is not None:
            out.append(record)
            continue
        values = {f.name: getattr(figures, f.name) for f in dataclasses.fields(figures) if f.name != "error"}
        out.append(dataclasses.replace(record, **values))
    return out


def with_names(records: list[TrialRecord], names: dict[Architecture, str]) -> list[TrialRecord]:
    """The records with the names of the known and hand-designed shapes among them."""
    return [dataclasses.replace(r, name=names.get(r.architecture) or r.name) for r in records]

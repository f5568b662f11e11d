"""What one trial found, as the search records it: `TrialStatus`, `TrialRecord`, `trials.jsonl`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.atomic import write_text
from minitron.choice import Choice
from minitron.model.architecture import Architecture


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


@dataclass
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

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["architecture"] = self.architecture.as_key()
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["architecture"] = Architecture(**data["architecture"])
        values["status"] = TrialStatus(data["status"])
        return cls(**values)


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
            for line in path.read_text().splitlines():
                if line.strip():
                    record = TrialRecord.from_json(json.loads(line))
                    self.records[record.trial_id] = record

    # Tune pickles its callbacks with the experiment state; a restored log must read the file again
    # rather than bring back the records it held when it was pickled.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def put(self, record: TrialRecord) -> None:
        self.records[record.trial_id] = record
        lines = (json.dumps(r.to_json(), default=str) + "\n" for r in self.records.values())
        write_text(self.path, "".join(lines))


#: What the latency stage measures for each candidate (`search.run.latency`), as `TrialRecord` fields.
LATENCY_FIELDS = (
    "latency_ms",
    "latency_low_ms",
    "latency_high_ms",
    "teacher_latency_ms",
    "speedup",
    "speedup_low",
    "speedup_high",
    "latency_rounds",
)


def with_latency(records: list[TrialRecord], measured: dict[str, Any]) -> list[TrialRecord]:
    """The records with the latency stage's figures where it measured their architecture (the
    trial's own latency, taken alone, stays in `trials.jsonl`)."""
    by_label = measured.get("candidates") or {}
    out = []
    for record in records:
        figures = by_label.get(record.architecture.short()) or {}
        if "error" in figures or not figures:
            out.append(record)
            continue
        values: dict[str, Any] = {k: figures.get(k) for k in LATENCY_FIELDS}
        out.append(dataclasses.replace(record, **values))
    return out


def with_names(records: list[TrialRecord], names: dict[Architecture, str]) -> list[TrialRecord]:
    """The records with the names of the known and hand-designed shapes among them."""
    return [dataclasses.replace(r, name=names.get(r.architecture) or r.name) for r in records]

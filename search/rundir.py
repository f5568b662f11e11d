"""The run directory `<out>/<name>/`: where everything of one search lives, written atomically.

config.json      resolved settings (what --resume reads back)
importance/      the teacher's importance scores used by every trial
targets/         probe batches, the teacher's top-k logits on them, validation sequences
optuna.db        the Optuna study (open it with `optuna-dashboard sqlite:///.../optuna.db`)
tune/            the Ray Tune experiment
trials.jsonl     one line per trial: architecture, params, losses, latency, status, error
winners/         the retrained winners, Hugging Face checkpoints with provenance.json
summary.json     ranking, winners, teacher, settings, stage timings
report.html      self-contained report (plotly inlined), pareto.png
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron.atomic import write_bytes, write_json, write_text
from minitron.errors import MinitronError

__all__ = ["RunDir", "TrialLog", "write_bytes", "write_json", "write_text"]


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def importance(self) -> Path:
        return self.root / "importance"

    @property
    def targets(self) -> Path:
        return self.root / "targets"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def tune(self) -> Path:
        return self.root / "tune"

    @property
    def trials(self) -> Path:
        return self.root / "trials.jsonl"

    @property
    def probe_starts(self) -> Path:
        return self.root / "probe_starts.jsonl"

    @property
    def winners(self) -> Path:
        return self.root / "winners"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def is_run(self) -> bool:
        return self.config.is_file()

    def load_config(self) -> dict[str, Any]:
        try:
            data = json.loads(self.config.read_text())
        except (OSError, ValueError) as err:
            raise MinitronError(f"{self.root} is not a search run (cannot read config.json: {err})") from None
        if not isinstance(data, dict) or "settings" not in data:
            raise MinitronError(f"{self.root} is not a search run (config.json has no settings)")
        return data


class TrialLog:
    """`trials.jsonl`, one record per trial id, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[record["trial_id"]] = record

    # Tune pickles its callbacks with the experiment state; a restored log must read the file again
    # rather than bring back the records it held when it was pickled.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def put(self, record: dict[str, Any]) -> None:
        self.records[record["trial_id"]] = record
        write_text(self.path, "".join(json.dumps(r, default=str) + "\n" for r in self.records.values()))

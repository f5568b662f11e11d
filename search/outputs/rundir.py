"""The run directory `<out>/<name>/`: where everything of one search lives, written atomically.

config.json      resolved settings (what --resume reads back)
teacher.json     the teacher's shape, size, validation and test loss, speed (from the latency stage)
importance/      the teacher's importance scores, exactly those every trial used (pinned for --resume)
targets/         probe batches and the teacher's top-k logits on them
optuna.db        the Optuna study (open it with `optuna-dashboard sqlite:///.../optuna.db`)
searcher.json    suggestions answered without a trial (infeasible, duplicate, in flight, stratum full)
tune/            the Ray Tune experiment (per-trial results, TensorBoard logs)
trials.jsonl     one line per trial: architecture, params, losses, latency, status, error
probe_starts.jsonl  one line each time a probe actually starts (audit trail)
probes/          end states of finished probes that may still win (their winner continues from one)
progress/        the latest progress of work in Ray workers (trials, benchmarks), printed by the driver
latency.json     every probed candidate's latency and speed-up, timed in turn with the teacher on one worker
winners/         the retrained winners: Hugging Face checkpoints, model cards, provenance.json
evals/           the teacher's benchmark scores
samples.json     greedy continuations of fixed prompts by the teacher and every winner
stages.json      the stages finished so far and their time
summary.json     ranking, winners, teacher, settings, stage timings
report.html      self-contained report (plotly inlined), pareto.png
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minitron.atomic import write_json
from minitron.errors import MinitronError

_LAYOUT = {
    "config": "config.json",
    "teacher": "teacher.json",
    "importance": "importance",
    "targets": "targets",
    "optuna_db": "optuna.db",
    "searcher": "searcher.json",
    "tune": "tune",
    "trials": "trials.jsonl",
    "probe_starts": "probe_starts.jsonl",
    "probes": "probes",
    "progress": "progress",
    "latency": "latency.json",
    "winners": "winners",
    "evals": "evals",
    "samples": "samples.json",
    "stages": "stages.json",
    "summary": "summary.json",
    "report": "report.html",
}


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory (see the module docstring for what each holds)."""

    root: Path
    config: Path = field(init=False)
    teacher: Path = field(init=False)
    importance: Path = field(init=False)
    targets: Path = field(init=False)
    optuna_db: Path = field(init=False)
    searcher: Path = field(init=False)
    tune: Path = field(init=False)
    trials: Path = field(init=False)
    probe_starts: Path = field(init=False)
    probes: Path = field(init=False)
    progress: Path = field(init=False)
    latency: Path = field(init=False)
    winners: Path = field(init=False)
    evals: Path = field(init=False)
    samples: Path = field(init=False)
    stages: Path = field(init=False)
    summary: Path = field(init=False)
    report: Path = field(init=False)

    def __post_init__(self) -> None:
        for name, relative in _LAYOUT.items():
            object.__setattr__(self, name, self.root / relative)

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

    def finished_stages(self) -> dict[str, float]:
        """Stage name -> seconds spent on it (over every session), for each finished stage."""
        if not self.stages.exists():
            return {}
        return {str(k): float(v) for k, v in json.loads(self.stages.read_text()).items()}

    def mark_finished(self, stage: str, seconds: float) -> None:
        write_json(self.stages, {**self.finished_stages(), stage: round(seconds, 1)})


def check_run_dir(run: RunDir, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written, a new run whose directory already holds something."""
    if not resume and not overwrite and run.root.exists() and any(run.root.iterdir()):
        raise MinitronError(
            f"{run.root} already holds a run; pass --resume {run.root} to continue it, --overwrite to "
            "start over, or choose another --name"
        )


def create_run_dir(run: RunDir, config: dict[str, object], overwrite: bool) -> None:
    """Create the run directory with its `config.json` (replacing an old run with `overwrite`)."""
    check_run_dir(run, resume=False, overwrite=overwrite)
    if run.root.exists():
        shutil.rmtree(run.root)
    created = [p for p in (run.root, *run.root.parents) if not p.exists()]
    run.root.mkdir(parents=True, exist_ok=True)
    try:
        write_json(run.config, config)
    except BaseException:  # e.g. a full disk: leave no empty run directory behind
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise

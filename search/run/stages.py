"""A run's stages, in order (`Stage`), and the log that runs each one (`StageLog`).

Each stage logs its start, end and duration. A stage that is done (its result is on disk from an
earlier session of the run, `done_stages`) is read back instead of computed, and says so; finished
stages and their time are kept in the run directory's `stages.json`. In a log file, a stage that
prints no progress for an interval says it is still running (`minitron.watch.Watch`). After each
stage that was estimated, the log prints the ETA (`search.run.timebudget`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from minitron.choice import Choice
from minitron.watch import Watch
from search.outputs.rundir import RunDir

T = TypeVar("T")


class Stage(Choice):
    """The stages of a run, in the order they run (their names are `stages.json`'s keys)."""

    TEACHER = "teacher"
    IMPORTANCE = "importance"
    TARGETS = "teacher targets"
    SEARCH = "search"
    LATENCY = "latency"
    RETRAIN = "retrain winners"
    BENCHMARKS = "benchmarks"
    GGUF = "gguf"
    SAMPLES = "samples"
    REPORT = "report"


def done_stages(run: RunDir) -> set[Stage]:
    """The stages an earlier session of the run finished: those whose result is on disk, or that
    `stages.json` marks finished where a stage's files alone cannot tell (a search, the winners'
    retraining, benchmarks and GGUF files are written piece by piece). The report never is: it is
    cheap and always drawn from everything on disk."""
    if not run.is_run():
        return set()
    finished = run.finished_stages()
    on_disk = {
        Stage.TEACHER: run.teacher.exists(),
        Stage.IMPORTANCE: (run.importance / "importance.json").exists(),
        Stage.TARGETS: (run.targets / "targets.json").exists(),
        Stage.LATENCY: run.latency.exists(),
        Stage.SAMPLES: run.samples.exists(),
    }
    marked = {
        stage: stage.value in finished
        for stage in (Stage.SEARCH, Stage.RETRAIN, Stage.BENCHMARKS, Stage.GGUF)
    }
    return {stage for stage, done in {**on_disk, **marked}.items() if done}


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def eta(estimates: dict[str, float], timings: dict[str, float], started: float) -> str:
    """What is left, as a line: the stages not yet timed, scaled by how the timed ones compared with
    their estimates (measured ÷ estimated over the stages estimated and finished in this session)."""
    finished = [name for name in timings if name in estimates]
    spent = sum(timings[name] for name in finished)
    planned = sum(estimates[name] for name in finished)
    scale = spent / planned if planned > 0 and spent > 0 else 1.0
    left = sum(seconds for name, seconds in estimates.items() if name not in timings) * scale
    elapsed = time.perf_counter() - started
    return f"[time] {duration(elapsed)} spent, about {duration(left)} left (estimates x{scale:.2f} so far)"


class StageLog:
    """Runs the stages of one session of a run and keeps their times.

    `timings` holds the seconds of every stage run or read back (an earlier session's time for one
    read back); `estimates` the seconds each stage still to run was estimated to take, once the
    time budget is known (then the ETA follows each estimated stage)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.estimates: dict[str, float] = {}

    def __call__(self, stage: Stage, work: Callable[[bool], T]) -> T:
        """Run `stage`: `work(done)` computes its result, or reads it back when `done` (an earlier
        session finished it), and returns it."""
        done = stage in done_stages(self.run)
        print(f"[stage] {stage} ..." + (" (done earlier: reading it back)" if done else ""), flush=True)
        start = time.perf_counter()
        with Watch("stage", f"{stage} still running", fallback=True):
            result = work(done)
        seconds = time.perf_counter() - start
        print(f"[stage] {stage} done in {duration(seconds)}", flush=True)
        earlier = self.run.finished_stages().get(stage.value) if self.run.is_run() else None
        self.timings[stage.value] = earlier if done and earlier is not None else seconds
        if self.run.is_run() and not done:
            self.run.mark_finished(stage.value, seconds)
        if not done and stage.value in self.estimates:
            print(eta(self.estimates, self.timings, self.started), flush=True)
        return result

    def todo(self) -> set[str]:
        """The stages not yet done, by name."""
        done = done_stages(self.run)
        return {stage.value for stage in Stage if stage not in done}

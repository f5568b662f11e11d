"""A pipeline as a list of named stages, each of which says whether it is done.

Each stage logs its start, end and duration. A stage that is done (its result is on disk from an
earlier session of the run) is read back instead of computed, and says so; finished stages and
their time are kept in the run directory's `stages.json`. In a log file, a stage that prints no
progress for an interval says it is still running (`minitron.progress.Watch`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from minitron.watch import Watch
from search.outputs.rundir import RunDir

C = TypeVar("C")


@dataclass(frozen=True)
class Stage(Generic[C]):
    """One step of the pipeline over a context `C` that carries what stages hand on."""

    name: str
    run: Callable[[C, bool], None]
    """Put the stage's result into the context: computed, or read back when told it is done."""
    done: Callable[[C], bool]
    """Whether an earlier session of the run finished this stage."""


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def run_stages(
    stages: list[Stage[C]],
    context: C,
    run: RunDir,
    timings: dict[str, float],
    after: Callable[[str, bool], None] | None = None,
) -> None:
    """Run every stage in order; `timings` gets the seconds of each (earlier sessions' when read back).
    `after(name, done)` is called once each stage has finished (e.g. to print the ETA)."""
    for stage in stages:
        done = stage.done(context)
        print(f"[stage] {stage.name} ..." + (" (done earlier: reading it back)" if done else ""), flush=True)
        start = time.perf_counter()
        with Watch("stage", f"{stage.name} still running", fallback=True):
            stage.run(context, done)
        seconds = time.perf_counter() - start
        print(f"[stage] {stage.name} done in {duration(seconds)}", flush=True)
        earlier = run.finished_stages().get(stage.name) if run.is_run() else None
        timings[stage.name] = earlier if done and earlier is not None else seconds
        if run.is_run() and not done:
            run.mark_finished(stage.name, seconds)
        if after is not None:
            after(stage.name, done)

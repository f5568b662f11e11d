"""Following work that runs elsewhere: while a process waits (on Ray tasks, Tune trials), it prints
at the interval the progress that the work writes to its files (`minitron.progress.Progress` with
`file=`), or that it is still waiting and for how long. Only in a log, as progress lines.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minitron.progress import PRINTER, Printer, Progress, ProgressState, duration

#: Seconds within which a progress whose line is due is expected to print it (its next unit of
#: work ends then), so that a stage's fallback line does not come just before it.
IMMINENT = 5.0


def _of(total: int | None) -> str:
    return f"/{total:,}" if total is not None else ""


def _imminent(progress: Progress, now: float) -> bool:
    """Whether `progress` prints its own line within `IMMINENT` seconds of now: its next update is
    expected then (going by its mean unit) and its line will be due by then."""
    done = progress.n - progress.first
    if done <= 0:
        return False
    expected = progress.updated + (progress.updated - progress.started) / done
    return abs(expected - now) <= IMMINENT and expected - progress.printed >= progress.every


class Watch:
    """While a block waits on work elsewhere (Ray tasks, Tune trials), print at the interval the
    progress that work writes to its files, `[<stage>] <label>: <line>`, and where none reports, that
    it is still `waiting` and for how long. Files are `files` (label -> path) and the `*.json` of
    `folder` (labelled by name); only those written since the watch began count, until done.

    `fallback`: print the waiting line only when nothing at all was printed by progress for an
    interval (the heartbeat of a whole stage). Prints only where `Progress` prints lines (a log); a
    daemon thread does the printing, `tick` is one round of it (tests call it directly)."""

    def __init__(
        self,
        stage: str,
        waiting: str,
        files: Mapping[str, Path] | None = None,
        folder: Path | None = None,
        *,
        fallback: bool = False,
        printer: Printer | None = None,
    ) -> None:
        self.stage, self.waiting = stage, waiting
        self.files, self.folder, self.fallback = dict(files or {}), folder, fallback
        self.printer = printer or PRINTER
        self.every = self.printer.every()
        self.started = self.printed = self.printer.clock()
        self.since = time.time() - 1.0  # a file's mtime at a coarse clock may be just behind
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        if not self.fallback:
            with self.printer.lock:
                self.printer.watching += 1
        if self.printer.logging():
            self._thread = threading.Thread(target=self._run, name=f"progress {self.stage}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.fallback:
            with self.printer.lock:
                self.printer.watching -= 1

    def _run(self) -> None:
        while not self._stop.wait(min(self.every / 4, 1.0)):
            with contextlib.suppress(Exception):  # a watch never takes the run down
                self.tick()

    def active(self) -> dict[str, tuple[ProgressState, float]]:
        """Label -> (state, its age in seconds) of each file written since the watch began and not
        yet done."""
        paths = dict(self.files)
        if self.folder is not None and self.folder.is_dir():
            paths |= {p.stem: p for p in sorted(self.folder.glob("*.json"))}
        found: dict[str, tuple[ProgressState, float]] = {}
        for label, path in paths.items():
            try:
                written = path.stat().st_mtime
            except OSError:
                continue
            state = ProgressState.read(path) if written >= self.since else None
            if state is not None and not state.done:
                found[label] = (state, time.time() - written)
        return found

    def tick(self) -> None:
        """Print what is due now."""
        printer = self.printer
        now = printer.clock()
        with printer.lock:
            quiet = now - max(printer.last, self.started)
            others = printer.watching
            live = list(printer.live)
        if self.fallback:
            # a progress about to update prints its own line then; one stuck in a long unit does not
            if quiet >= self.every and not others and not any(_imminent(p, now) for p in live):
                within = "".join(f" ({p.stage}: {p.unit} {p.n:,}{_of(p.total)})" for p in live)
                printer.emit(f"[{self.stage}] {self.waiting}{within}, {duration(now - self.started)} so far")
            return
        if now - self.printed < self.every:
            return
        self.printed = now
        states = self.active()
        for label, (state, age) in states.items():
            # not written within the interval (a step longer than it): say how old it is
            stale = f" (as of {duration(age)} ago)" if age >= self.every else ""
            printer.emit(f"[{self.stage}] {label}: {state.stage} {state.line}{stale}")
        if not states:
            printer.emit(f"[{self.stage}] {self.waiting}, {duration(now - self.started)} so far")

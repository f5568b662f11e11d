"""Progress of long work, on a terminal and in a log file.

On a terminal (stderr is a tty) a stage draws its tqdm bar, as it always did. Where stdout is not a
terminal (`make search > run.log`, nohup, Slurm, CI), work that lasts longer than the interval
prints a plain line at most once per interval, and a last line when it ends, as Lightning and the
Hugging Face Trainer do in a log:

    [retrain] step 40/63, 40,960 tokens, loss 4.213, 152 tok/s, ETA 3m10s

The interval is `MINITRON_PROGRESS_EVERY` seconds (default 30; 0: no progress lines). Work that
runs in a process whose output does not reach the log (a Ray worker) writes the same progress to a
small JSON file (`Progress(file=...)`, atomically, every few seconds), and the process that waits
for it prints it at the interval (`minitron.watch.Watch`), or, where nothing reports, that it is
still waiting and for how long: no stage is silent for longer than the interval.

Progress reads clocks and counters, and a training loss once per line or file write: it never
touches a random generator, the data order or what is computed.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from tqdm.auto import tqdm

from minitron import codec
from minitron.atomic import write_json
from minitron.errors import MinitronError
from minitron.runtime import show_progress

ENV = "MINITRON_PROGRESS_EVERY"
#: Seconds between two progress lines of one piece of work in a log.
DEFAULT_EVERY = 30.0
#: Seconds between two writes of a progress file (at most; never more often than the lines).
FILE_EVERY = 5.0

T = TypeVar("T")
_warned: set[str] = set()


def progress_every() -> float:
    """`MINITRON_PROGRESS_EVERY` in seconds (default 30; 0 or less: no progress lines). A value
    that is not a number is warned about once and the default used: a run is not stopped for it."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_EVERY
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        if raw not in _warned:
            _warned.add(raw)
            print(
                f"warning: {ENV}={raw!r} is not a number of seconds; progress lines every "
                f"{DEFAULT_EVERY:g} s",
                file=sys.stderr,
            )
        return DEFAULT_EVERY
    return max(value, 0.0)


def log_mode() -> bool:
    """Whether stdout goes to a file or a pipe rather than a terminal (then progress prints lines)."""
    isatty = getattr(sys.stdout, "isatty", None)
    return not (callable(isatty) and isatty())


def duration(seconds: float) -> str:
    """`45s`, `3m10s`, `2h05m10s`."""
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


@dataclass(frozen=True)
class ProgressState:
    """What a `Progress` with `file=` writes there at the interval, for a process that waits on it
    (`minitron.watch.Watch`) to print: where it stands, and the line it would print itself."""

    stage: str
    unit: str
    n: int
    total: int | None
    tokens: int | None
    loss: float | None
    rate: float
    """Units per second of this session."""
    eta_s: float | None
    elapsed_s: float
    done: bool
    line: str
    time: float
    """When it was written (seconds since the epoch)."""

    @classmethod
    def read(cls, path: Path) -> ProgressState | None:
        """The state in `path`, or None when it is absent, half-written or not a state."""
        try:
            return codec.load(cls, path)
        except MinitronError:
            return None


class Printer:
    """Where progress lines go (stdout unless told) and when the last one went: shared by every
    `Progress` and `minitron.watch.Watch` of a process, so that a stage's fallback line stays quiet
    while anything else reports. `log`, `every` and `clock` are fixed only by tests; by default
    they follow stdout, `MINITRON_PROGRESS_EVERY` and the monotonic clock."""

    def __init__(
        self,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: bool | None = None,
        every: float | None = None,
    ) -> None:
        self._out, self.clock, self._log, self._every = out, clock, log, every
        self.lock = threading.Lock()
        self.last = -math.inf
        """When (on `clock`) the last line was printed."""
        self.watching = 0
        """`Watch`es (not fallbacks) open now: each prints every interval, so fallbacks keep quiet."""
        self.live: weakref.WeakSet[Progress] = weakref.WeakSet()
        """`Progress`es printing lines now: one updated within the interval prints its own line at
        its next update, so a fallback keeps quiet for it."""

    def every(self) -> float:
        return progress_every() if self._every is None else self._every

    def logging(self) -> bool:
        """Whether lines are printed at all: stdout is not a terminal and the interval is positive."""
        return (log_mode() if self._log is None else self._log) and self.every() > 0

    def emit(self, line: str) -> None:
        """Print one line (one write, flushed) and note the time."""
        with self.lock:
            out = self._out if self._out is not None else sys.stdout
            out.write(line + "\n")
            out.flush()
            self.last = self.clock()


PRINTER = Printer()
"""The process's printer (stdout)."""


def _fresh_lock() -> None:
    PRINTER.lock = threading.Lock()  # a child forked while a watch printed must not inherit it held


os.register_at_fork(after_in_child=_fresh_lock)


def _plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "ch", "x")) else "s")


class Progress:
    """One piece of work counted in `unit`s: a tqdm bar on a terminal (when `enabled` and `draw`),
    a line per interval in a log (when `enabled`), the latest state in `file` (always, when given).

    `update(n, loss=..., tokens=...)` after each unit of work; `close()` at its end (or use it as a
    context manager, or `track`). Tokens are `tokens_per_step` per unit unless `update` counts them.
    The loss shown is the mean of the losses handed to `update` since the last line or file write;
    a tensor is read (`.item()`) only then."""

    def __init__(
        self,
        stage: str,
        total: int | None = None,
        *,
        unit: str = "step",
        initial: int = 0,
        tokens_per_step: int = 0,
        enabled: bool = True,
        draw: bool = True,
        file: Path | None = None,
        printer: Printer | None = None,
    ) -> None:
        self.stage, self.total, self.unit = stage, total, unit
        self.printer = printer or PRINTER
        self.n = self.first = initial
        self.tokens_per_step = tokens_per_step
        self.tokens = self.first_tokens = initial * tokens_per_step
        self.bar = tqdm(
            total=total, initial=initial, desc=stage, unit=unit, disable=not (draw and show_progress(enabled))
        )
        self.lines = enabled and self.printer.logging()
        self.file = Path(file) if file is not None else None
        self.every = self.printer.every()
        self.file_every = min(FILE_EVERY, self.every) if self.every > 0 else FILE_EVERY
        self.started = self.printed = self.written = self.updated = self.printer.clock()
        self.printed_any = self.closed = False
        self._loss_sum: Any = None
        self._loss_count = 0
        self.loss: float | None = None
        """The mean training loss at the last line or file write."""
        if self.file is not None:
            self._write(self.started, done=False)
        if self.lines:
            with self.printer.lock:
                self.printer.live.add(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.close(finished=kind is None)

    def update(self, n: int = 1, *, loss: Any = None, tokens: int | None = None) -> None:
        """`n` more units done; `loss` (a float or a tensor) of the last of them; `tokens` they held."""
        self.n += n
        self.tokens += n * self.tokens_per_step if tokens is None else tokens
        self.bar.update(n)
        if not self.lines and self.file is None:
            return
        if loss is not None:
            value = loss.detach().float() if hasattr(loss, "detach") else float(loss)
            self._loss_sum = value if self._loss_sum is None else self._loss_sum + value
            self._loss_count += 1
        now = self.updated = self.printer.clock()
        last = self.total is not None and self.n >= self.total  # `close` prints the last line
        if self.lines and now - self.printed >= self.every and not last:
            self.printer.emit(f"[{self.stage}] {self.describe(now)}")
            self.printed, self.printed_any = now, True
        if self.file is not None and now - self.written >= self.file_every:
            self._write(now, done=False)

    def close(self, finished: bool = True) -> None:
        """The end: a last line when the work printed any (or lasted an interval), the file marked
        done. `finished=False` (the work failed or was stopped): no last line."""
        if self.closed:
            return
        self.closed = True
        self.bar.close()
        with self.printer.lock:
            self.printer.live.discard(self)
        now = self.printer.clock()
        if finished and self.lines and (self.printed_any or now - self.started >= self.every):
            self.printer.emit(f"[{self.stage}] {self.describe(now, done=True)}")
        if self.file is not None:
            self._write(now, done=True)

    def describe(self, now: float, done: bool = False) -> str:
        """`step 40/63, 40,960 tokens, loss 4.213, 152 tok/s, ETA 3m10s` (what applies of it)."""
        self._read_loss()
        count = f"{self.n:,}/{self.total:,}" if self.total is not None else f"{self.n:,}"
        parts = [f"{self.unit} {count}"]
        if self.tokens:
            parts.append(f"{self.tokens:,} tokens")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        rate = self.rate(now)
        if rate:
            if self.tokens > self.first_tokens:
                tokens_rate = (self.tokens - self.first_tokens) / (now - self.started)
                parts.append(f"{tokens_rate:,.0f} tok/s")
            elif rate >= 1:
                parts.append(f"{rate:.1f} {_plural(self.unit)}/s")
            else:
                parts.append(f"{1 / rate:.1f} s/{self.unit}")
        if done:
            parts.append(f"done in {duration(now - self.started)}")
        elif self.total is not None and self.n < self.total and (eta := self.eta(rate)) is not None:
            parts.append(f"ETA {duration(eta)}")
        else:
            parts.append(f"{duration(now - self.started)} so far")
        return ", ".join(parts)

    def eta(self, rate: float) -> float | None:
        """Seconds left at `rate` units per second (None without a rate or a total)."""
        return (self.total - self.n) / rate if rate and self.total is not None else None

    def rate(self, now: float) -> float:
        """Units per second of this session (0 before the first)."""
        elapsed = now - self.started
        return (self.n - self.first) / elapsed if elapsed > 0 and self.n > self.first else 0.0

    def _read_loss(self) -> None:
        if self._loss_count:
            total = self._loss_sum.item() if hasattr(self._loss_sum, "item") else float(self._loss_sum)
            self.loss = total / self._loss_count
            self._loss_sum, self._loss_count = None, 0

    def _write(self, now: float, done: bool) -> None:
        assert self.file is not None
        rate = self.rate(now)
        line = self.describe(now, done)
        state = ProgressState(
            stage=self.stage,
            unit=self.unit,
            n=self.n,
            total=self.total,
            tokens=self.tokens,
            loss=self.loss,
            rate=rate,
            eta_s=self.eta(rate),
            elapsed_s=now - self.started,
            done=done,
            line=line,
            time=time.time(),
        )
        with contextlib.suppress(OSError):  # never worth failing the work for (a full disk fails elsewhere)
            write_json(self.file, codec.encode(state))
        self.written = now


def track(iterable: Iterable[T], stage: str, total: int | None = None, **options: Any) -> Iterator[T]:
    """`iterable`, counted by a `Progress` (one unit per item) that closes when it ends."""
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    progress = Progress(stage, total, **options)
    finished = False
    try:
        for item in iterable:
            yield item
            progress.update(1)
        finished = True
    finally:
        progress.close(finished=finished)


def counting_bars(
    module: Any, stage: str, file: Path | None = None
) -> contextlib.AbstractContextManager[None]:
    """A context in which `module.tqdm` (a library's progress bar class, e.g. lm-eval's) also counts
    into a `Progress` per bar: lines in a log and `file`, whether or not the library draws its bar
    (`TQDM_DISABLE` leaves a bar's `update` and `close` to be called all the same)."""
    original = getattr(module, "tqdm", None)
    if not isinstance(original, type):
        return contextlib.nullcontext()

    class Counted(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._mirror = Progress(stage, kwargs.get("total"), unit="request", draw=False, file=file)

        def update(self, n: Any = 1) -> Any:
            if getattr(self, "_mirror", None) is not None:
                self._mirror.update(int(n or 0))
            return super().update(n)

        def close(self) -> None:
            if getattr(self, "_mirror", None) is not None:
                self._mirror.close()
            super().close()

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        module.tqdm = Counted
        try:
            yield
        finally:
            module.tqdm = original

    return patched()

"""Progress in a log: plain lines at an interval where stdout is not a terminal, progress files that a
waiting process prints (`minitron.progress`), and nothing extra on a terminal."""

from __future__ import annotations

import io
import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import tqdm

from minitron.data.tokens import TokenizedCorpus
from minitron.distill.retrain import PROGRESS, RetrainConfig, retrain
from minitron.progress import ENV, Printer, Progress, counting_bars, progress_every, track
from minitron.runtime import Placement
from minitron.watch import Watch
from tests.tiny import tiny_model


class Clock:
    """A fake monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _log(every: float = 30.0, log: bool = True) -> tuple[Printer, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return Printer(out=out, clock=clock, log=log, every=every), out, clock


def test_a_log_gets_a_line_per_interval_with_step_tokens_loss_rate_and_eta_and_a_last_line():
    printer, out, clock = _log(every=30)
    progress = Progress("retrain", 63, tokens_per_step=1024, printer=printer)
    for step in range(1, 64):
        clock.now += 1.0  # one step a second
        progress.update(1, loss=5.0 - 0.01 * step)
    progress.close()
    assert out.getvalue().splitlines() == [
        # the mean training loss of the steps since the last line: 5 - 0.01 * mean(1..30)
        "[retrain] step 30/63, 30,720 tokens, loss 4.845, 1,024 tok/s, ETA 33s",
        "[retrain] step 60/63, 61,440 tokens, loss 4.545, 1,024 tok/s, ETA 3s",
        "[retrain] step 63/63, 64,512 tokens, loss 4.380, 1,024 tok/s, done in 1m03s",
    ]


def test_lines_follow_the_interval_and_say_what_applies():
    printer, out, clock = _log(every=10)
    # no total, no tokens, slower than one unit a second: count, seconds per unit, time so far
    with Progress("importance (depth)", unit="eval", printer=printer) as progress:
        for _ in range(5):
            clock.now += 4.0
            progress.update(1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "[importance (depth)] eval 3, 4.0 s/eval, 12s so far",
        "[importance (depth)] eval 5, 4.0 s/eval, done in 20s",
    ]
    printer, out, clock = _log(every=10)
    for _ in track(range(40), "teacher targets", unit="batch", printer=printer):
        clock.now += 0.5
    assert out.getvalue().splitlines()[0] == "[teacher targets] batch 20/40, 2.0 batches/s, ETA 10s"
    assert "batch/s" not in out.getvalue() and "it/s" not in out.getvalue()  # not a tqdm bar's text


def test_short_work_and_a_terminal_print_nothing(monkeypatch, capsys):
    printer, out, clock = _log(every=30)
    with Progress("validation", 4, unit="batch", printer=printer) as progress:
        for _ in range(4):
            clock.now += 1.0
            progress.update(1)
    assert out.getvalue() == "", "work shorter than the interval prints nothing, not even a last line"

    printer, out, clock = _log(every=30, log=False)  # stdout is a terminal
    with Progress("retrain", 100, printer=printer) as progress:
        for _ in range(100):
            clock.now += 10.0
            progress.update(1, loss=1.0)
    assert out.getvalue() == ""
    with Watch("stage", "teacher still running", fallback=True, printer=printer) as watch:
        assert watch._thread is None, "no watch runs on a terminal"

    # the real decision: stdout a terminal or not, read when the work starts
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv(ENV, "0.000001")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with Progress("retrain", 3) as progress:
        for _ in range(3):
            progress.update(1)
    assert terminal.getvalue() == ""
    monkeypatch.undo()
    monkeypatch.setenv(ENV, "0.000001")
    with Progress("retrain", 3) as progress:
        for _ in range(3):
            progress.update(1)
    assert "[retrain] step 3/3" in capsys.readouterr().out, "a captured stdout is a log"


def test_the_interval_setting(monkeypatch, capsys):
    monkeypatch.delenv(ENV, raising=False)
    assert progress_every() == 30.0
    monkeypatch.setenv(ENV, "10")
    assert progress_every() == 10.0
    monkeypatch.setenv(ENV, "0")
    assert progress_every() == 0.0 and not Printer(log=True).logging(), "0 switches the lines off"
    monkeypatch.setenv(ENV, "soon")
    assert progress_every() == 30.0
    assert "MINITRON_PROGRESS_EVERY='soon' is not a number of seconds" in capsys.readouterr().err


def test_a_watch_prints_the_progress_files_of_work_elsewhere_or_that_it_waits(tmp_path):
    printer, out, clock = _log(every=30)
    file = tmp_path / "1-L20" / "progress.json"
    with Watch(
        "winners", "retraining 1-L20: loading, testing or saving", {"1-L20": file}, printer=printer
    ) as w:
        clock.now = 29.0
        w.tick()
        assert out.getvalue() == ""
        clock.now = 30.0
        w.tick()  # no file yet
        worker = Progress("retrain", 63, tokens_per_step=1024, enabled=False, file=file, printer=printer)
        state = json.loads(file.read_text())
        assert state["n"] == 0 and state["total"] == 63 and not state["done"]
        for _ in range(10):
            clock.now += 1.0
            worker.update(1, loss=4.0)
        clock.now = 45.0
        w.tick()  # not yet an interval since the last line
        clock.now = 60.0
        w.tick()
        worker.close()
        clock.now = 90.0
        w.tick()  # done: waiting again
    assert out.getvalue().splitlines() == [
        "[winners] retraining 1-L20: loading, testing or saving, 30s so far",
        "[winners] 1-L20: retrain step 10/63, 10,240 tokens, loss 4.000, 1,024 tok/s, ETA 53s",
        "[winners] retraining 1-L20: loading, testing or saving, 1m30s so far",
    ]
    state = json.loads(file.read_text())
    assert state["done"] and state["n"] == 10 and state["tokens"] == 10240 and state["loss"] == 4.0


def test_a_stage_heartbeat_only_when_nothing_else_reported(tmp_path):
    printer, out, clock = _log(every=30)
    with Watch("stage", "teacher still running", fallback=True, printer=printer) as stage:
        clock.now = 31.0
        stage.tick()
        printer.emit("[teacher samples] doc 32/256, ...")  # work that reports for itself
        clock.now = 50.0
        stage.tick()
        with Watch("winners", "retraining", folder=tmp_path, printer=printer):
            clock.now = 100.0
            stage.tick()  # a watch of its own prints every interval
        clock.now = 130.0
        stage.tick()
    assert out.getvalue().splitlines() == [
        "[stage] teacher still running, 31s so far",
        "[teacher samples] doc 32/256, ...",
        "[stage] teacher still running, 2m10s so far",
    ]


def test_a_stage_heartbeat_waits_for_work_that_updates_and_names_work_that_is_stuck():
    """Work updated within the interval prints its own line at its next update (no heartbeat beside
    it); work stuck in one long unit (a batch of samples) gets the heartbeat, which says where it is."""
    printer, out, clock = _log(every=30)
    with Watch("stage", "teacher still running", fallback=True, printer=printer) as stage:
        samples = Progress("teacher samples", 768, printer=printer)
        for _ in range(6):
            clock.now += 4.5
            samples.update(1)
            stage.tick()
        clock.now = 32.0
        stage.tick()  # due, but the samples updated 5 s ago: their line comes at their next step
        clock.now = 33.0
        samples.update(1)  # their line
        clock.now = 70.0
        stage.tick()  # stuck in one step since 33 s
        samples.close()
    assert out.getvalue().splitlines() == [
        "[teacher samples] step 7/768, 4.7 s/step, ETA 59m48s",
        "[stage] teacher still running (teacher samples: step 7/768), 1m10s so far",
        "[teacher samples] step 7/768, 10.0 s/step, done in 1m10s",
    ]


def test_a_stage_heartbeat_does_not_wait_for_a_slow_unit():
    """Units longer than a fraction of the interval: the line due comes only with the next unit, so
    the stage says where it is at the interval instead of going silent until then."""
    printer, out, clock = _log(every=30)
    with Watch("stage", "teacher targets still running", fallback=True, printer=printer) as stage:
        targets = Progress("teacher targets", 8, unit="batch", printer=printer)
        for now in (25.0, 50.0, 75.0):  # a line at 50
            clock.now = now
            targets.update(1)
            stage.tick()
        clock.now = 80.0
        stage.tick()  # the next batch at 100 would print, but 20 s from now
        clock.now = 100.0
        targets.update(1)
        for now in (129.0, 130.0):  # the next batch at 125 has no line due
            clock.now = now
            stage.tick()
    assert out.getvalue().splitlines() == [
        "[teacher targets] batch 2/8, 25.0 s/batch, ETA 2m30s",
        "[stage] teacher targets still running (teacher targets: batch 3/8), 1m20s so far",
        "[teacher targets] batch 4/8, 25.0 s/batch, ETA 1m40s",
        "[stage] teacher targets still running (teacher targets: batch 4/8), 2m10s so far",
    ]


def test_a_library_bar_counts_into_a_progress_file(tmp_path):
    """lm-eval's bars (its module's `tqdm`) are counted even where they are not drawn."""
    module = types.SimpleNamespace(tqdm=tqdm.tqdm)
    file = tmp_path / "benchmarks-teacher.json"
    with counting_bars(module, "lm-eval", file):
        bar = module.tqdm(total=12, desc="Running loglikelihood requests", disable=True)
        for _ in range(12):
            bar.update(1)
        bar.close()
    assert module.tqdm is tqdm.tqdm
    state = json.loads(file.read_text())
    assert state["n"] == 12 and state["total"] == 12 and state["unit"] == "request" and state["done"]
    assert state["stage"] == "lm-eval"


class _Tokenizer:
    def save_pretrained(self, folder: Path) -> None:
        pass


def test_a_retraining_writes_its_progress_file_while_it_runs(tmp_path, monkeypatch, capsys):
    """As in a Ray worker (`progress=False`, stdout not the run's log): no lines, the latest progress
    in `out/progress.json` while it trains and then while it measures its test losses, gone once
    the final checkpoint is written."""
    import minitron.distill.retrain as retraining

    monkeypatch.setenv(ENV, "0.000001")  # a file write after every step
    rng = np.random.default_rng(0)
    stream = {s: rng.integers(0, 97, 2048, dtype=np.uint32) for s in ("train", "validation", "test")}
    tokens = TokenizedCorpus(**stream, calibration=stream["test"], eos_token_id=0, key="random")
    cfg = RetrainConfig(
        tokens=6 * 2 * 16, seq_len=16, batch_size=2, warmup_steps=1, eval_every=3, eval_sequences=2,
        test_sequences=2, checkpoint_every=0, placement=Placement(device="cpu", bf16=False),
    )  # fmt: skip
    out = tmp_path / "1-tiny"
    seen: list[dict] = []

    def at_validation(_record: object) -> None:  # step 0 validates before training starts
        if (out / PROGRESS).exists():
            seen.append(json.loads((out / PROGRESS).read_text()))

    save_final = retraining.save_final

    def saving(folder: Path, *args: object) -> None:
        seen.append(json.loads((out / PROGRESS).read_text()))
        save_final(folder, *args)

    monkeypatch.setattr(retraining, "save_final", saving)

    retrain(
        tiny_model(num_hidden_layers=1, seed=3),
        tiny_model(num_hidden_layers=1),
        tokens,
        cfg,
        out,
        _Tokenizer(),
        callback=at_validation,
        progress=False,
    )
    mid = next(state for state in seen if state["n"] == 3)
    assert mid["stage"] == "retrain" and mid["total"] == 6 and not mid["done"]
    assert mid["tokens"] == 3 * 2 * 16 and mid["loss"] is not None and mid["rate"] > 0
    assert re.fullmatch(r"step 3/6, 96 tokens, loss \d+\.\d{3}, [\d,]+ tok/s, ETA \w+", mid["line"])
    tested = seen[-1]  # as the final checkpoint is written
    assert tested["stage"] == "test loss" and tested["n"] == tested["total"] == 1 and tested["done"]
    assert not (out / PROGRESS).exists(), "a finished winner's folder holds no progress file"
    assert (out / "provenance.json").exists()
    assert "[retrain]" not in capsys.readouterr().out

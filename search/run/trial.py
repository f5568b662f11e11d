"""The Ray Tune trial: prune the teacher to the sampled architecture and probe it.

Shared inputs (importance, probe batches with the teacher's top-k logits, validation sequences)
reach each trial through Ray's object store once (`tune.with_parameters`), not re-pickled per
trial. The trial reports `probe_loss` after every probe validation (so ASHA can stop it early) and,
with every report, the candidate's parameters, zero-shot loss and measured speed (its latency is
the second objective of a range search; speed-ups against the teacher are measured afterwards,
both models in turn on one worker: `search.run.latency`).

A trial whose own code fails (an impossible shape, CUDA out of memory, ...) reports
`trial_error` as its last result and ends: it is recorded as failed, the search goes on and nothing
re-runs it. Only a lost worker or node reaches Tune as a failure, and Tune runs that trial again
(`search.run.tuning.WORKER_RETRIES`).

Testing hooks, counted by Tune trial number: `MINITRON_FAIL_TRIALS=2,5:oom` makes the 2nd trial
raise a RuntimeError and the 5th a torch.OutOfMemoryError; `MINITRON_KILL_TRIAL_WORKERS=3,4:always`
makes the worker of the 3rd trial SIGKILL itself in its first attempt and that of the 4th in every
attempt.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from minitron.distill.continuation import ProbeState, prefix_of
from minitron.distill.history import Validation
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.targets import TeacherTargets
from minitron.errors import failure_line
from minitron.eval.loss import validation_loss
from minitron.importance.scores import Importance
from minitron.importance.selection import DepthMethod
from minitron.model.architecture import Architecture
from minitron.model.speed import Speed, measure_speed
from minitron.model.teacher import load_teacher
from minitron.prune import prune, prune_from_checkpoint
from minitron.runtime import resolve_device, set_threads
from search.outputs.records import ProbeReport, ProbeStart, TrialRecord
from search.plan.settings import SearchSettings
from search.run.sampling import architecture_of


@dataclass
class SharedInputs:
    """What every trial needs, put into the object store once: the run's settings, the teacher's
    whereabouts, the big shared inputs and where the run keeps a trial's traces."""

    settings: SearchSettings
    """The run's settings (the probe's config, the depth method, threads, the latency runtime)."""
    teacher_path: str
    """A local path `load_teacher` reads (the resolved teacher)."""
    teacher_checkpoint: str | None
    """The teacher's safetensors folder, from which a trial reads only its student's slices; None
    (a GGUF file, pickle weights) loads the whole teacher in the trial."""
    importance: Importance
    targets: TeacherTargets
    validation: torch.Tensor
    """Validation sequences for the zero-shot and probe losses."""
    finished: dict[str, TrialRecord]
    """Trials that completed or failed in an earlier session of this run (by architecture label): a
    trial that Tune restarts after a driver crash reports the recorded result (or error) instead of
    probing again."""
    probe_starts: str
    """`probe_starts.jsonl` in the run directory: one line appended per probe actually started."""
    probe_states: str | None = None
    """Folder where a probe that runs to its end keeps its state, one folder per architecture, for
    its winner's retraining to continue from (`minitron.distill.continuation`); None: not kept."""
    progress: str | None = None
    """Folder where a probe keeps its latest progress (`<architecture>.json`, `minitron.progress`),
    which the driver prints into the run's log; None: none written."""

    @property
    def probe(self) -> ProbeConfig:
        return self.settings.probe

    @property
    def depth(self) -> DepthMethod:
        return self.settings.plan.depth

    @property
    def threads(self) -> int:
        return self.settings.resources.threads

    @property
    def latency_quant(self) -> str | None:
        """None: latency measured in PyTorch; a GGUF quantization: in llama.cpp."""
        return self.settings.plan.latency_runtime.quant


def _hook(variable: str, trial_number: int) -> str | None:
    """The mode (`""` or what follows `:`) a testing hook gives this trial number, None if none."""
    for item in os.environ.get(variable, "").split(","):
        number, _, mode = item.strip().partition(":")
        if number == str(trial_number):
            return mode
    return None


def _injected_faults(context: Any, arch: Architecture, starts: str) -> None:
    number = trial_number(context)
    kill = _hook("MINITRON_KILL_TRIAL_WORKERS", number)
    if kill is not None:
        earlier = sum(1 for s in ProbeStart.read_all(Path(starts)) if s.trial_id == context.get_trial_id())
        if kill == "always" or earlier == 1:  # this attempt's own start line is already there
            os.kill(os.getpid(), signal.SIGKILL)
    fail = _hook("MINITRON_FAIL_TRIALS", number)
    if fail == "oom":
        raise torch.OutOfMemoryError(
            f"injected: CUDA out of memory probing {arch.short()} (MINITRON_FAIL_TRIALS)"
        )
    if fail is not None:
        raise RuntimeError(f"injected failure (MINITRON_FAIL_TRIALS) for {arch.short()}")


def trial_number(context: Any) -> int:
    """The 1-based index Tune gives a trial, read from its folder name (`probe_trial_<id>_<n>_<params>`)."""
    name = Path(context.get_trial_dir()).name
    match = re.search(re.escape(context.get_trial_id()) + r"_(\d+)", name)
    return int(match.group(1)) if match else 0


def probe_trial(config: dict[str, Any], shared: SharedInputs) -> None:
    """Tune function trainable: one candidate architecture, pruned and probed."""
    set_threads(shared.threads)
    arch: Architecture = architecture_of(config)
    context = tune.get_context()
    recorded = shared.finished.get(arch.short())
    if recorded is not None:
        tune.report(recorded.replayed().metrics())
        return
    _log_start(shared.probe_starts, arch, context.get_trial_id())
    try:
        _injected_faults(context, arch, shared.probe_starts)
        _probe(config, shared, arch)
    except Exception as err:  # the trial's own failure: recorded as such, never retried
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        tune.report(ProbeReport(arch.short(), int(config["params"]), trial_error=failure_line(err)).metrics())


def _student(shared: SharedInputs, arch: Architecture) -> Any:
    """The candidate, on this trial's device, in fp32 (mixed precision is the probe's autocast).

    Read slice by slice from the teacher's checkpoint when there is one: the trial then holds only
    its student, never the teacher (an 8B teacher in every concurrent trial would not fit)."""
    device = resolve_device()
    if shared.teacher_checkpoint:
        return prune_from_checkpoint(
            shared.teacher_checkpoint, arch, shared.importance, shared.depth, torch.float32, device
        )
    teacher = load_teacher(shared.teacher_path, offline=True, **shared.settings.teacher_options())
    return prune(teacher.model.to(device), arch, shared.importance, depth=shared.depth)


def _speed(shared: SharedInputs, student: Any, seq_len: int) -> Speed:
    """The candidate's latency where the run measures latencies: PyTorch, or llama.cpp."""
    if shared.latency_quant is None:
        return measure_speed(student, seq_len=seq_len, bf16=shared.probe.placement.apply()[1])
    from minitron.export import llamacpp
    from minitron.export.gguf_file import teacher_tokenizer_keys

    vocab = int(student.config.vocab_size)
    keys = teacher_tokenizer_keys(shared.teacher_path, shared.teacher_checkpoint, vocab)
    with llamacpp.loaded(student, shared.latency_quant, keys, seq_len, shared.threads) as runner:
        return llamacpp.measure_speed(runner, seq_len)


def _probe(config: dict[str, Any], shared: SharedInputs, arch: Architecture) -> None:
    seq_len = int(shared.validation.shape[1])
    student = _student(shared, arch)
    speed = _speed(shared, student, seq_len)
    zero_shot = validation_loss(student, shared.validation, progress=False).loss
    fixed = ProbeReport(
        arch.short(),
        int(config["params"]),
        zero_shot_loss=zero_shot,
        latency_ms=speed.latency_ms,
        tokens_per_s=speed.tokens_per_s,
        device=speed.device,
    )
    sequences, seq_len = shared.targets.input_ids.shape
    steps = shared.probe.steps(int(sequences), int(seq_len))
    last: list[dict[str, Any]] = []

    def report(record: Validation) -> None:
        done = record.step >= steps
        result = dataclasses.replace(
            fixed,
            probe_loss=record.val_loss,
            probe_tokens=float(record.tokens),
            train_loss=record.train_loss,
            probe_done=done,
        ).metrics()
        if done:  # reported once the probe's state is kept: ASHA stops a trial at its last rung
            last.append(result)
        else:
            tune.report(result)

    probe(
        student,
        shared.targets,
        shared.probe,
        shared.validation,
        callback=report,
        state=_probe_state(shared, student, arch, steps),
        progress_file=Path(shared.progress) / f"{arch.short()}.json" if shared.progress else None,
    )
    for result in last:
        tune.report(result)


def _probe_state(shared: SharedInputs, student: Any, arch: Architecture, steps: int) -> ProbeState | None:
    """The hook that keeps the probe's end state (`None` when the run keeps none)."""
    if shared.probe_states is None:
        return None
    seq_len = int(shared.targets.input_ids.shape[1])
    meta = shared.targets.meta
    prefix = prefix_of(
        student,
        shared.probe.schedule(steps),
        shared.probe.batch_size,
        seq_len,
        int(meta.get("seed", shared.probe.seed)),
        str(meta.get("tokens", "")),
    )
    origin = {"architecture": arch.short(), "trial_id": tune.get_context().get_trial_id()}
    return ProbeState(Path(shared.probe_states) / arch.short(), prefix, origin)


def _log_start(path: str, arch: Architecture, trial_id: str) -> None:
    ProbeStart(trial_id, arch.short(), time.time(), socket.gethostname(), os.getpid()).append(Path(path))

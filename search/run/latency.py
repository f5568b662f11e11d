"""The latency stage: every probed candidate's latency against the teacher's, on one worker.

Why a stage of its own: a speed-up is a ratio of two timings, and two timings taken minutes apart
in different processes differ by more than the models do (a 2-core machine measured one teacher at
8.6 s and then 1.2 s). Here one Ray task with a trial's resources (the trials' kind of device)
loads the teacher once, cuts each candidate in turn, and times teacher and candidate alternately
(`minitron.model.speed.compare_latency`): the speed-up is the median of the per-round ratios, and
the report shows their range. Both models run in the teacher's dtype and the trials' precision,
as they would be deployed side by side; with `--latency-runtime llama.cpp:<quant>`, both are
written as GGUF files in that quantization and timed in llama.cpp instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minitron.importance.scores import Importance
from minitron.importance.selection import DepthMethod
from minitron.model.architecture import Architecture
from minitron.model.speed import LatencyComparison, Speed, Timing, compare_latency, measure_speed
from minitron.model.teacher import load_teacher
from minitron.prune import prune, prune_from_checkpoint
from minitron.runtime import Placement, cpu_description
from search.outputs.records import CandidateLatency, LatencyMeasurements, TeacherLatency, TrialRecord
from search.plan.resources import Resources
from search.plan.settings import SearchSettings

ROUNDS = 5
"""Rounds per candidate (teacher then candidate, each one sequence)."""


@dataclass(frozen=True)
class LatencyJob:
    """What the latency task needs besides the importance."""

    teacher: str
    """A spec `load_teacher` reads."""
    options: dict[str, bool]
    checkpoint: str | None
    """The teacher's safetensors folder (candidates are cut from it slice by slice), if any."""
    depth: DepthMethod
    placement: Placement
    seq_len: int
    architectures: list[Architecture]
    rounds: int = ROUNDS
    quant: str | None = None
    """None: time in PyTorch; a GGUF quantization: time teacher and candidates in llama.cpp, each
    written as a GGUF file in it (`--latency-runtime`)."""
    threads: int | None = None


def device_name(device: torch.device) -> str:
    """The kind of device, as a person names it: the GPU model, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_description()


def measure_latencies(job: LatencyJob, importance: Importance) -> LatencyMeasurements:
    """The teacher's speed and each candidate's latency and speed-up against it (by architecture
    label); a candidate that cannot be cut or run gets an `error` instead."""
    device, bf16 = job.placement.apply()
    teacher = load_teacher(job.teacher, offline=True, **job.options, **job.placement.teacher())
    model = teacher.model
    dtype = next(model.parameters()).dtype
    with contextlib.ExitStack() as stack:
        speed, compare, where = _timer(job, model, bf16, stack)  # warms the teacher up
        rounds, candidates = _candidates(job, importance, model, dtype, device, compare)
    medians = [t.median_ms for t in rounds] or [speed.latency_ms]
    teacher_out = TeacherLatency(
        latency_ms=sorted(medians)[len(medians) // 2],
        latency_low_ms=min(t.low_ms for t in rounds) if rounds else speed.latency_ms,
        latency_high_ms=max(t.high_ms for t in rounds) if rounds else speed.latency_ms,
        tokens_per_s=speed.tokens_per_s,
        device=where or device_name(device),
    )
    return LatencyMeasurements(teacher_out, candidates, job.rounds, job.seq_len)


Compare = Callable[[Any], LatencyComparison]


def _timer(
    job: LatencyJob, model: Any, bf16: bool, stack: contextlib.ExitStack
) -> tuple[Speed, Compare, str | None]:
    """The teacher's speed, how a candidate is compared with it, and (for llama.cpp) where it ran."""
    if job.quant is None:
        speed = measure_speed(model, seq_len=job.seq_len, bf16=bf16)
        return (
            speed,
            lambda student: compare_latency(model, student, job.seq_len, job.rounds, bf16=bf16, warm=True),
            None,
        )
    from minitron.export import llamacpp
    from minitron.export.gguf_file import teacher_tokenizer_keys

    quant, n, threads = job.quant, job.seq_len, job.threads
    keys = teacher_tokenizer_keys(job.teacher, job.checkpoint, int(model.config.vocab_size))
    reference = stack.enter_context(llamacpp.loaded(model, quant, keys, n, threads))
    speed = llamacpp.measure_speed(reference, n)

    def compare(student: Any) -> LatencyComparison:
        with llamacpp.loaded(student, quant, keys, n, threads) as runner:
            return llamacpp.compare_latency(reference, runner, n, job.rounds, warm=True)

    return speed, compare, f"{llamacpp.device_name()}, {quant.upper()}"


def _candidates(
    job: LatencyJob,
    importance: Importance,
    model: Any,
    dtype: torch.dtype,
    device: torch.device,
    compare: Compare,
) -> tuple[list[Timing], dict[str, CandidateLatency]]:
    """Each candidate cut in turn and compared with the teacher: the teacher's rounds, and the
    candidates' figures by architecture label."""
    rounds: list[Timing] = []
    candidates: dict[str, CandidateLatency] = {}
    for arch in job.architectures:
        try:
            if job.checkpoint:
                student = prune_from_checkpoint(job.checkpoint, arch, importance, job.depth, dtype, device)
            else:
                student = prune(model, arch, importance, depth=job.depth)
            compared = compare(student)
        except Exception as err:  # one candidate's failure is recorded, the others are measured
            candidates[arch.short()] = CandidateLatency(error=f"{type(err).__name__}: {err}".splitlines()[0])
            continue
        finally:
            student = None
        rounds.append(compared.reference)
        candidates[arch.short()] = CandidateLatency(
            latency_ms=compared.model.median_ms,
            latency_low_ms=compared.model.low_ms,
            latency_high_ms=compared.model.high_ms,
            teacher_latency_ms=compared.reference.median_ms,
            speedup=compared.speedup,
            speedup_low=compared.speedup_low,
            speedup_high=compared.speedup_high,
            latency_rounds=compared.model.rounds,
        )
    return rounds, candidates


def run_latency_task(job: LatencyJob, importance: Importance, resources: Resources) -> LatencyMeasurements:
    """`measure_latencies` in a Ray task with a trial's resources (run again, twice at most, if its
    worker dies). Speed-ups are a report's figures, not its results: when the task fails for good,
    the run goes on without them and says why."""
    import ray

    from search.run.ray_runtime import error_line, remote

    try:
        result: LatencyMeasurements = ray.get(remote(measure_latencies, resources).remote(job, importance))
    except ray.exceptions.RayError as err:
        print(f"[latency] failed, the report has no speed-ups: {error_line(err)}", flush=True)
        return LatencyMeasurements(rounds=job.rounds, error=error_line(err))
    return result


def measure_run(
    settings: SearchSettings, teacher: str, importance: Importance, trials: list[TrialRecord], seq_len: int
) -> LatencyMeasurements:
    """The latency stage of a run: every scored trial's architecture timed against the teacher in
    one Ray task with a trial's resources."""
    from minitron.model.teacher import checkpoint_folder
    from search.run.ray_runtime import start_ray

    archs = list(dict.fromkeys(r.architecture for r in trials if r.status.scored))
    checkpoint = checkpoint_folder(teacher)
    job = LatencyJob(
        teacher=teacher,
        options=settings.teacher_options(),
        checkpoint=str(checkpoint) if checkpoint else None,
        depth=settings.plan.depth,
        placement=settings.probe.placement,
        seq_len=seq_len,
        architectures=archs,
        quant=settings.plan.latency_runtime.quant,
        threads=settings.resources.threads,
    )
    resources = settings.resources
    start_ray(resources)
    print(f"[latency] timing {len(archs)} candidates in turn with the teacher on one worker", flush=True)
    return run_latency_task(job, importance, resources)

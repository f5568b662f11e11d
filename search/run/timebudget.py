"""The run's time budget: minutes per stage estimated before the work starts, and the ETA as it goes.

Every stage's work is counted in FLOPs from the settings (tokens through the teacher, tokens through
candidates in training, benchmark requests) and divided by one rate measured on this machine at the
start: a forward pass of the teacher on one batch, in the run's precision (`calibrate`). Training
runs at `TRAIN_EFFICIENCY` of that rate (forward + backward + optimizer step; measured with
`bench/distill_throughput.py` on the 2-core CPUs). These are estimates, not promises: trial
start-up, Ray and I/O are a fixed cost per trial, benchmarks a fixed number of tokens per item, and
the ETA printed after each stage scales what is left by how the finished stages compared with their
estimates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from minitron.budget import format_count
from minitron.distill.step import Head
from minitron.eval.samples import MAX_NEW_TOKENS, PROMPTS
from minitron.runtime import precision, synchronize
from search.plan.settings import SearchSettings, TeacherMode
from search.plan.spec import RunSpec
from search.run.latency import ROUNDS
from search.run.stages import Stage, duration

TRAIN_EFFICIENCY = {False: 0.85, True: 0.45}
"""A training step's FLOP/s as a share of the calibration's (a teacher forward pass), in fp32 and
under bf16 autocast (the default search's stages against its estimates, `bench/search_time.py`,
2-core AMD EPYC: bf16 speeds the teacher's forward up more than a small student's training step)."""
EVAL_SLOWDOWN = {False: 1.0, True: 2.5}
"""Validation and test losses are computed in fp32 even in a bf16 run (they are reported numbers):
their tokens cost this much more than the calibrated rate says."""
TRIAL_SECONDS = 8.0
"""Fixed cost per trial beyond its FLOPs: a worker process, the cut from the teacher, its speed."""
LATENCY_SECONDS = (10.0, 1.0)
"""The latency stage's fixed costs: a worker that loads the teacher, and the cut of each candidate."""
CANDIDATE_HEAD_TIME = 0.72
"""A probe step with the candidate head (`Head.CANDIDATES`) takes this share of the time of a step
over the whole vocabulary (`bench/distill_throughput.py` on the 2-core CPU: 0.74 in fp32, 0.71 in
bf16)."""
BATCH_ONE_SLOWDOWN = 2.0
"""One sequence at a time runs the matmuls at about half the batched rate."""
GGUF_SECONDS_PER_PARAM = 3e-8
"""Writing one GGUF file per parameter: numpy quantization and the write (the 135M teacher took
9 s for f16, q8_0 and q4_0 on a 2-core Xeon; export does not use the matmul rate)."""
GENERATE_TOKEN_SECONDS = 0.03
"""Fixed cost of one generated token beyond its FLOPs (`generate`'s per-step work, one sequence)."""
BENCHMARK_TOKENS = 150
"""Forward tokens per benchmark item and model, lm-eval's own work included (the default search:
54 s for 2 models x 6 tasks x 100 items in bf16, 243 s for 3 in fp32, on the 2-core CPU)."""


@dataclass(frozen=True)
class Rate:
    """What the calibration measured."""

    flops: float
    """Forward FLOP/s of a model the teacher's size, on the stage device in the run's precision."""
    how: str
    """What was timed, for the printed budget."""
    bf16: bool = False
    """Whether it was timed under bf16 autocast (the run's precision)."""


@torch.no_grad()
def calibrate(teacher: Any | None, batch: torch.Tensor | None, bf16: bool) -> Rate:
    """Time one forward pass of `teacher` on `batch` (after one untimed pass), under bf16 autocast
    when `bf16`; without a teacher (a resumed run whose teacher work is on disk), a 1024² matmul in
    the run's precision, at the fp32 ratio of a teacher's forward to it (0.85)."""
    if teacher is not None and batch is not None:
        device = next(teacher.parameters()).device
        ids = batch.to(device)
        with precision(device, bf16):
            teacher(input_ids=ids, use_cache=False)
            synchronize(device)
            start = time.perf_counter()
            teacher(input_ids=ids, use_cache=False)
            synchronize(device)
        seconds = time.perf_counter() - start
        params = sum(p.numel() for p in teacher.parameters())
        return Rate(
            2 * params * ids.numel() / seconds, f"the teacher's forward on {ids.numel():,} tokens", bf16
        )
    a = torch.randn(1024, 1024, dtype=torch.bfloat16 if bf16 else torch.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    seconds = (time.perf_counter() - start) / 3
    return Rate(0.85 * 2 * 1024**3 / seconds, "a 1024² matmul", bf16)


def estimate(
    settings: SearchSettings,
    teacher_params: int,
    student_params: int,
    importance: tuple[bool, int],
    rate: Rate,
    todo: set[str],
    lockstep: bool = False,
) -> dict[str, float]:
    """Estimated seconds of each stage in `todo` (stage names of `search.run.pipeline.STAGES`, less the
    teacher's, which is over when this is known), for candidates of about `student_params`;
    `importance`: whether the width scores are to compute, and for how many block sizes depth losses;
    `lockstep`: the winners are expected to share one online teacher pass (`search.run.winners.lockstep`)."""
    width, depth_sizes = importance
    plan, cfg = settings.plan, settings.importance
    seq = settings.seq_len
    forward = 2 * teacher_params / rate.flops  # seconds per teacher token, forward
    student_forward = 2 * student_params / rate.flops
    student_train = 3 * student_forward / TRAIN_EFFICIENCY[rate.bf16]
    student_eval = student_forward * EVAL_SLOWDOWN[rate.bf16]
    probe_train = student_train * (
        CANDIDATE_HEAD_TIME if settings.probe.weights.head is Head.CANDIDATES else 1.0
    )
    validation = plan.validation_sequences * seq
    test = settings.retrain.test_sequences * seq
    teacher_online = forward if plan.retrain_teacher is TeacherMode.ONLINE else 0.0
    # a winner validates at each of its schedule's points (step 0 and the end included)
    retrain_validations = len(settings.retrain.schedule().validate_at) * settings.retrain.eval_sequences * seq
    # depth: one pass, then about the shortlist and two neighbours per block size, each evaluation
    # running half the layers on average (every start: about half the layers count of them)
    per_size = cfg.depth_shortlist + 2 if cfg.depth_shortlist else 15
    depth = cfg.depth_samples * seq * (1 + 0.5 * per_size * depth_sizes) if depth_sizes else 0
    seconds = {
        "importance": (cfg.num_samples * seq * width + depth) * forward,
        "teacher targets": settings.tokens.target_sequences * seq * forward,
        "search": (
            settings.tokens.probe_budget * probe_train
            + plan.trials * ((plan.rungs + 1) * validation * student_eval + TRIAL_SECONDS)
        )
        / max(settings.resources.concurrency, 1),
        "latency": LATENCY_SECONDS[0]
        + plan.trials
        * (LATENCY_SECONDS[1] + (ROUNDS + 1) * seq * (forward + student_forward) * BATCH_ONE_SLOWDOWN),
        "retrain winners": (
            plan.top_k
            * (settings.retrain.tokens * student_train + (retrain_validations + test) * student_eval)
            + (1 if lockstep else plan.top_k) * settings.retrain.tokens * teacher_online
        )
        / max(settings.resources.retrain_workers, 1),
        "benchmarks": (1 + plan.top_k)
        * len(settings.eval.tasks)
        * (settings.eval.limit or 1000)
        * BENCHMARK_TOKENS
        * student_forward,
        "gguf": plan.top_k * len(settings.gguf) * student_params * GGUF_SECONDS_PER_PARAM,
        # greedy continuations, one token at a time: the teacher's and each winner's
        "samples": len(PROMPTS)
        * MAX_NEW_TOKENS
        * (
            (1 + plan.top_k) * GENERATE_TOKEN_SECONDS
            + (forward + plan.top_k * student_forward) * BATCH_ONE_SLOWDOWN
        ),
    }
    return {name: value for name, value in seconds.items() if name in todo}


def time_budget(spec: RunSpec, inputs: Any, teacher_params: int, todo: set[str]) -> dict[str, float]:
    """Estimate the stages in `todo` (by name) from a short calibration on this machine, print them,
    and return the estimates (`inputs`: the preflight's, `search.run.preflight.Inputs`)."""
    from minitron.importance.cache import importance_missing
    from search.run.teacher_work import block_sizes
    from search.run.winners import lockstep_expected

    settings = spec.settings
    todo = todo - {Stage.TEACHER.value}
    teacher = inputs.teacher.model if inputs.teacher is not None else None
    width, sizes = False, list[int]()
    if teacher is not None and Stage.IMPORTANCE.value in todo:
        wanted = block_sizes(spec, inputs.teacher)
        width, sizes = importance_missing(teacher, inputs.tokens, settings.importance, wanted)
    bf16 = settings.probe.placement.bf16_on()
    rate = calibrate(teacher, inputs.validation[: settings.probe.batch_size], bf16)
    student = round(sum(c.params for c in spec.candidates) / max(len(spec.candidates), 1))
    together = lockstep_expected(spec)
    estimates = estimate(settings, teacher_params, student, (width, len(sizes)), rate, todo, together)
    print_budget(estimates, rate, student)
    return estimates


def print_budget(estimates: dict[str, float], rate: Rate, student_params: int) -> None:
    total = sum(estimates.values())
    stages = ", ".join(f"{name} {duration(seconds)}" for name, seconds in estimates.items())
    print(
        f"[time] estimated {duration(total)} ({stages}); from {rate.how} at {rate.flops / 1e9:.0f} GFLOP/s "
        f"({'bf16' if rate.bf16 else 'fp32'}), "
        f"candidates of ~{format_count(student_params)} parameters",
        flush=True,
    )

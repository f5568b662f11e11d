"""The training step's shape of a run (`Geometry`): sequence length, global batch and micro-batch.

On the CPU the defaults stay the laptop's, 4 sequences of 256 tokens per step in one pass, so a
run there computes what it always did. On GPUs a step of 4 x 256 tokens leaves the device mostly
idle (13.6 % bf16 MFU on an H200, against 45.9 % at 16 x 1024: docs/gpu.md), so the defaults
there are long sequences (`GPU_SEQ_LEN`, or the teacher's context if shorter), steps of
`GPU_STEP_TOKENS` tokens, and the largest micro-batch whose probe and retraining both fit the
trial's memory for the largest candidate by the memory plan (`search.plan.memory_plan`); the
gradients of a step's micro-batches are accumulated (`minitron.distill.loop`).

Every value the user gives wins over a default and is checked here, before anything is written.
"""

from __future__ import annotations

from minitron.commands.common import check_positive_counts
from minitron.errors import MinitronError
from search.plan.candidates import feasible
from search.plan.memory_plan import Capacity, PlanSettings, fits, plan
from search.plan.request import SearchRequest
from search.plan.resources import Resources
from search.plan.settings import Geometry, TeacherMode
from search.plan.space import SearchSpace

#: The default sequence length on GPUs (capped by the teacher's context when the space states it).
GPU_SEQ_LEN = 4096
#: Tokens per optimizer step on GPUs by default: 64 sequences of 4096. Minitron distilled with
#: steps of 1152 x 8192 tokens over 94B tokens; a search's probes are far shorter, and at this
#: size a probe of 50M tokens still takes about 190 optimizer steps.
GPU_STEP_TOKENS = 262_144
#: The shortest sequence a run trains on (a position needs some context to predict from).
MIN_SEQ_LEN = 16


def geometry_for(
    request: SearchRequest,
    space: SearchSpace,
    bounds: tuple[int, int],
    resources: Resources,
    capacity: Capacity | None,
) -> Geometry:
    """The run's step shape: what the request gives, the rest by device (see the module)."""
    check_positive_counts(
        {
            "--seq-len": request.seq_len,
            "--global-batch": request.global_batch,
            "--micro-batch": request.micro_batch,
        }
    )
    gpu = resources.gpus_per_trial > 0
    seq_len = request.seq_len or (min(GPU_SEQ_LEN, space.context or GPU_SEQ_LEN) if gpu else Geometry.seq_len)
    if seq_len < MIN_SEQ_LEN:
        raise MinitronError(f"--seq-len {seq_len} is too short; give at least {MIN_SEQ_LEN} tokens")
    if space.context is not None and seq_len > space.context:
        raise MinitronError(
            f"--seq-len {seq_len} is longer than the teacher's context of {space.context:,} tokens "
            f"(max_position_embeddings in {space.path.name}); give at most {space.context}"
        )
    default_batch = max(GPU_STEP_TOKENS // seq_len, 1) if gpu else Geometry.global_batch
    global_batch = request.global_batch or default_batch
    workers = resources.retrain_workers
    if global_batch % workers:
        raise MinitronError(
            f"--retrain-workers {workers} cannot split the retraining batch of {global_batch} sequences "
            f"evenly; use a worker count that divides {global_batch} (or another --global-batch)"
        )
    share = global_batch // workers
    micro = request.micro_batch
    if micro is not None and share % micro:
        per = f" per worker of {workers}" if workers > 1 else ""
        raise MinitronError(
            f"--micro-batch {micro} does not divide the {share} sequences of a step{per} "
            f"(--global-batch {global_batch}); a step accumulates whole micro-batches"
        )
    if micro is None and gpu:
        micro = _largest_fitting(request, space, bounds, resources, capacity, seq_len, global_batch, share)
    if micro == share and workers == 1:
        micro = None  # one pass per step: the same as no micro-batch
    return Geometry(seq_len, global_batch, micro)


def _largest_fitting(
    request: SearchRequest,
    space: SearchSpace,
    bounds: tuple[int, int],
    resources: Resources,
    capacity: Capacity | None,
    seq_len: int,
    global_batch: int,
    share: int,
) -> int:
    """The largest micro-batch dividing `share` with which the largest candidate's probe and
    retraining fit a trial; when its retraining fits at none, the largest its probe fits at (the
    winners' own plan then says which retrainings fit); 1 when not even a probe fits (the plan's
    check then says what is missing); 8 or less when the trial's memory is not known before a
    cluster is attached."""
    divisors = [m for m in range(share, 0, -1) if share % m == 0]
    if capacity is None:
        return next(m for m in divisors if m <= 8)
    low, high = bounds
    candidates = feasible(space, high, low if low != high else None)
    if not candidates:
        return 1
    largest = candidates[0]  # largest first
    fitting: list[tuple[bool, bool]] = []
    online = request.retrain_teacher == TeacherMode.ONLINE.value
    for micro in divisors:
        shape = Geometry(seq_len, global_batch, micro)
        settings = PlanSettings.on(
            shape, gpu=True, online_teacher=online, retrain_workers=resources.retrain_workers
        )
        probe, retraining = plan(space, largest, settings)
        fitting.append((bool(fits(probe, capacity)), bool(fits(retraining, capacity))))
    both = [m for m, (p, r) in zip(divisors, fitting, strict=True) if p and r]
    probes = [m for m, (p, _) in zip(divisors, fitting, strict=True) if p]
    return (both or probes or [1])[0]

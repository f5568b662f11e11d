"""The memory plan of a search: what each candidate's probe and retraining need, what a trial has.

The dry run prints it per candidate; a search in which no candidate's probe fits a trial is refused
before anything is written (`check_some_fit`). Estimates come from `minitron.model.memory`.
"""

from __future__ import annotations

from dataclasses import dataclass

from minitron.errors import MinitronError
from minitron.model.architecture import Architecture
from minitron.model.memory import GIB, Memory, training_memory
from search.plan.candidates import Candidate
from search.plan.settings import Geometry, Resources, SearchSettings
from search.plan.space import SearchSpace

#: The share of a trial's memory a plan may fill: the rest is for what the estimate leaves out
#: (the framework, CUDA's context, allocator slack; measured peaks ran 0-13 % above the estimate).
USABLE = 0.85


@dataclass(frozen=True)
class Capacity:
    """Memory one trial gets, and where the figure comes from."""

    bytes: int
    source: str


@dataclass(frozen=True)
class PlanSettings:
    """What the estimate depends on besides the architecture."""

    probe_batch: int
    retrain_batch: int
    seq_len: int
    bf16: bool
    online_teacher: bool
    """Retraining runs the teacher beside the student."""
    teacher_bytes: int = 4
    """Bytes per teacher parameter as it is loaded there: 2 on a GPU (bf16), 4 on the CPU."""
    retrain_workers: int = 1
    """FSDP2 workers per retraining (`--retrain-workers`): the retraining figure is one worker's."""
    micro_batch: int | None = None
    """Sequences per forward pass (per worker) of probes and retraining; None: the whole batch."""

    @classmethod
    def of(cls, settings: SearchSettings) -> PlanSettings:
        """The plan of a run's probes and retraining, on the kind of device its trials get (a GPU
        when `--gpus-per-trial` asks for one, whether or not this machine has one: a dry run plans
        for any machine). The one place the dry run, the check before a run and the winners'
        lock-step decision take it from."""
        geometry = Geometry(settings.seq_len, settings.retrain.batch_size, settings.retrain.micro_batch)
        return cls.on(
            geometry,
            gpu=settings.resources.gpus_per_trial > 0,
            online_teacher=settings.plan.retrain_teacher == "online",
            retrain_workers=settings.resources.retrain_workers,
            requested_bf16=settings.retrain.placement.bf16,
        )

    @classmethod
    def on(
        cls,
        geometry: Geometry,
        gpu: bool,
        online_teacher: bool,
        retrain_workers: int,
        requested_bf16: bool | None = None,
    ) -> PlanSettings:
        """The plan of probes and retraining in steps of `geometry` on a GPU or the CPU (the
        precision and the teacher's dtype there follow from the device, as its trials choose them)."""
        import torch

        from minitron.runtime import teacher_dtype, use_bf16

        device = torch.device("cuda" if gpu else "cpu")
        return cls(
            probe_batch=geometry.global_batch,
            retrain_batch=geometry.global_batch,
            seq_len=geometry.seq_len,
            micro_batch=geometry.micro_batch,
            bf16=use_bf16(device, requested_bf16),
            online_teacher=online_teacher,
            teacher_bytes=teacher_dtype(device, requested_bf16).itemsize,
            retrain_workers=retrain_workers,
        )

    def describe(self) -> str:
        teacher = "the teacher online" if self.online_teacher else "cached teacher targets"
        precision = "bf16 autocast" if self.bf16 else "fp32"
        workers = f", per worker of {self.retrain_workers}" if self.retrain_workers > 1 else ""
        micro = f" in micro-batches of {self.micro_batch}" if self.micro_batch else ""
        return (
            f"AdamW, {precision}, probes batch {self.probe_batch} x {self.seq_len}, retraining batch "
            f"{self.retrain_batch} x {self.seq_len}{micro} on {teacher}{workers}"
        )


def plan(space: SearchSpace, candidate: Candidate, settings: PlanSettings) -> tuple[Memory, Memory]:
    """(probe, retraining) memory of one candidate."""
    probe = training_memory(
        space.family,
        candidate.arch,
        settings.probe_batch,
        settings.seq_len,
        settings.bf16,
        micro_batch=settings.micro_batch,
    )
    return probe, retraining_memory(space, candidate.arch, settings)


def retraining_memory(space: SearchSpace, arch: Architecture, settings: PlanSettings) -> Memory:
    """What retraining `arch` needs (per worker), with the teacher beside it when it runs online."""
    teacher = space.teacher_params if settings.online_teacher else 0
    return training_memory(
        space.family,
        arch,
        settings.retrain_batch,
        settings.seq_len,
        settings.bf16,
        teacher_params=teacher,
        teacher_bytes_per_param=settings.teacher_bytes,
        workers=settings.retrain_workers,
        micro_batch=settings.micro_batch,
        teacher_hidden_size=space.teacher.hidden_size,
    )


def trial_capacity(resources: Resources) -> Capacity | None:
    """Memory a trial gets on this machine: its share of a GPU, or of the RAM when trials run on the
    CPU. None on a cluster (`--address`), whose nodes are not known before attaching."""
    import torch

    if resources.address:
        return None
    if resources.gpus_per_trial > 0 and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        share = min(resources.gpus_per_trial, 1.0)
        return Capacity(int(total * share), f"{share:g} of a {total / GIB:.0f} GiB GPU")
    total = _ram_bytes()
    return Capacity(
        total // resources.concurrency,
        f"this machine's {total / GIB:.0f} GiB RAM / {resources.concurrency} concurrent trial(s)",
    )


def _ram_bytes() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def fits(memory: Memory, capacity: Capacity | None) -> bool | None:
    return None if capacity is None else memory.total <= USABLE * capacity.bytes


def summary_line(
    probes: list[tuple[Memory, Memory]], settings: PlanSettings, capacity: Capacity | None
) -> str:
    """One line over every candidate's (probe, retraining) plan: the range and how many fit."""
    low, high = min(p.total for p, _ in probes), max(p.total for p, _ in probes)
    retrain_high = max(r.total for _, r in probes)
    line = (
        f"memory: probes need {low / GIB:.1f}-{high / GIB:.1f} GiB, retraining up to "
        f"{retrain_high / GIB:.1f} GiB ({settings.describe()})"
    )
    if capacity is None:
        return line + "; a trial's memory is known once the cluster is attached"
    fitting = sum(1 for p, _ in probes if fits(p, capacity))
    return (
        f"{line}; a trial has {capacity.bytes / GIB:.1f} GiB ({capacity.source}), {USABLE:.0%} of it "
        f"planned: {fitting} of {len(probes)} candidates fit"
    )


def check_some_fit(
    space: SearchSpace, candidates: list[Candidate], settings: PlanSettings, capacity: Capacity | None
) -> None:
    """Refuse a search in which no candidate's probe fits a trial (it could only fail, trial by trial)."""
    probes = [plan(space, c, settings)[0] for c in candidates]
    if capacity is None or not probes or any(fits(p, capacity) for p in probes):
        return
    smallest = min(p.total for p in probes)
    raise MinitronError(
        f"no candidate fits a trial's memory: the smallest probe needs {smallest / GIB:.1f} GiB "
        f"({settings.describe()}), a trial has {capacity.bytes / GIB:.1f} GiB ({capacity.source}), "
        f"{USABLE:.0%} of it usable; give trials more (--gpus-per-trial, fewer --concurrency) or "
        "choose a smaller --budget"
    )

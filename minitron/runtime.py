"""Where and how computations run: device, precision, threads, progress bars.

Every stage (importance, depth losses, probes, retraining, benchmarks) asks this module, so that a
run makes one choice per process and records it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX-512 BF16 or AMX); else bf16 is emulated.

    Also False when PyTorch's kernels are held below AVX-512 (`ATEN_CPU_CAPABILITY=avx2`, with
    `ONEDNN_MAX_CPU_ISA=AVX2` for oneDNN): that is how an AVX-512 machine measures the AVX2 path.
    """
    if not torch.backends.cpu.get_cpu_capability().upper().startswith("AVX512"):
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def cpu_description() -> str:
    """The CPU's model name, PyTorch's kernel level and whether bf16 is native, for timing records."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    bf16 = "bf16 native" if cpu_has_native_bf16() else "no native bf16"
    return f"{name}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, {bf16}"


#: bf16 autocast by default on CPUs with native bf16. Measured with `bench/distill_throughput.py` on
#: the 2-core AVX-512-BF16 development machine (69M student, same seed and batches): probes 1.76x and
#: online retraining 1.59x faster than fp32, for +0.004 nats of probe validation loss.
DEFAULT_CPU_BF16 = cpu_has_native_bf16()


def machine_description() -> str:
    """What this process computes on: the GPU when there is one, with the CPU beside it."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, driver process with {cpu_description()}"
    return cpu_description()


def release_accelerator_memory() -> None:
    """Hand freed GPU memory back: on a one-GPU machine other processes share the GPU, and
    PyTorch's caching allocator would otherwise keep the freed blocks for this process."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_device(device: str | None = None) -> torch.device:
    """`cuda` when a GPU is present, else the CPU, unless a device is named."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_bf16(device: torch.device, requested: bool | None) -> bool:
    """The precision actually used: `requested`, or by default bf16 on a GPU or a native-bf16 CPU."""
    if requested is not None:
        return requested
    return device.type == "cuda" or (device.type == "cpu" and DEFAULT_CPU_BF16)


def teacher_dtype(device: torch.device, bf16: bool | None) -> torch.dtype:
    """The dtype a teacher's weights are loaded in for its stages (importance, depth losses, targets,
    its losses, speed) on `device`.

    On an accelerator: bf16, the storage dtype of the Llama-3.1 and Mistral-NeMo checkpoints, so an
    8B teacher takes 16 GB of GPU memory instead of 32 and its matmuls take the fast path; fp32 only
    when bf16 is switched off. On the CPU: fp32, because AVX2 CPUs have no bf16 matmuls at all and
    native-bf16 CPUs already get them through autocast, while fp32 weights keep CPU results equal to
    earlier runs'. Numerics that need fp32 (importance sums, logits for losses and targets) are cast
    up where they are computed, whatever the weights' dtype.
    """
    if device.type != "cpu" and use_bf16(device, bf16):
        return torch.bfloat16
    return torch.float32


@contextlib.contextmanager
def precision(device: torch.device, bf16: bool) -> Iterator[None]:
    """bf16 autocast for matmuls when enabled; parameters and optimizer state stay fp32."""
    if bf16:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def set_threads(threads: int | None) -> None:
    """Respect the CPUs a trial was given (Ray sets none of torch's thread counts itself)."""
    if threads:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Placement:
    """Where and in what precision a job runs; it never changes what the job is (a run resumed on
    other hardware is the same run)."""

    device: str | None = None
    """cpu, cuda, cuda:1, ...; None: cuda when present, else the CPU."""
    bf16: bool | None = None
    """bf16 autocast; None: on for GPUs and for CPUs with native bf16."""
    threads: int | None = None
    """CPU threads (a trial's share); None leaves torch's setting."""

    def apply(self) -> tuple[torch.device, bool]:
        """Set the threads; the device and whether bf16 autocast is on."""
        set_threads(self.threads)
        device = resolve_device(self.device)
        return device, use_bf16(device, self.bf16)

    def bf16_on(self) -> bool:
        """Whether bf16 autocast is on where this placement runs (sets nothing, unlike `apply`)."""
        return use_bf16(resolve_device(self.device), self.bf16)

    def teacher(self) -> dict[str, Any]:
        """`load_teacher`'s `device` and `dtype` for a teacher working beside this placement."""
        device = resolve_device(self.device)
        return {"device": device, "dtype": teacher_dtype(device, self.bf16)}


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU's kernels run asynchronously), so timings are true."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def show_progress(wanted: bool = True) -> bool:
    """Whether to draw progress bars: only when asked and stderr is a terminal.

    Why: in a log file or a CI console every redraw of a bar becomes another line (or a long run of
    carriage returns); stage lines, per-trial progress and plain progress lines at an interval
    (`minitron.progress`) say what matters there.
    """
    return wanted and sys.stderr.isatty()


def quiet_progress_bars_when_logged() -> None:
    """Switch off every library's progress bars (tqdm, transformers, datasets, lm-eval) when stderr
    is not a terminal. Best called before those libraries are imported (tqdm reads `TQDM_DISABLE`
    when it is first imported); those already imported are switched off directly. Ray workers
    inherit the setting (see `search.run.ray_runtime`)."""
    if sys.stderr.isatty():
        return
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' and the hub's bars
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.utils

        huggingface_hub.utils.disable_progress_bars()
    if "transformers" in sys.modules:
        import transformers.utils.logging

        transformers.utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()

"""llama.cpp as a runtime, through llama-cpp-python: load a GGUF file, time a forward pass, score
token windows, generate greedily.

llama-cpp-python is an optional extra (`pip install "minitron-search[llamacpp]"`): PyPI ships it
only as source, and installing it compiles llama.cpp (`docs/lab/measured-llamacpp.md` says how long).
Everything here asks for it through `require`, which turns its absence into one line.

Why a runtime of its own: a small model is deployed as a (usually quantized) GGUF file in
llama.cpp, Ollama or LM Studio, whose kernels and threading differ from PyTorch's; a latency or a
speed-up measured in PyTorch need not hold there.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from minitron.errors import MinitronError
from minitron.export import gguf_tokenizer
from minitron.model.speed import LatencyComparison, Speed, Timing, compare_in_turn

PACKAGE = "llama-cpp-python==0.3.36"
"""The version the bench and the tests were run with."""
INSTALL = f'pip install "{PACKAGE}" (it compiles llama.cpp: about 5 minutes on 2 CPU cores)'
NO_AMX = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"'
)
"""Build flags for a CPU with AMX: llama.cpp's native build there uses its AMX kernels, which
crashed (segmentation fault in `ggml_backend_amx_mul_mat`, llama.cpp issue 20824) on every
quantized file on our Xeon, the teacher's own Q4_1 included."""


def available() -> bool:
    """Whether llama-cpp-python can be imported here."""
    try:
        require()
    except MinitronError:
        return False
    return True


def require() -> ModuleType:
    """The `llama_cpp` module, or one line that says how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise MinitronError(f"llama.cpp is not installed here: {INSTALL}") from None
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    if "AMX_INT8 = 1" in info and not os.environ.get("MINITRON_LLAMA_CPP_AMX"):
        raise MinitronError(
            "this llama.cpp build uses its AMX kernels, which crash on quantized models (llama.cpp issue "
            f"20824); rebuild it without them: {NO_AMX} pip install --force-reinstall --no-deps "
            f'"{PACKAGE}" (or set MINITRON_LLAMA_CPP_AMX=1 to try them)'
        )
    return llama_cpp


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp's C code writes its load log to file descriptor 2 even when asked not to."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LlamaCpp:
    """One GGUF file loaded in llama.cpp for sequences of up to `n_ctx` tokens.

    `logits`: keep the logits of every position (for `loss`); without them a forward pass is what
    a deployed model does to a prompt, and `forward_seconds` times exactly that."""

    def __init__(self, path: Path, n_ctx: int, threads: int | None = None, logits: bool = False) -> None:
        llama_cpp = require()
        self.path = Path(path)
        try:
            with _quiet_stderr():
                self.llm: Any = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_batch=n_ctx,
                    n_ubatch=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=-1,  # all layers on the GPU of a GPU build; ignored by a CPU build
                    logits_all=logits,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as err:
            raise MinitronError(f"llama.cpp cannot load {self.path.name}: {err}") from None
        self.n_ctx = n_ctx
        self.n_vocab = int(self.llm.n_vocab())

    def close(self) -> None:
        self.llm.close()

    def __enter__(self) -> LlamaCpp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forward_seconds(self, tokens: Sequence[int]) -> float:
        """Seconds to process `tokens` as one prompt from an empty cache."""
        self.llm.reset()
        start = time.perf_counter()
        self.llm.eval(list(tokens))
        return time.perf_counter() - start

    def loss(self, windows: np.ndarray) -> float:
        """Mean next-token loss (nats) over token windows (sequences × length), each from an empty
        cache: what `minitron.eval.loss` computes in PyTorch for the same windows."""
        if not self.llm._logits_all:
            raise MinitronError("LlamaCpp.loss needs a model loaded with logits=True")
        total, count = 0.0, 0
        for window in np.asarray(windows):
            self.llm.reset()
            self.llm.eval([int(t) for t in window])
            logits = np.asarray(self.llm.scores[: len(window) - 1], dtype=np.float64)
            top = logits.max(axis=1, keepdims=True)
            log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            picked = logits[np.arange(len(window) - 1), window[1:]]
            total += float((log_z - picked).sum())
            count += len(window) - 1
        return total / max(count, 1)

    def greedy(self, tokens: Sequence[int], new_tokens: int) -> Generation:
        """Greedy continuation of a prompt, with the prompt's and the generation's time apart."""
        start = time.perf_counter()
        out: list[int] = []
        first = math.nan
        for token in self.llm.generate(list(tokens), temp=0.0, top_k=1, reset=True):
            if not out:
                first = time.perf_counter()
            out.append(int(token))
            if len(out) >= new_tokens or token == self.llm.token_eos():
                break
        end = time.perf_counter()
        return Generation(out, first - start, end - first)


@dataclass(frozen=True)
class Generation:
    """Tokens generated after a prompt."""

    tokens: list[int]
    prompt_seconds: float
    """The prompt's pass, which yields the first token."""
    generate_seconds: float
    """Every token after the first."""

    @property
    def tokens_per_s(self) -> float:
        """Generation speed: tokens after the first ÷ their seconds."""
        return (len(self.tokens) - 1) / self.generate_seconds if self.generate_seconds > 0 else math.nan


@dataclass(frozen=True)
class LatencyRuntime:
    """Where latencies are measured: PyTorch (`quant` None), or llama.cpp with each model written as a
    GGUF file in `quant`. Written as `pytorch` or `llama.cpp:<quant>` wherever it is saved."""

    quant: str | None = None

    @property
    def is_llama_cpp(self) -> bool:
        return self.quant is not None

    @classmethod
    def parse(cls, spec: str) -> LatencyRuntime:
        """`pytorch`; `llama.cpp` (q8_0, the default); `llama.cpp:q4_0`; anything else is one line."""
        from minitron.export.gguf_file import parse_quants

        head, _, quant = spec.strip().lower().partition(":")
        if head == "pytorch" and not quant:
            return cls(None)
        if head != "llama.cpp":
            raise MinitronError(
                f"unknown latency runtime {spec!r}; choose pytorch or llama.cpp[:QUANT] (e.g. llama.cpp:q4_0)"
            )
        return cls(parse_quants(quant or DEFAULT_QUANT)[0])

    def __str__(self) -> str:
        return "pytorch" if self.quant is None else f"llama.cpp:{self.quant}"

    def to_json(self) -> str:
        return str(self)

    @classmethod
    def from_json(cls, data: str) -> LatencyRuntime:
        return cls.parse(data)


DEFAULT_QUANT = "q8_0"


def device_name() -> str:
    """Where llama.cpp runs here: its build's GPU offload, or this CPU."""
    from minitron.runtime import cpu_description

    llama_cpp = require()
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    return f"llama.cpp ({'GPU build' if gpu else 'CPU'}) on {cpu_description()}"


def random_tokens(n_vocab: int, length: int, seed: int = 0) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(0, n_vocab, length)]


@contextlib.contextmanager
def loaded(
    model: Any, quant: str, keys: gguf_tokenizer.TokenizerKeys, n_ctx: int, threads: int | None
) -> Iterator[LlamaCpp]:
    """An in-memory Llama model written as a temporary GGUF file and loaded in llama.cpp."""
    from minitron.export.gguf_file import export_model

    with tempfile.TemporaryDirectory(prefix="minitron-llamacpp-") as tmp:
        path = Path(tmp) / f"model.{quant.upper()}.gguf"
        export_model(model, path, quant, keys, {})
        with LlamaCpp(path, n_ctx, threads) as runner:
            yield runner


def measure_speed(runner: LlamaCpp, seq_len: int, repeats: int = 5) -> Speed:
    """As `minitron.model.speed.measure_speed`, in llama.cpp: the latency of one `seq_len`-token
    prompt (median of `repeats` after a warm-up); tokens/s is the prompt's tokens ÷ that median."""
    tokens = random_tokens(runner.n_vocab, seq_len)
    runner.forward_seconds(tokens)
    latency = Timing.of([runner.forward_seconds(tokens) for _ in range(repeats)])
    return Speed(
        latency_ms=latency.median_ms,
        tokens_per_s=1000 * seq_len / latency.median_ms,
        seq_len=seq_len,
        batch_size=1,
        device=device_name(),
        latency=latency,
    )


def compare_latency(
    reference: LlamaCpp, runner: LlamaCpp, seq_len: int, rounds: int = 5, warm: bool = False
) -> LatencyComparison:
    """As `minitron.model.speed.compare_latency`, in llama.cpp: both prompts timed in turn."""
    ids_ref, ids = random_tokens(reference.n_vocab, seq_len), random_tokens(runner.n_vocab, seq_len)
    return compare_in_turn(
        lambda: reference.forward_seconds(ids_ref), lambda: runner.forward_seconds(ids), rounds, warm
    )

"""The prepared GPU check: the search end to end on one GPU, probe speed and MFU, memory against the plan.

    python bench/gpu_check.py [--out results/bench/gpu_check]   # one H100/H200, no network, < 8 min
    python bench/gpu_check.py --tiny                             # the same steps, tiny shapes, on CPUs

No network: the teachers are randomly initialised in published shapes (Llama-3.2-1B and -3B; with
the embedded SmolLM2 tokenizer's 49,152-entry vocabulary instead of Llama-3's 128,256, so that the
embedded corpus feeds them), saved as bf16 safetensors checkpoints. Three parts:
  search      `search.py` on the 3B-shaped teacher at half its size: teacher stages on the GPU,
              4 trials (two at a time, half a GPU each; overhead 0.5 of 64k retraining tokens, 2
              rungs), one winner retrained in one process on the GPU, as a one-GPU user does
              (`--retrain-workers 2` shards it over 2 Ray Train workers sharing the GPU, FSDP2
              over gloo since NCCL takes one rank per GPU: on 2026-12-04 on an H200 that did not
              finish 64k tokens in 207 s, so it is no longer the default there; `--tiny` keeps
              2 workers on the CPU); wall time, stage times, where the teacher's stages ran, the
              winner's test loss;
  probe       a probe of a student in the 1B shape on random top-64 targets, at the tool's batch
              (4 x 256) and at 16 x 1024: tokens/s, and MFU = 6 x params x tokens/s over the bf16
              matmul peak measured in the same run;
  memory      the probe's peak CUDA memory against the memory plan's estimate.
Prints one table and writes `gpu_check.json`. Random teachers make the losses meaningless: the check
is that everything runs where it should, how fast, and in how much memory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import yaml

from minitron.distill.provenance import Provenance
from minitron.model.architecture import Architecture, Family, count_params
from search.outputs.rundir import RunDir
from search.outputs.summary import Summary

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "llama-3.2-1b": Architecture(16, 2048, 8192, 32, 8, 64),
    "llama-3.2-3b": Architecture(28, 3072, 8192, 24, 8, 128),
}
TINY = {
    "llama-3.2-1b": Architecture(4, 128, 256, 4, 2, 32),
    "llama-3.2-3b": Architecture(6, 192, 384, 6, 2, 32),
}
VOCAB = 49152


def make_teacher(arch: Architecture, folder: Path, device: torch.device) -> None:
    """A randomly initialised, tied-embedding Llama of `arch`, saved in bf16 with the embedded tokenizer."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from minitron.model.teacher import load_tokenizer

    if (folder / "config.json").exists():
        return
    config = LlamaConfig(
        vocab_size=VOCAB, tie_word_embeddings=True, max_position_embeddings=4096, **arch.as_dict()
    )
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    load_tokenizer("smollm2-135m")[0].save_pretrained(folder)


def write_space(arch: Architecture, path: Path) -> int:
    """A search space around half the teacher; returns the budget it is written for."""
    h, m, layers = arch.hidden_size, arch.intermediate_size, arch.num_hidden_layers
    kv = arch.num_key_value_heads
    space = {
        "name": "gpu-check",
        "teacher": {"name": str(path.parent / "teacher"), "model_type": "llama", "vocab_size": VOCAB,
                    "tie_word_embeddings": True, **arch.as_dict()},
        "choices": {
            "num_hidden_layers": sorted({layers // 2, 3 * layers // 4, layers}),
            "hidden_size": sorted({h // 2, 3 * h // 4, h}),
            "intermediate_size": sorted({m // 2, 3 * m // 4, m}),
            "num_attention_heads": list(range(kv, arch.num_attention_heads + 1, kv)),  # whole KV groups
            "num_key_value_heads": [kv],
        },
        "band": 0.15,
        "top_k": 1,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(space))
    return count_params(Family("llama", VOCAB, True), arch) // 2


def run_search(out: Path, arch: Architecture, tiny: bool, workers: int, timeout: float) -> dict[str, Any]:
    budget = write_space(arch, out / "space.yaml")
    cpus = os.cpu_count() or 2
    # two trials (or two retraining workers) share the GPU; on CPUs each takes one core
    share = (
        ["--cpus-per-trial", "1"]
        if tiny
        else ["--gpus-per-trial", "0.5", "--cpus-per-trial", str(max(cpus // 4, 1))]
    )
    command = [
        sys.executable, str(ROOT / "search.py"), "--budget", str(budget), "--space", str(out / "space.yaml"),
        "--teacher", str(out / "teacher"), "--trials", "4", "--top-k", "1", "--retrain-tokens", "64k",
        "--overhead", "0.5", "--rungs", "2", "--retrain-workers", str(workers),
        *(["--fresh-winners"] if workers > 1 else []),
        "--eval", "none", "--out", str(out), "--name", "search", "--overwrite",
        *share,
    ]  # fmt: skip
    start = time.perf_counter()
    log = out / "search.log"
    # its own process group, so that a deadline stops Ray's workers too (SIGTERM stops a run as
    # Ctrl-C does; whatever is left after 30 s is killed) and the GPU is not left half-occupied
    with log.open("w") as sink:
        child = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            returncode = None
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {"returncode": returncode, "seconds": round(seconds, 1), "budget": budget}
    summary_path = out / "search" / "summary.json"
    if returncode != 0 or not summary_path.exists():
        lines = [line for line in log.read_text().splitlines() if line.strip()] or ["no output"]
        row["error"] = lines[-1]
        if returncode is None:
            row["error"] = f"stopped at its {timeout:.0f} s deadline; last line: {lines[-1]}"
        row["stages"] = RunDir(out / "search").finished_stages()  # where a stopped search got to
        return row
    summary = Summary.load(summary_path)
    teacher = summary.teacher
    winner = summary.winners[0] if summary.winners else None
    folder = Path(winner.result.path) if winner is not None and winner.result.path else None
    finished = folder is not None and (folder / "provenance.json").exists()
    row.update(
        stages={k: round(v, 1) for k, v in summary.stages.items()},
        teacher_stages=f"{teacher.stage_device} {teacher.stage_dtype}",
        speed_device=teacher.device,
        trials=len(summary.candidates),
        winner=winner.architecture.short() if winner is not None else None,
        winner_test_loss=winner.result.test_loss if winner is not None else None,
        winner_workers=Provenance.load(folder).workers if folder is not None and finished else None,
    )
    return row


def peak_matmul(device: torch.device, n: int) -> float:
    """Best-of bf16 FLOP/s of an n x n x n matmul on `device`."""
    a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    best = float("inf")
    for _ in range(6):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def probe_speed(
    arch: Architecture, batch: int, seq_len: int, steps: int, device: torch.device
) -> dict[str, Any]:
    """A probe on random top-64 targets: tokens/s of its steps after a warm-up, peak memory, plan."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from minitron.distill.probe import ProbeConfig, probe
    from minitron.distill.targets import TeacherTargets
    from minitron.model.memory import training_memory
    from minitron.runtime import Placement

    family = Family("llama", VOCAB, True)
    config = LlamaConfig(
        vocab_size=VOCAB, tie_word_embeddings=True, max_position_embeddings=4096, **arch.as_dict()
    )
    student = AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(device)
    generator = torch.Generator().manual_seed(0)
    sequences = batch * (steps + 2)
    targets = TeacherTargets(
        input_ids=torch.randint(0, VOCAB, (sequences, seq_len), generator=generator),
        values=torch.randn(sequences, seq_len, 64, generator=generator),
        indices=torch.randint(0, VOCAB, (sequences, seq_len, 64), generator=generator).int(),
        meta={},
    )
    validation = targets.input_ids[:1].clone()
    placement = Placement(device=str(device))
    warm = ProbeConfig(tokens=2 * batch * seq_len, batch_size=batch, rungs=1, placement=placement)
    probe(student, targets, warm, validation, eval_batch_size=1)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    cfg = ProbeConfig(tokens=steps * batch * seq_len, batch_size=batch, rungs=1, placement=placement)
    result = probe(student, targets, cfg, validation, eval_batch_size=1)
    tokens_per_s = steps * batch * seq_len / result.train_seconds
    params = count_params(family, arch)
    plan = training_memory(family, arch, batch, seq_len, bf16=placement.apply()[1])
    row = {"params": params, "batch": f"{batch} x {seq_len}", "tokens_per_s": round(tokens_per_s),
           "plan_gib": round(plan.gib(), 2), "flops_per_s": 6 * params * tokens_per_s}  # fmt: skip
    if device.type == "cuda":
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="results/bench/gpu_check")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny shapes on the CPU: a smoke test of the script"
    )
    parser.add_argument(
        "--search-timeout", type=float, default=3600, help="stop the search part after this many seconds"
    )
    parser.add_argument(
        "--retrain-workers",
        type=int,
        help="workers retraining the winner (default: 1 on a GPU, 2 on CPUs)",
    )
    args = parser.parse_args()
    out = Path(args.out).resolve() / ("tiny" if args.tiny else "gpu")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    shapes = TINY if args.tiny else SHAPES
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    started = time.perf_counter()
    # the short parts first, so that their rows exist even when the search runs out of time
    peak = peak_matmul(device, 8192 if device.type == "cuda" else 1024)
    steps = 20 if device.type == "cuda" else 2
    probes = [probe_speed(shapes["llama-3.2-1b"], b, s, steps, device) for b, s in ((4, 256), (16, 1024))]
    for row in probes:
        row["mfu"] = round(row.pop("flops_per_s") / peak, 3)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    make_teacher(shapes["llama-3.2-3b"], out / "teacher", device)
    workers = args.retrain_workers or (2 if device.type == "cpu" else 1)
    search = run_search(out, shapes["llama-3.2-3b"], args.tiny, workers, args.search_timeout)
    seconds = round(time.perf_counter() - started, 1)
    record = {"device": name, "torch": torch.__version__, "bf16_matmul_tflops": round(peak / 1e12, 1),
              "search": search, "probes": probes, "seconds": seconds}  # fmt: skip
    (out / "gpu_check.json").write_text(json.dumps(record, indent=2))
    print(f"GPU check on {name} (torch {torch.__version__}), {record['seconds']:.0f} s in all")
    print("| part | result |\n|---|---|")
    if "error" in search:
        print(f"| search end to end | FAILED in {search['seconds']} s: {search['error']} |")
        print(f"| search stages reached | {search.get('stages') or 'none'} |")
    else:
        stages = ", ".join(f"{k} {v} s" for k, v in search["stages"].items())
        print(f"| search end to end (budget {search['budget']:,}) | {search['seconds']} s: {stages} |")
        print(
            f"| teacher stages / speed measured on | {search['teacher_stages']} / {search['speed_device']} |"
        )
        print(f"| trials; winner; its workers; test loss | {search['trials']}; {search['winner']}; "
              f"{search['winner_workers']}; {search['winner_test_loss']:.3f} |")  # fmt: skip
    print(f"| bf16 matmul peak (measured) | {peak / 1e12:.1f} TFLOP/s |")
    for row in probes:
        memory = (
            f"{row['peak_gib']} GiB peak vs {row['plan_gib']} GiB planned" if "peak_gib" in row else "n/a"
        )
        print(f"| probe {row['params'] / 1e9:.2f}B, batch {row['batch']} | {row['tokens_per_s']:,} tokens/s, "
              f"MFU {row['mfu']:.1%}, memory {memory} |")  # fmt: skip
    print(f"written to {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()

"""Distillation throughput against a plain KD loop: probes (cached teacher), retraining (teacher
online) and the teacher targets, in fp32 and, where the CPU has native bf16, bf16 autocast.

    python bench/distill_throughput.py [--probe-sequences 64] [--plain-steps 16] [--out FILE]

The reference is measured in the same run: the plain loop a user writes first (HF student and
teacher, the teacher run online, full-vocabulary KL, AdamW, fp32), on the same student and batches.

The student is a ~69M candidate pruned from SmolLM2-135M (L24-h432-m1024-q9kv3). Model FLOPs
utilization = (6 × student params + 2 × teacher params when the teacher runs online) × tokens/s ÷ the
peak matmul FLOP/s of this device in the same precision, measured in the same run; the targets'
share of that peak is 2 × teacher params × tokens/s ÷ peak. "probe/plain" compares training tokens/s
(the probe's validations left out, as the plain loop has none); "wall/plain" counts them in. The
probe is the search's: the student's softmax over the batch's candidate tokens (`Head.CANDIDATES`);
"vocab probe/plain" is the same probe over the student's whole vocabulary. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

from minitron.atomic import write_json
from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.distill.loop import train as train_loop
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.schedule import Schedule
from minitron.distill.sources import OnlineTeacher, training_windows
from minitron.distill.step import Head, LossWeights
from minitron.distill.targets import compute_targets
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.architecture import Architecture
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from minitron.runtime import DEFAULT_CPU_BF16, Placement, cpu_description

STUDENT = Architecture(24, 432, 1024, 9, 3, 64)


def peak_matmul(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Best-of FLOP/s of an n×n×n matmul in `dtype` on this CPU."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def plain_kd_loop(student, teacher, ids, steps: int, batch: int) -> float:
    """Seconds for `steps` steps of the plain loop a user writes first: Hugging Face student and
    teacher, the teacher run online, KL over the full vocabulary, AdamW, fp32, no autocast."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    student.train()
    start = time.perf_counter()
    for step in range(steps):
        x = ids[step * batch : (step + 1) * batch]
        with torch.no_grad():
            teacher_logits = teacher(input_ids=x).logits
        student_logits = student(input_ids=x).logits
        loss = (
            F.kl_div(
                F.log_softmax(student_logits, dim=-1),
                F.log_softmax(teacher_logits, dim=-1),
                log_target=True,
                reduction="none",
            )
            .sum(-1)
            .mean()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
    return time.perf_counter() - start


def online_steps(student, teacher, train, steps: int, batch: int, bf16: bool) -> float:
    """Seconds for `steps` retraining steps with the teacher's full distribution computed online
    (the training loop's online source; the one validation at the end is not counted)."""
    cfg = ProbeConfig(batch_size=batch, lr=1e-4, placement=Placement(bf16=bf16))
    schedule = Schedule(steps, 1e-4, 1e-4, 0, (steps,))
    source = OnlineTeacher(teacher, train, seed=0, shuffle=False)
    return train_loop(student, source, schedule, cfg, train[:1]).train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-sequences", type=int, default=64, help="probe budget in 256-token sequences")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument(
        "--plain-steps", type=int, default=16, help="steps of the plain loop (16: 16k tokens)"
    )
    parser.add_argument("--retrain-steps", type=int, default=8)
    parser.add_argument("--out", default="results/bench/distill_throughput.json")
    args = parser.parse_args()

    precisions = [("fp32", False)] + ([("bf16", True)] if DEFAULT_CPU_BF16 else [])
    peaks = {name: peak_matmul(torch.bfloat16 if bf16 else torch.float32) for name, bf16 in precisions}
    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    importance = importance_for(
        teacher.model, tokens, ImportanceConfig(), block_sizes=[6], name="smollm2-135m"
    )
    base = prune(teacher.model, STUDENT, importance)
    n_student = sum(p.numel() for p in base.parameters())
    n_teacher = sum(p.numel() for p in teacher.model.parameters())
    ids = training_windows(
        pack(tokens.train, 256), max(args.probe_sequences, args.plain_steps * args.batch_size), seed=0
    )
    validation = pack(tokens.validation, 256, 16)

    # the reference, measured in this run: a plain loop on the same student, batches and machine
    seconds = plain_kd_loop(copy.deepcopy(base), teacher.model, ids, args.plain_steps, args.batch_size)
    plain_tps = args.plain_steps * args.batch_size * 256 / seconds
    print(f"done: plain loop, {plain_tps:.0f} tokens/s", file=sys.stderr, flush=True)

    rows = []
    for name, bf16 in precisions:
        start = time.perf_counter()
        targets = compute_targets(
            teacher.model, ids[: args.probe_sequences], k=args.top_k, progress=False, bf16=bf16
        )
        targets_tps = targets.input_ids.numel() / (time.perf_counter() - start)
        cfg = ProbeConfig(batch_size=args.batch_size, eval_every=8, placement=Placement(bf16=bf16))
        result = probe(copy.deepcopy(base), targets, cfg, validation)
        train_tps = result.tokens / result.train_seconds
        # the same probe with the student's softmax over its whole vocabulary (before the
        # candidate head became the probes' default)
        whole = dataclasses.replace(cfg, weights=LossWeights(head=Head.VOCABULARY))
        vocab_result = probe(copy.deepcopy(base), targets, whole, validation)
        vocab_tps = vocab_result.tokens / vocab_result.train_seconds
        seconds = online_steps(
            copy.deepcopy(base), teacher.model, ids, args.retrain_steps, args.batch_size, bf16
        )
        online_tps = args.retrain_steps * args.batch_size * 256 / seconds
        rows.append(
            {
                "precision": name,
                "peak_matmul_gflops": peaks[name] / 1e9,
                "targets_tokens_per_s": targets_tps,
                "targets_of_peak": 2 * n_teacher * targets_tps / peaks[name],
                "probe_tokens_per_s": train_tps,
                "probe_wall_tokens_per_s": result.tokens / result.seconds,
                "probe_vs_plain": train_tps / plain_tps,
                "probe_wall_vs_plain": result.tokens / result.seconds / plain_tps,
                # 6 x params is the whole head's FLOPs: the vocabulary probe's utilization
                "vocabulary_probe_mfu": 6 * n_student * vocab_tps / peaks[name],
                "probe_final_val_loss": result.loss,
                "vocabulary_probe_tokens_per_s": vocab_tps,
                "vocabulary_probe_vs_plain": vocab_tps / plain_tps,
                "vocabulary_probe_final_val_loss": vocab_result.loss,
                "retrain_tokens_per_s": online_tps,
                "retrain_mfu": (6 * n_student + 2 * n_teacher) * online_tps / peaks[name],
            }
        )
        print(f"done: {name}", file=sys.stderr, flush=True)

    plain_mfu = (6 * n_student + 2 * n_teacher) * plain_tps / peaks["fp32"]
    tokens_plain = args.plain_steps * args.batch_size * 256
    print(f"\n{cpu_description()}")
    print(
        f"student {STUDENT.short()} ({n_student:,} params), teacher {n_teacher:,} params; "
        f"batch {args.batch_size} x 256"
    )
    print(f"probe: {args.probe_sequences * 256:,} tokens on top-{args.top_k} targets")
    print(
        "plain loop (HF student and teacher, teacher online, full-vocabulary KL, AdamW, fp32): "
        f"{plain_tps:.0f} tokens/s over {tokens_plain:,} tokens, MFU {plain_mfu:.1%}\n"
    )
    header = (
        "precision",
        "peak GFLOP/s",
        "targets tok/s",
        "targets/peak",
        "probe tok/s",
        "probe/plain",
        "wall/plain",
        "vocab MFU",
        "probe val loss",
        "vocab probe/plain",
        "retrain tok/s",
        "retrain MFU",
    )
    print("  ".join(f"{h:>14}" for h in header))
    for r in rows:
        cells = (
            r["precision"],
            f"{r['peak_matmul_gflops']:.0f}",
            f"{r['targets_tokens_per_s']:.0f}",
            f"{r['targets_of_peak']:.1%}",
            f"{r['probe_tokens_per_s']:.0f}",
            f"{r['probe_vs_plain']:.2f}x",
            f"{r['probe_wall_vs_plain']:.2f}x",
            f"{r['vocabulary_probe_mfu']:.1%}",
            f"{r['probe_final_val_loss']:.4f}",
            f"{r['vocabulary_probe_vs_plain']:.2f}x",
            f"{r['retrain_tokens_per_s']:.0f}",
            f"{r['retrain_mfu']:.1%}",
        )
        print("  ".join(f"{c:>14}" for c in cells))
    out = Path(args.out)
    write_json(
        out,
        {
            "cpu": cpu_description(),
            "student_params": n_student,
            "teacher_params": n_teacher,
            "plain_tokens_per_s": plain_tps,
            "plain_mfu": plain_mfu,
            "rows": rows,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

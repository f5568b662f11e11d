"""Peak memory and time of the distillation loss at a 128k vocabulary: today's whole-vocabulary loss
against the chunked one (`minitron.distill.chunked`), forward and backward, side by side.

    python bench/kd_loss_memory.py [--positions 2048] [--vocab 128256] [--hidden 2048] [--out FILE]
    python bench/kd_loss_memory.py --positions 8192 --arms chunked   # where the whole loss won't fit

Each arm runs in a fresh process (peak RSS is per process): the student's last hidden states
`[positions × hidden]` and an untied head `[vocab × hidden]` (Llama 3.2 1B's widths by default),
the teacher's hidden states and head (`--teacher-hidden`, 3072 as Llama 3.2 3B's), all fp32 on the
CPU; the loss is the KL to the teacher's full distribution, to its top-64 logits, or the KL mixed
with cross-entropy, and its gradients with respect to the hidden states and the head.
- whole: the head's logits `hidden @ head.T`, the teacher's logits, then `step.distillation_loss`
  (what a training step computes today when its batch is small);
- chunked: `chunked.chunked_head_loss` with the teacher's hidden states and head (its logits made
  a chunk at a time), 2^25 logits per chunk.
Peak memory is the process's high-water RSS minus its RSS once the inputs are built (so the
inputs themselves, the same for both arms, are left out); the loss values of the two arms are
printed to show they agree. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = ("kd", "kd+ce", "top-64")
ARMS = ("whole", "chunked")


def _rss(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Reset the high-water mark to the current RSS (Linux: write 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def one_arm(arm: str, mode: str, positions: int, vocab: int, hidden: int, teacher_hidden: int) -> dict:
    import torch

    from minitron.distill.chunked import Targets, chunked_head_loss, next_tokens
    from minitron.distill.step import LossWeights, distillation_loss

    torch.manual_seed(0)
    batch = 4
    seq = positions // batch
    h = torch.randn(positions, hidden).requires_grad_()
    w = (torch.randn(vocab, hidden) * hidden**-0.5).requires_grad_()
    th, tw = torch.randn(positions, teacher_hidden), torch.randn(vocab, teacher_hidden) * teacher_hidden**-0.5
    ids = torch.randint(0, vocab, (batch, seq))
    weights = LossWeights(kd=0.7, ce=0.3) if mode == "kd+ce" else LossWeights()
    top_values = top_indices = None
    if mode == "top-64":
        with torch.no_grad():
            tops = [(th[i : i + 256] @ tw.T).topk(64, dim=-1) for i in range(0, positions, 256)]
        top_values, top_indices = torch.cat([t.values for t in tops]), torch.cat([t.indices for t in tops])
    _reset_peak()
    base = _rss("VmRSS")
    start = time.perf_counter()
    if arm == "whole":
        logits = (h @ w.T).reshape(batch, seq, vocab)
        if top_values is None or top_indices is None:
            teacher = (th @ tw.T).reshape(batch, seq, vocab)
            loss = distillation_loss(logits, ids, weights, teacher_logits=teacher)
        else:
            values, indices = top_values.reshape(batch, seq, 64), top_indices.reshape(batch, seq, 64)
            loss = distillation_loss(logits, ids, weights, top_values=values, top_indices=indices)
    else:
        if top_values is None:
            targets = Targets(teacher_hidden=th, teacher_head=tw, next_tokens=next_tokens(ids))
        else:
            targets = Targets(top_values=top_values, top_indices=top_indices, next_tokens=next_tokens(ids))
        loss = chunked_head_loss(h, w, targets, weights.kd, weights.ce, weights.temperature)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = _rss("VmHWM") - base
    return {"arm": arm, "mode": mode, "loss": float(loss), "seconds": seconds, "peak_bytes": peak}


def _cpu() -> str:
    with open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return names[0] if names else platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=128_256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--teacher-hidden", type=int, default=3072)
    parser.add_argument("--arms", default=",".join(ARMS), help="whole,chunked or one of them")
    parser.add_argument("--out", default="results/bench/kd_loss_memory.json")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = (args.positions, args.vocab, args.hidden, args.teacher_hidden)
    if args.arm:  # a child: one arm, its result as JSON on the last line
        print(json.dumps(one_arm(args.arm, args.mode, *shape)))
        return 0
    rows = []
    sizes = ["--positions", str(args.positions), "--vocab", str(args.vocab), "--hidden", str(args.hidden)]
    sizes += ["--teacher-hidden", str(args.teacher_hidden)]
    for mode in MODES:
        for arm in args.arms.split(","):
            child = [sys.executable, __file__, "--arm", arm, "--mode", mode, *sizes]
            out = subprocess.run(child, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cpu = _cpu()
    print(
        f"KD loss at {args.positions} positions x {args.vocab:,} vocabulary, student hidden {args.hidden}, "
        f"teacher hidden {args.teacher_hidden}, fp32, {cpu}, {os.cpu_count()} CPUs"
    )
    print("| loss | arm | peak memory | time | loss value |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        memory, seconds = row["peak_bytes"] / 2**30, row["seconds"]
        print(f"| {row['mode']} | {row['arm']} | {memory:.2f} GiB | {seconds:.1f} s | {row['loss']:.6f} |")
    for mode in MODES if set(args.arms.split(",")) == set(ARMS) else ():
        whole, chunked = (next(r for r in rows if (r["mode"], r["arm"]) == (mode, a)) for a in ARMS)
        memory, seconds = chunked["peak_bytes"] / whole["peak_bytes"], chunked["seconds"] / whole["seconds"]
        print(f"{mode}: chunked/whole memory {memory:.3f}, time {seconds:.2f}")
    from minitron.atomic import write_json

    names = ("positions", "vocab", "hidden", "teacher_hidden")
    write_json(Path(args.out), {"shape": dict(zip(names, shape, strict=True)), "cpu": cpu, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Importance for the default search, cold: its time, and whether the shortlisted depth search
chooses the blocks that evaluating every start would.

    python bench/importance_speed.py [--block-sizes 2,4,6,10,14,16,18] [--sequences 4,8] [--out FILE]

Runs `importance_for` exactly as the search does (empty cache folder, the default `ImportanceConfig`),
then the depth losses again with every start evaluated (`depth_shortlist=0`) on each number of
calibration sequences in `--sequences`, and prints the chosen block per size for each. The default
block sizes are those the default search asks for (`make search` prints them). Prints a table and
writes JSON; name the CPU and whether bf16 was native when quoting it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from minitron.atomic import write_json
from minitron.data.corpus import load_corpus
from minitron.data.tokens import tokenize_corpus
from minitron.importance.cache import calibration_sequences, importance_for
from minitron.importance.depth import estimate_depth
from minitron.importance.scores import Importance, ImportanceConfig
from minitron.model.teacher import load_teacher
from minitron.runtime import DEFAULT_CPU_BF16, cpu_description


def _starts(importance: Importance, sizes: list[int]) -> dict[int, int]:
    """The chosen (least-loss) start per block size."""
    losses = {k: importance.block_loss[k] for k in sizes}
    return {k: int(torch.argmin(torch.nan_to_num(v, nan=float("inf")))) for k, v in losses.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-sizes", default="2,4,6,10,14,16,18")
    parser.add_argument("--sequences", default="4", help="sequence counts for the every-start comparison")
    parser.add_argument("--out", default="results/bench/importance_speed.json")
    args = parser.parse_args()
    sizes = [int(k) for k in args.block_sizes.split(",")]

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    cfg = ImportanceConfig()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        fast = importance_for(teacher.model, tokens, cfg, sizes, folder=Path(folder), progress=False)
    total = time.perf_counter() - start
    evaluated = sum(int((~v.isnan()).sum()) for v in fast.block_loss.values())
    rows = [
        {
            "depth": f"shortlist {cfg.depth_shortlist} + downhill",
            "sequences": cfg.depth_samples,
            "evaluations": evaluated,
            "depth_seconds": fast.meta["depth_seconds"],
            "starts": _starts(fast, sizes),
        }
    ]
    sequences = calibration_sequences(tokens, cfg)
    for n in (int(x) for x in args.sequences.split(",")):
        every = Importance(**{f.name: getattr(fast, f.name) for f in dataclasses.fields(Importance)})
        every.block_loss, every.meta = {}, {}
        t0 = time.perf_counter()
        estimate_depth(
            teacher.model, sequences[:n], every, sizes, cfg.batch_size, progress=False, bf16=cfg.bf16
        )
        rows.append(
            {
                "depth": "every start",
                "sequences": n,
                "evaluations": sum(v.numel() for v in every.block_loss.values()),
                "depth_seconds": round(time.perf_counter() - t0, 1),
                "starts": _starts(every, sizes),
            }
        )
        print(f"done: every start on {n} sequences", file=sys.stderr, flush=True)

    cpu = cpu_description()
    isa = torch.backends.cpu.get_cpu_capability()
    bf16 = "native, autocast on" if DEFAULT_CPU_BF16 else "not native, fp32"
    print(
        f"\nimportance for block sizes {sizes}, cold: {total:.1f} s in all "
        f"(width {fast.meta['width_seconds']} s, depth {fast.meta['depth_seconds']} s); "
        f"{cpu}; bf16 {bf16}\n"
    )
    print(f"{'depth losses':>24}  {'seqs':>5}  {'evals':>6}  {'seconds':>8}  chosen start per size")
    reference = rows[0]["starts"]
    for r in rows:
        same = sum(r["starts"][k] == reference[k] for k in sizes)
        starts = " ".join(f"{k}:{s}" for k, s in r["starts"].items())
        cells = f"{r['depth']:>24}  {r['sequences']:>5}  {r['evaluations']:>6}  {r['depth_seconds']:>8}"
        print(f"{cells}  {starts}  ({same}/{len(sizes)} as the first row)")
    out = Path(args.out)
    write_json(
        out,
        {
            "block_sizes": sizes,
            "seconds": round(total, 1),
            "width_seconds": fast.meta["width_seconds"],
            "cpu": cpu,
            "aten_capability": isa,
            "bf16_native": DEFAULT_CPU_BF16,
            "threads": torch.get_num_threads(),
            "rows": rows,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Zero-shot validation loss of pruned SmolLM2-135M: importance vs random vs weight magnitude.

    python bench/prune_zero_shot.py [--eval-sequences 64] [--fresh-importance] [--out FILE]

Width axes alone (MLP −50 %, hidden −25 %, one of three KV groups) and two combined architectures
near 50 % of the teacher's parameters are cut by activation importance, by random unit selection
(mean ± std over 3 seeds) and by weight magnitude; depth (8 of 30 layers) by the contiguous block
of least loss, the per-layer loss ranking, Block Importance and dropping the last layers. Every
model is evaluated, without any training, on the same validation sequences. Prints a table and
writes JSON. `--fresh-importance` recomputes importance in a temporary folder and reports its time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.eval.loss import validation_loss
from minitron.importance.baselines import magnitude_importance, random_importance
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import choose_layers
from minitron.model.architecture import Architecture, Family, count_params
from minitron.model.teacher import load_teacher
from minitron.prune import prune

WIDTH = {
    "MLP 50%": Architecture(30, 576, 768, 9, 3, 64),
    "hidden 25%": Architecture(30, 432, 1536, 9, 3, 64),
    "heads: 1 of 3 KV groups": Architecture(30, 576, 1536, 6, 2, 64),
    "combined A (24L, h432, m1024)": Architecture(24, 432, 1024, 9, 3, 64),
    "combined B (20L, h576, m768, 6 q)": Architecture(20, 576, 768, 6, 3, 64),
}
DEPTH = Architecture(22, 576, 1536, 9, 3, 64)  # 8 of 30 layers dropped
SEEDS = (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--eval-sequences", type=int, default=64, help="validation sequences of --seq-len tokens"
    )
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--calibration-samples", type=int, default=ImportanceConfig().num_samples)
    parser.add_argument("--fresh-importance", action="store_true", help="recompute importance and time it")
    parser.add_argument("--out", default="results/bench/prune_zero_shot.json")
    args = parser.parse_args()

    teacher = load_teacher("smollm2-135m")
    family = Family.from_config(teacher.model.config)
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    cfg = ImportanceConfig(num_samples=args.calibration_samples, seq_len=args.seq_len)
    drop_sizes = [1, *sorted({30 - a.num_hidden_layers for a in [*WIDTH.values(), DEPTH]} - {0, 1})]
    folder = Path(tempfile.mkdtemp(prefix="importance-")) / "scores" if args.fresh_importance else None
    start = time.perf_counter()
    importance = importance_for(
        teacher.model, tokens, cfg, block_sizes=drop_sizes, name="smollm2-135m", folder=folder
    )
    importance_seconds = time.perf_counter() - start
    sequences = pack(tokens.validation, args.seq_len, args.eval_sequences)

    def loss(model) -> float:
        return validation_loss(model, sequences, progress=False).loss

    teacher_loss = loss(teacher.model)
    rows = []
    magnitude = magnitude_importance(teacher.model, importance)
    randoms = [random_importance(importance, seed) for seed in SEEDS]
    for label, arch in WIDTH.items():
        random_losses = [loss(prune(teacher.model, arch, r)) for r in randoms]
        rows.append(
            {
                "axis": label,
                "architecture": arch.short(),
                "params": count_params(family, arch),
                "importance": loss(prune(teacher.model, arch, importance)),
                "random_mean": statistics.mean(random_losses),
                "random_std": statistics.stdev(random_losses),
                "magnitude": loss(prune(teacher.model, arch, magnitude)),
            }
        )
        print(f"done: {label}", file=sys.stderr, flush=True)
    depth = {
        method: loss(prune(teacher.model, DEPTH, importance, depth=method))
        for method in ("block", "layer_loss", "block_importance", "last")
    }
    kept = {m: sorted(set(range(30)) - set(choose_layers(importance, 22, m))) for m in depth}

    print(
        f"\nZero-shot validation loss (nats/token) on {sequences.shape[0]} x {args.seq_len} wiki-en "
        f"validation tokens; teacher {teacher_loss:.3f}. Lower is better; no training after pruning.\n"
    )
    print(
        f"{'axis':36} {'architecture':28} {'params':>11} {'importance':>10} {'random (3 seeds)':>17} "
        f"{'magnitude':>9}"
    )
    for r in rows:
        print(
            f"{r['axis']:36} {r['architecture']:28} {r['params']:>11,} {r['importance']:>10.3f} "
            f"{r['random_mean']:>10.3f} ±{r['random_std']:.3f} {r['magnitude']:>9.3f}"
        )
    print(f"\ndepth: drop 8 of 30 layers ({count_params(family, DEPTH):,} params)")
    for method, value in depth.items():
        print(f"  {method:18} {value:7.3f}   dropped layers {kept[method]}")
    print(
        f"\nimportance: {importance_seconds:.0f} s here "
        f"({'computed now' if args.fresh_importance else 'from the cache unless missing'}); "
        f"width pass {importance.meta.get('width_seconds')} s, "
        f"depth {importance.meta.get('depth_seconds')} s "
        f"when computed ({cfg.num_samples} x {cfg.seq_len} calibration tokens, "
        f"{cfg.depth_samples} x {cfg.seq_len} for depth, block sizes {drop_sizes})"
    )
    result = {
        "teacher_loss": teacher_loss,
        "eval_tokens": int(sequences.numel()),
        "width": rows,
        "depth": {"architecture": DEPTH.short(), "loss": depth, "dropped_layers": kept},
        "importance_seconds": importance_seconds,
        "importance_meta": {k: v for k, v in importance.meta.items() if k != "calibration"},
        "calibration": importance.meta.get("calibration"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

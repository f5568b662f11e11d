"""Pruned + distilled vs trained from scratch at equal tokens (the small-scale Minitron headline).

    python bench/prune_vs_scratch.py [--tokens 131072] [--top-k 256] [--out FILE]

Same student architecture (L24-h432-m1024-q9kv3, 69.0M parameters, 51 % of SmolLM2-135M), same
batches in the same order, same schedule and token budget:
  (a) importance-pruned + KD      (b) random init + KD
  (c) importance-pruned + CE only (d) random-pruned + KD
KD uses the teacher's top-k logits on the training batches, computed once (the probe path). The
validation loss (nats/token, the same validation sequences for all) is recorded every
`--eval-every` steps. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from transformers import AutoModelForCausalLM

from minitron import codec
from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.sources import training_windows
from minitron.distill.step import LossWeights
from minitron.distill.targets import compute_targets
from minitron.eval.loss import validation_loss
from minitron.importance.baselines import random_importance
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.architecture import Architecture, build_config
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from minitron.runtime import Placement

STUDENT = Architecture(24, 432, 1024, 9, 3, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--teacher", default="smollm2-135m", help="e.g. a corrected teacher from `python -m minitron correct`"
    )
    parser.add_argument("--tokens", type=int, default=131072, help="training tokens per variant")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--top-k", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=8)
    parser.add_argument("--eval-sequences", type=int, default=32)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for training")
    parser.add_argument("--out", default="results/bench/prune_vs_scratch.json")
    args = parser.parse_args()

    teacher = load_teacher(args.teacher)
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    drop = teacher.architecture.num_hidden_layers - STUDENT.num_hidden_layers
    importance = importance_for(
        teacher.model, tokens, ImportanceConfig(), block_sizes=[drop], name=args.teacher
    )
    ids = training_windows(pack(tokens.train, args.seq_len), args.tokens // args.seq_len, seed=0)
    start = time.perf_counter()
    targets = compute_targets(teacher.model, ids, k=args.top_k)
    print(f"teacher targets: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    validation = pack(tokens.validation, args.seq_len, args.eval_sequences)
    teacher_loss = validation_loss(teacher.model, validation, progress=False).loss

    def scratch() -> torch.nn.Module:
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(build_config(teacher.model.config, STUDENT)).eval()

    kd, ce = LossWeights(kd=1.0), LossWeights(kd=0.0, ce=1.0)
    variants = {
        "(a) pruned + KD": (lambda: prune(teacher.model, STUDENT, importance), kd),
        "(b) random init + KD": (scratch, kd),
        "(c) pruned + CE only": (lambda: prune(teacher.model, STUDENT, importance), ce),
        "(d) random-pruned + KD": (
            lambda: prune(teacher.model, STUDENT, random_importance(importance, 0)),
            kd,
        ),
    }
    results = {}
    for name, (make, weights) in variants.items():
        student = make()
        cfg = ProbeConfig(
            batch_size=args.batch_size,
            lr=args.lr,
            eval_every=args.eval_every,
            weights=weights,
            placement=Placement(bf16=args.bf16 or None),
        )
        start_loss = validation_loss(student, validation, progress=False).loss
        result = probe(student, targets, cfg, validation)
        results[name] = {"start": start_loss, "history": result.history, "seconds": result.seconds}
        print(f"done: {name} ({result.seconds:.0f} s)", file=sys.stderr, flush=True)

    points = [0.0] + [float(h.tokens) for h in next(iter(results.values()))["history"]]
    print(
        f"\nValidation loss (nats/token) of {STUDENT.short()} (69.0M) vs training tokens; teacher "
        f"{teacher_loss:.3f}; lr {args.lr}, batch {args.batch_size} x {args.seq_len}, KD on top-{args.top_k} "
        f"teacher logits.\n"
    )
    print(f"{'tokens':>8}  " + "  ".join(f"{name:>22}" for name in results))
    for i, tokens_seen in enumerate(points):
        cells = [r["start"] if i == 0 else r["history"][i - 1].val_loss for r in results.values()]
        print(f"{int(tokens_seen):>8}  " + "  ".join(f"{c:>22.3f}" for c in cells))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "teacher_loss": teacher_loss,
                "student": STUDENT.as_dict(),
                "args": vars(args),
                "variants": codec.encode(results),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""The retraining recipe at the token budgets the tool runs at: learning rate, batch size, warm-up.

    python bench/retrain_recipe.py [--tokens 64k] [--lrs 2e-4,6e-4,1.2e-3,2.4e-3]
                                   [--batches 4,8] [--warmups 40]

The width-only shape (L30-h432-m768-q9kv3, Minitron's hand recipe at 70M) cut from the embedded
teacher and retrained on the cached top-64 teacher targets (the same seeded order for every run),
for each token budget and each combination of learning rate, batch size (sequences of 256) and
warm-up steps (capped at a tenth of the run, as retraining does). The recipe is chosen on the
*validation* loss; the test loss of the chosen recipe and of the old default (lr 2e-4, batch 4,
warm-up 40) is quoted beside it. Finished runs are kept in `<out>/runs.json` (a rerun continues).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rank_fidelity import WIDTH_ONLY, Runs, _cpu, cached_targets, trained
from minitron.budget import parse_tokens
from minitron.data.corpus import load_corpus
from minitron.data.tokens import SEQ_LEN, pack, tokenize_corpus
from minitron.distill.retrain import RetrainConfig
from minitron.eval.loss import TEST_SEQUENCES, VALIDATION_SEQUENCES
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from minitron.runtime import use_bf16

OLD_DEFAULT = (2e-4, 4, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="64k")
    parser.add_argument("--lrs", default="2e-4,6e-4,1.2e-3,2.4e-3")
    parser.add_argument("--batches", default="4,8")
    parser.add_argument("--warmups", default="40")
    parser.add_argument("--out", default="results/bench/retrain_recipe")
    args = parser.parse_args()
    budgets = [parse_tokens(t, "--tokens") for t in args.tokens.split(",")]
    lrs = [float(x) for x in args.lrs.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    warmups = [int(x) for x in args.warmups.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Runs(out / "runs.json")
    started = time.perf_counter()

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    importance = importance_for(teacher.model, tokens, ImportanceConfig(), name="smollm2-135m")
    validation = pack(tokens.validation, SEQ_LEN, VALIDATION_SEQUENCES)
    test = pack(tokens.test, SEQ_LEN, TEST_SEQUENCES)
    bf16 = use_bf16(teacher.model.device, None)
    sequences = max(budgets) // SEQ_LEN + max(batches)
    targets = cached_targets(out / "targets", teacher.model, tokens.train, sequences, 0, {"seed": 0}, bf16)

    def run(budget: int, lr: float, batch: int, warmup: int) -> dict[str, Any]:
        key = f"{budget}/lr={lr:g}/batch={batch}/warmup={warmup}"
        cfg = RetrainConfig(tokens=budget, lr=lr, batch_size=batch, warmup_steps=warmup, eval_every=10**9)
        return trained(
            runs, key, lambda: prune(teacher.model, WIDTH_ONLY, importance), cfg, targets, validation, test
        )

    table: dict[str, Any] = {}
    for budget in budgets:
        grid = {
            (lr, batch, warmup): run(budget, lr, batch, warmup)
            for lr, batch, warmup in itertools.product(lrs, batches, warmups)
        }
        best = min(grid, key=lambda k: grid[k]["val_loss"])
        table[str(budget)] = {
            "grid": {f"lr={k[0]:g} batch={k[1]} warmup={k[2]}": v for k, v in grid.items()},
            "best": dict(zip(("lr", "batch", "warmup"), best, strict=True)) | grid[best],
            "old_default": dict(zip(("lr", "batch", "warmup"), OLD_DEFAULT, strict=True))
            | grid.get(OLD_DEFAULT, {}),
        }
    print("\n| tokens | recipe | batch | warm-up | validation | test |\n|---:|---|---:|---:|---:|---:|")
    for budget, entry in table.items():
        for name in ("old_default", "best"):
            e = entry[name]
            print(
                f"| {int(budget):,} | {name.replace('_', ' ')}: lr {e['lr']:g} | {e['batch']} "
                f"| {e['warmup']} | "
                f"{e.get('val_loss', float('nan')):.4f} | {e.get('test_loss', float('nan')):.4f} |"
            )
    result = {
        "machine": {"cpu": _cpu(), "bf16": bf16},
        "shape": WIDTH_ONLY.short(),
        "budgets": table,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "retrain_recipe.json").write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out / 'retrain_recipe.json'} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()

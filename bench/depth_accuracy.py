"""Depth pruning: the block costing the least Winogrande accuracy vs the block costing the least loss.

    python bench/depth_accuracy.py [--k 8] [--items 200] [--tokens 16384] [--eval-limit 100]

For each k, the teacher (SmolLM2-135M, 30 layers) loses one contiguous block of k layers, chosen
  - by loss: the block whose removal raises the calibration LM loss least (`--depth block`);
  - by accuracy: the block whose removal keeps the highest accuracy on the first `--items`
    Winogrande validation items (`--depth block_accuracy`, minitron.depth_accuracy).
Both depth-pruned models are then compared on data the choice never saw: Winogrande items
`--items` .. 1266 (held out), the first `--eval-limit` items of HellaSwag, PIQA and ARC-Easy, and
the validation loss, before and after a short distillation (`--tokens`, teacher top-64 logits on
the same seeded batches for both). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.sources import training_windows
from minitron.distill.step import LossWeights
from minitron.distill.targets import compute_targets
from minitron.eval.benchmarks import EvalConfig, evaluate
from minitron.eval.loss import validation_loss
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import choose_layers
from minitron.model.architecture import Architecture
from minitron.model.teacher import load_teacher
from minitron.prune import prune

WINOGRANDE_ITEMS = 1267
OTHER_TASKS = ("hellaswag", "piqa", "arc_easy")


def scores(model, tokenizer, validation, items: int, limit: int) -> dict[str, float]:
    held_out = EvalConfig(tasks=("winogrande",), samples={"winogrande": list(range(items, WINOGRANDE_ITEMS))})
    out = {"winogrande (held out)": evaluate(model, tokenizer, held_out).headline("winogrande")[1]}
    others = evaluate(model, tokenizer, EvalConfig(tasks=OTHER_TASKS, limit=limit))
    out.update({task: others.headline(task)[1] for task in OTHER_TASKS})
    out = {k: float(v or 0.0) for k, v in out.items()}
    out["mean accuracy"] = sum(out.values()) / len(out)
    out["validation loss"] = validation_loss(model, validation, progress=False).loss
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="8", help="comma-separated numbers of layers to drop")
    parser.add_argument("--items", type=int, default=200, help="Winogrande items that choose the block")
    parser.add_argument("--tokens", type=int, default=16384, help="distillation tokens after pruning")
    parser.add_argument("--eval-limit", type=int, default=100, help="items of hellaswag, piqa, arc_easy")
    parser.add_argument("--out", default="results/bench/depth_accuracy.json")
    args = parser.parse_args()

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    validation = pack(tokens.validation, 256, 16)
    ids = training_windows(pack(tokens.train, 256), max(args.tokens // 256, 4), seed=0)
    targets = compute_targets(teacher.model, ids, k=64)
    total = teacher.architecture.num_hidden_layers
    report: dict[str, object] = {"args": vars(args), "teacher": {}, "k": {}}
    start = time.perf_counter()
    report["teacher"] = scores(teacher.model, teacher.tokenizer, validation, args.items, args.eval_limit)
    print(f"teacher scored ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    for k in (int(x) for x in args.k.split(",")):
        start = time.perf_counter()
        importance = importance_for(
            teacher.model,
            tokens,
            ImportanceConfig(depth_shortlist=0),  # every block's loss, beside every block's accuracy
            block_sizes=[k],
            name="smollm2-135m",
            tokenizer=teacher.tokenizer,
            depth_accuracy_items=args.items,
        )
        seconds = time.perf_counter() - start
        arch = Architecture(**{**teacher.architecture.as_dict(), "num_hidden_layers": total - k})
        entry: dict[str, object] = {
            "block_loss": importance.block_loss[k].tolist(),
            "block_accuracy": importance.block_accuracy[k].tolist(),
            "importance_seconds": round(seconds, 1),
            "methods": {},
        }
        for method in ("block", "block_accuracy"):
            kept = choose_layers(importance, total - k, method)
            dropped = [i for i in range(total) if i not in kept]
            student = prune(teacher.model, arch, importance, depth=method)
            before = scores(student, teacher.tokenizer, validation, args.items, args.eval_limit)
            cfg = ProbeConfig(batch_size=4, lr=3e-4, eval_every=10**9, weights=LossWeights(), seed=0)
            probe(student, targets, cfg, validation)
            after = scores(student, teacher.tokenizer, validation, args.items, args.eval_limit)
            entry["methods"][method] = {  # type: ignore[index]
                "dropped": [dropped[0], dropped[-1]],
                "zero_shot": before,
                "distilled": after,
            }
            print(f"k={k} {method}: dropped {dropped[0]}-{dropped[-1]}", file=sys.stderr, flush=True)
        report["k"][k] = entry  # type: ignore[index]
        torch.cuda.empty_cache()

    columns = ["winogrande (held out)", *OTHER_TASKS, "mean accuracy", "validation loss"]
    print(f"\nHeld-out scores (accuracy in points; winogrande items {args.items}..{WINOGRANDE_ITEMS - 1}, "
          f"others first {args.eval_limit} items; distillation {args.tokens} tokens)\n")  # fmt: skip
    print("| model | dropped | stage | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---:|" * len(columns))

    def row(name: str, dropped: str, stage: str, s: dict[str, float]) -> None:
        cells = [f"{s[c]:.3f}" if c == "validation loss" else f"{100 * s[c]:.1f}" for c in columns]
        print(f"| {name} | {dropped} | {stage} | " + " | ".join(cells) + " |")

    row("teacher", "-", "-", report["teacher"])  # type: ignore[arg-type]
    for k, entry in report["k"].items():  # type: ignore[attr-defined]
        for method, m in entry["methods"].items():
            name = f"k={k} by {'loss' if method == 'block' else 'accuracy'}"
            dropped = f"{m['dropped'][0]}-{m['dropped'][1]}"
            row(name, dropped, "zero-shot", m["zero_shot"])
            row(name, dropped, "distilled", m["distilled"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

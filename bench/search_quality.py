"""Search quality at equal compute, and how well probe losses predict retrained losses.

    python bench/search_quality.py [--budget 70M] [--trials 6] [--probe-tokens 16k] [--retrain-tokens 24k]

Arms on the real teacher (SmolLM2-135M, default space), each spending the same compute — `trials`
probes of `probe-tokens` plus one retraining of `retrain-tokens`:
  search        the real search (TPE through Ray Tune), its winner retrained;
  random        `trials` random feasible candidates (the same pipeline with Optuna's random sampler);
  width-only    Minitron's hand recipe: all 30 layers and heads, hidden and MLP shrunk
                (L30-h432-m768-q9kv3), retrained for retrain + trials × probe tokens;
  depth-only    full width, 12 of 30 layers kept (contiguous block of least loss dropped), retrained
                likewise;
  search winner, equal tokens   the search's winner retrained likewise (the shapes alone compared).
Then every candidate the search probed (at least 6) is retrained with `retrain-tokens`, and the
Kendall rank correlation between probe loss and retrained loss is reported. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron.budget import parse_tokens
from minitron.data.corpus import load_corpus
from minitron.data.tokens import tokenize_corpus
from minitron.distill.retrain import RetrainConfig, retrain
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.architecture import Architecture, count_params
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from search.cli import resolve_settings
from search.options import build_parser
from search.runner import run_search
from search.settings import SearchSettings
from search.space import load_space

WIDTH_ONLY = Architecture(30, 432, 768, 9, 3, 64)
DEPTH_ONLY = Architecture(12, 576, 1536, 9, 3, 64)


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-a over all pairs (no ties expected in continuous losses)."""
    n, score = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            score += (
                1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1 if (a[i] - a[j]) * (b[i] - b[j]) < 0 else 0
            )
    return score / (n * (n - 1) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="70M")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--probe-tokens", default="16k")
    parser.add_argument("--retrain-tokens", default="24k")
    parser.add_argument("--out", default="results/bench/search_quality")
    args = parser.parse_args()
    probe_tokens = parse_tokens(args.probe_tokens, "--probe-tokens")
    retrain_tokens = parse_tokens(args.retrain_tokens, "--retrain-tokens")
    out = Path(args.out)
    space = load_space("smollm2-135m")

    def settings_for(arm: str, sampler: str) -> SearchSettings:
        """What `search.py` resolves for this arm (benchmarks off: the arms compare losses)."""
        argv = ["--budget", args.budget, "--trials", str(args.trials), "--probe-tokens", args.probe_tokens]
        argv += ["--retrain-tokens", args.retrain_tokens, "--top-k", "1", "--eval", "none"]
        argv += ["--out", str(out), "--name", arm, "--sampler", sampler, "--overwrite"]
        return resolve_settings(build_parser().parse_args(argv))

    base = settings_for("search", "tpe")
    rows: dict[str, dict[str, object]] = {}
    for arm, sampler in (("search", "tpe"), ("random", "random")):
        settings = settings_for(arm, sampler)
        start = time.perf_counter()
        run = Path(out / arm)
        if (run / "summary.json").exists():
            summary = json.loads((run / "summary.json").read_text())
        else:
            run_search(settings, overwrite=True)
            summary = json.loads((run / "summary.json").read_text())
        winner = summary["winners"][0]
        rows[arm] = {
            "architecture": Architecture(**winner["architecture"]).short(),
            "params": winner["params"],
            "final_loss": winner["final_loss"],
            "seconds": time.perf_counter() - start,
        }
        print(f"done: {arm}", file=sys.stderr, flush=True)

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    importance = importance_for(
        teacher.model, tokens, ImportanceConfig(), block_sizes=[18], name="smollm2-135m"
    )
    equal = retrain_tokens + args.trials * probe_tokens

    def retrained(arch: Architecture, tokens_budget: int, folder: Path) -> float:
        record = folder / "provenance.json"
        if not record.exists():
            cfg = RetrainConfig(
                tokens=tokens_budget,
                batch_size=base.retrain.batch_size,
                lr=base.retrain.lr,
                eval_every=10**9,
                eval_sequences=base.plan.validation_sequences,
                checkpoint_every=10**9,
            )
            retrain(
                prune(teacher.model, arch, importance),
                teacher.model,
                tokens,
                cfg,
                folder,
                teacher.tokenizer,
                teacher_id="smollm2-135m",
                progress=False,
            )
        return float(json.loads(record.read_text())["final_val_loss"])

    # The search's winner retrained as long as the hand-designed arms: compares the shapes alone.
    searched = Architecture(
        **json.loads((out / "search" / "summary.json").read_text())["winners"][0]["architecture"]
    )
    arms = (("width-only", WIDTH_ONLY), ("depth-only", DEPTH_ONLY), ("search winner, equal tokens", searched))
    for arm, arch in arms:
        start = time.perf_counter()
        loss = retrained(arch, equal, out / arm.replace(", ", "-").replace(" ", "-"))
        rows[arm] = {
            "architecture": arch.short(),
            "params": count_params(space.family, arch),
            "final_loss": loss,
            "seconds": time.perf_counter() - start,
        }
        print(f"done: {arm}", file=sys.stderr, flush=True)

    probed = [json.loads(line) for line in (out / "search" / "trials.jsonl").read_text().splitlines()]
    probed = [t for t in probed if t["status"] == "completed"]
    pairs = []
    for t in probed:
        arch = Architecture(**t["architecture"])
        final = retrained(arch, retrain_tokens, out / "tau" / arch.short())
        pairs.append(
            {
                "architecture": arch.short(),
                "probe_loss": t["probe_loss"],
                "zero_shot_loss": t["zero_shot_loss"],
                "final_loss": final,
            }
        )
        print(f"done: tau {arch.short()}", file=sys.stderr, flush=True)
    tau = (
        kendall_tau([p["probe_loss"] for p in pairs], [p["final_loss"] for p in pairs])
        if len(pairs) > 1
        else None
    )
    tau_zero = (
        kendall_tau([p["zero_shot_loss"] for p in pairs], [p["final_loss"] for p in pairs])
        if len(pairs) > 1
        else None
    )

    print(
        f"\nSearch quality at {args.budget} (teacher SmolLM2-135M), equal compute per arm: "
        f"{args.trials} probes x {probe_tokens:,} tokens + {retrain_tokens:,} retraining tokens "
        f"(hand-designed arms retrain for {equal:,}). Final validation loss, nats/token "
        f"({base.plan.validation_sequences} x 256 validation tokens):\n"
    )
    for arm, row in rows.items():
        print(
            f"  {arm:27} {row['architecture']:28} {row['params']:>12,} params  final {row['final_loss']:.4f}"
        )
    print(
        f"\nprobe loss vs retrained loss over {len(pairs)} probed candidates: Kendall tau {tau}; "
        f"zero-shot loss vs retrained: {tau_zero}"
    )
    for p in sorted(pairs, key=lambda p: p["probe_loss"]):
        print(
            f"  {p['architecture']:28} zero-shot {p['zero_shot_loss']:.3f}  probe {p['probe_loss']:.4f}  "
            f"retrained {p['final_loss']:.4f}"
        )
    (out / "search_quality.json").write_text(
        json.dumps(
            {
                "arms": rows,
                "pairs": pairs,
                "kendall_tau": tau,
                "kendall_tau_zero_shot": tau_zero,
                "args": vars(args),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out / 'search_quality.json'}")


if __name__ == "__main__":
    main()

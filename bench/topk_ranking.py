"""Does ranking candidates by top-k probes agree with ranking by full-distribution probes?

    python bench/topk_ranking.py [--sequences 64] [--ks 16,64,256] [--out FILE]

Six feasible candidates of the default space at 70M (16 to 30 layers) are pruned by importance and
probed on the same batches, once with the teacher's full distribution computed online and once per
k with cached top-k logits. Reports each probe's final validation loss and the Spearman rank
correlation of every top-k ranking with the full-distribution ranking. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron.data.corpus import load_corpus
from minitron.data.tokens import pack, tokenize_corpus
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.sources import training_windows
from minitron.distill.targets import compute_targets
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.model.architecture import Architecture
from minitron.model.teacher import load_teacher
from minitron.prune import prune

CANDIDATES = [
    Architecture(16, 576, 1280, 3, 3, 64),
    Architecture(20, 576, 768, 9, 3, 64),
    Architecture(24, 432, 1024, 9, 3, 64),
    Architecture(26, 528, 768, 6, 3, 64),
    Architecture(28, 480, 768, 6, 3, 64),
    Architecture(30, 384, 1280, 3, 3, 64),
]


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = float(rank)
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb, strict=True)) / (n * (n * n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=64, help="probe budget in 256-token sequences")
    parser.add_argument("--ks", default="16,64,256")
    parser.add_argument("--out", default="results/bench/topk_ranking.json")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    drops = sorted({30 - c.num_hidden_layers for c in CANDIDATES} - {0, 1})
    importance = importance_for(
        teacher.model, tokens, ImportanceConfig(), block_sizes=drops, name="smollm2-135m"
    )
    ids = training_windows(pack(tokens.train, 256), args.sequences, seed=0)
    targets = {k: compute_targets(teacher.model, ids, k=k, progress=False) for k in ks}
    validation = pack(tokens.validation, 256, 16)
    cfg = ProbeConfig(batch_size=4, eval_every=0)

    losses: dict[str, list[float]] = {"full": [], **{f"top-{k}": [] for k in ks}}
    seconds: dict[str, float] = dict.fromkeys(losses, 0.0)
    for arch in CANDIDATES:
        start = time.perf_counter()
        losses["full"].append(
            probe(
                prune(teacher.model, arch, importance), targets[ks[0]], cfg, validation, teacher=teacher.model
            ).loss
        )
        seconds["full"] += time.perf_counter() - start
        for k in ks:
            start = time.perf_counter()
            losses[f"top-{k}"].append(
                probe(prune(teacher.model, arch, importance), targets[k], cfg, validation).loss
            )
            seconds[f"top-{k}"] += time.perf_counter() - start
        print(f"done: {arch.short()}", file=sys.stderr, flush=True)

    print(f"\nFinal probe validation loss ({args.sequences} x 256 training tokens, same batches and seed):\n")
    print(f"{'candidate':28} " + " ".join(f"{name:>9}" for name in losses))
    for i, arch in enumerate(CANDIDATES):
        print(f"{arch.short():28} " + " ".join(f"{losses[name][i]:>9.4f}" for name in losses))
    correlations = {name: spearman(losses[name], losses["full"]) for name in losses if name != "full"}
    print(
        "\nSpearman rank correlation with the full-distribution ranking: "
        + ", ".join(f"{name} {rho:+.3f}" for name, rho in correlations.items())
    )
    print("probe seconds (all candidates): " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "candidates": [c.as_dict() for c in CANDIDATES],
                "losses": losses,
                "spearman_vs_full": correlations,
                "seconds": seconds,
                "sequences": args.sequences,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Rank fidelity: how well short probes (and zero-shot loss) predict the ranking after long training.

    python bench/rank_fidelity.py [--budget 70M] [--others 6] [--reference-tokens 128k]
                                  [--probes 2k,4k,8k,16k,32k] [--lrs 2e-4,6e-4,1.2e-3]
                                  [--probe-head candidates|vocabulary]

On the embedded teacher (SmolLM2-135M) and corpus: the two hand shapes (width-only, depth-only)
plus `--others` candidates of the default space's feasible set at `--budget`, drawn by a fixed seed
from distinct depths (so they spread over depth and width). Each one is
1. pruned (block depth method, the default) and its zero-shot validation loss measured;
2. probed as the search probes: on the cached top-64 teacher targets, the probe recipe (the
   student's softmax over the batch's candidate tokens; `--probe-head vocabulary`: over its
   whole vocabulary, the probes before 2026-11-29), one probe per length in `--probes` (each
   with its own full schedule), plus the validation losses the longest probe passes on its way
   (its ASHA rungs: what successive halving compares);
3. trained long as the reference: `--reference-tokens` on the same cached targets with the
   retraining recipe, its test loss measured on the test split (which nothing here chooses with).
Before the references, the retraining learning rate is chosen among `--lrs` on the width-only
shape by *validation* loss (the recipe is tuned on validation, quoted on test).

For each ranking (zero-shot, each probe length, each rung of the longest probe) against the
references' test losses: Kendall tau and top-1 regret (test loss of the ranking's pick minus the
best test loss). Every finished run is stored in `<out>/runs.json` as it finishes, and a rerun
skips it (the bench resumes). Writes `<out>/rank_fidelity.json` and `<out>/rank_fidelity.png`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from minitron import codec
from minitron.budget import parse_budget, parse_tokens
from minitron.data.corpus import load_corpus
from minitron.data.tokens import SEQ_LEN, pack, tokenize_corpus
from minitron.distill.history import Validation
from minitron.distill.loop import train
from minitron.distill.probe import ProbeConfig, probe
from minitron.distill.retrain import RetrainConfig
from minitron.distill.sources import CachedTargets, training_windows
from minitron.distill.step import Head, LossWeights
from minitron.distill.targets import TeacherTargets, compute_targets
from minitron.eval.loss import TEST_SEQUENCES, VALIDATION_SEQUENCES, validation_loss
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.model.architecture import Architecture
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from minitron.runtime import use_bf16
from search.plan.candidates import feasible
from search.plan.space import load_space

WIDTH_ONLY = Architecture(30, 432, 768, 9, 3, 64)
DEPTH_ONLY = Architecture(12, 576, 1536, 9, 3, 64)
TOP_K = 64
SEED = 0


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-a over all pairs (ties count zero)."""
    n, score = len(a), 0.0
    for i in range(n):
        for j in range(i + 1, n):
            score += float(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]))
    return score / (n * (n - 1) / 2)


def probe_key(arch: Architecture, length: int, lr: float, head: Head) -> str:
    """Runs of the original probe learning rate and head (the whole vocabulary) keep their first keys."""
    return (
        f"probe/{arch.short()}/{length}"
        + ("" if lr == 3e-4 else f"/lr={lr:g}")
        + ("" if head is Head.VOCABULARY else f"/head={head}")
    )


def regret(ranking: list[float], truth: list[float]) -> float:
    return truth[int(np.argmin(ranking))] - min(truth)


def choose_candidates(budget: int, others: int) -> list[Architecture]:
    """The hand shapes plus `others` feasible shapes from distinct depths, drawn by a fixed seed."""
    space = load_space("smollm2-135m")
    pool = [c.arch for c in feasible(space, budget) if c.arch not in (WIDTH_ONLY, DEPTH_ONLY)]
    rng = np.random.default_rng(SEED)
    depths = sorted({a.num_hidden_layers for a in pool})
    chosen_depths = sorted(rng.choice(depths, size=min(others, len(depths)), replace=False).tolist())
    chosen = []
    for depth in chosen_depths:
        options = sorted((a for a in pool if a.num_hidden_layers == depth), key=lambda a: a.short())
        chosen.append(options[int(rng.integers(len(options)))])
    return [WIDTH_ONLY, DEPTH_ONLY, *chosen]


def cached_targets(
    folder: Path,
    teacher: Any,
    train: Any,
    sequences: int,
    seed: int,
    meta: dict[str, Any],
    bf16: bool = False,
) -> TeacherTargets:
    """The top-64 teacher targets over the first `sequences` windows of the seeded order, read from
    `folder` when an earlier run of a bench stored them there."""
    if (folder / "targets.json").exists():
        return TeacherTargets.load(folder)
    t0 = time.perf_counter()
    ids = training_windows(pack(train, SEQ_LEN), sequences, seed)
    targets = compute_targets(teacher, ids, k=TOP_K, meta=meta, bf16=bf16)
    targets.save(folder)
    print(f"teacher targets for {sequences} sequences: {time.perf_counter() - t0:.0f} s", flush=True)
    return targets


class Runs:
    """`runs.json`: every finished run by key, written after each one (the bench resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def trained(
    runs: Runs,
    key: str,
    build: Callable[[], Any],
    cfg: RetrainConfig,
    targets: TeacherTargets,
    validation: torch.Tensor,
    test: torch.Tensor,
) -> dict[str, Any]:
    """The model `build()` makes, trained once per `key` on the cached targets with `cfg`'s recipe:
    its validation and test loss (kept in `runs`, so a rerun of a bench skips it)."""
    if runs.get(key) is None:
        model = build()
        result = train(model, CachedTargets(targets), cfg.schedule(), cfg, validation, eval_batch_size=4)
        runs.put(
            key,
            {
                "val_loss": result.loss,
                "test_loss": validation_loss(model, test, progress=False).loss,
                "history": codec.encode(result.history),
                "steps": cfg.steps,
                "seconds": round(result.seconds, 1),
            },
        )
        print(f"{key}: val {result.loss:.4f} ({result.seconds:.0f} s)", flush=True)
    return dict(runs.get(key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="70M")
    parser.add_argument("--others", type=int, default=6)
    parser.add_argument("--reference-tokens", default="128k")
    parser.add_argument("--probes", default="2k,4k,8k,16k,32k")
    parser.add_argument("--lrs", default="2e-4,6e-4,1.2e-3")
    parser.add_argument("--probe-lrs", default="3e-4,1.2e-3", help="probe learning rates compared")
    parser.add_argument(
        "--probe-head",
        default=str(Head.CANDIDATES),
        choices=Head.names(),
        help="the probes' softmax over the batch's candidate tokens (the search's) or the vocabulary",
    )
    parser.add_argument("--out", default="results/bench/rank_fidelity")
    args = parser.parse_args()
    budget = parse_budget(args.budget)
    step = 4 * SEQ_LEN  # tokens per optimizer step; lengths are rounded to whole steps ("2k" = 2 steps)
    reference_tokens = max(round(parse_tokens(args.reference_tokens, "--reference-tokens") / step), 1) * step
    probe_lengths = sorted(
        {max(math.ceil(parse_tokens(p, "--probes") / step), 1) * step for p in args.probes.split(",")}
    )
    lrs = [float(x) for x in args.lrs.split(",")]
    probe_lrs = [float(x) for x in args.probe_lrs.split(",")]
    head = Head(args.probe_head)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Runs(out / "runs.json")
    started = time.perf_counter()

    teacher = load_teacher("smollm2-135m")
    tokens = tokenize_corpus(load_corpus("wiki-en"), teacher.tokenizer)
    candidates = choose_candidates(budget, args.others)
    print("candidates:", ", ".join(a.short() for a in candidates), flush=True)
    total_layers = teacher.architecture.num_hidden_layers
    depth = DepthMethod.BLOCK
    importance = importance_for(
        teacher.model,
        tokens,
        ImportanceConfig(),
        block_sizes=depth.block_sizes(total_layers - a.num_hidden_layers for a in candidates),
        name="smollm2-135m",
    )
    validation = pack(tokens.validation, SEQ_LEN, VALIDATION_SEQUENCES)
    test = pack(tokens.test, SEQ_LEN, TEST_SEQUENCES)
    retrain_cfg = RetrainConfig(tokens=reference_tokens, eval_every=32, checkpoint_every=0, seed=SEED)
    sequences = max(reference_tokens, max(probe_lengths)) // SEQ_LEN
    meta = {"tokens": tokens.key, "seed": SEED}
    targets = cached_targets(out / "targets", teacher.model, tokens.train, sequences, SEED, meta)
    teacher_test = runs.get("teacher_test_loss")
    if teacher_test is None:
        teacher_test = validation_loss(teacher.model, test, progress=False).loss
        runs.put("teacher_test_loss", teacher_test)

    def student(arch: Architecture) -> Any:
        return prune(teacher.model, arch, importance, depth=depth)

    def long_run(arch: Architecture, lr: float) -> dict[str, Any]:
        cfg = dataclasses.replace(retrain_cfg, lr=lr)
        key = f"reference/{arch.short()}/lr={lr:g}"
        return trained(runs, key, lambda: student(arch), cfg, targets, validation, test)

    # 1. the retraining learning rate, chosen on validation loss for the width-only shape
    sweep = {lr: long_run(WIDTH_ONLY, lr)["val_loss"] for lr in lrs}
    best_lr = min(sweep, key=lambda lr: sweep[lr])
    print(f"retraining lr: {best_lr:g} (validation losses {sweep})", flush=True)

    # 2. zero-shot, probes and the long reference of every candidate
    rows = []
    for arch in candidates:
        row: dict[str, Any] = {"architecture": arch.short()}
        key = f"zero_shot/{arch.short()}"
        if runs.get(key) is None:
            runs.put(key, validation_loss(student(arch), validation, progress=False).loss)
        row["zero_shot"] = runs.get(key)
        for lr in probe_lrs:
            for length in probe_lengths:
                key = probe_key(arch, length, lr, head)
                if runs.get(key) is None:
                    longest = length == probe_lengths[-1]
                    cfg = ProbeConfig(
                        tokens=length,
                        lr=lr,
                        rungs=len(probe_lengths) if longest else 1,
                        weights=LossWeights(head=head),
                        seed=SEED,
                    )
                    result = probe(student(arch), targets, cfg, validation)
                    record = {
                        "loss": result.loss,
                        "history": codec.encode(result.history),
                        "seconds": round(result.seconds, 1),
                    }
                    runs.put(key, record)
                    print(f"{key}: {result.loss:.4f} ({result.seconds:.0f} s)", flush=True)
                row[f"probe {length // 1024}k, lr {lr:g}"] = runs.get(key)["loss"]
            longest = runs.get(probe_key(arch, probe_lengths[-1], lr, head))
            for point in codec.decode(list[Validation], longest["history"], str(runs.path)):
                rung = f"rung {point.tokens // 1024}k of {probe_lengths[-1] // 1024}k, lr {lr:g}"
                row[rung] = point.val_loss
        reference = long_run(arch, best_lr)
        row["reference_val"], row["reference_test"] = reference["val_loss"], reference["test_loss"]
        rows.append(row)

    truth = [r["reference_test"] for r in rows]
    rankings = {"zero-shot": [r["zero_shot"] for r in rows]}
    rankings |= {k: [r[k] for r in rows] for k in rows[0] if k.startswith(("probe ", "rung "))}
    table = {
        name: {"kendall_tau": kendall_tau(values, truth), "top1_regret": regret(values, truth)}
        for name, values in rankings.items()
    }
    result = {
        "machine": {
            "cpu": _cpu(),
            "bf16": use_bf16(torch.device("cpu"), None),
            "python": platform.python_version(),
        },
        "budget": budget,
        "probe_head": str(head),
        "reference_tokens": retrain_cfg.steps * retrain_cfg.batch_size * SEQ_LEN,
        "retrain_lr_sweep": {f"{lr:g}": v for lr, v in sweep.items()},
        "retrain_lr": best_lr,
        "teacher_test_loss": teacher_test,
        "candidates": rows,
        "rankings": table,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "rank_fidelity.json").write_text(json.dumps(result, indent=2))
    print(
        f"\nreference: {result['reference_tokens']:,} tokens at lr {best_lr:g}; "
        f"test loss (teacher {teacher_test:.3f})"
    )
    columns = [k for k in rows[0] if k.startswith("probe ")]
    print("| candidate | zero-shot | " + " | ".join(columns) + " | reference val | reference test |")
    print("|---|" + "---:|" * (len(columns) + 3))
    for r in rows:
        probes = " | ".join(f"{r[c]:.3f}" for c in columns)
        print(
            f"| {r['architecture']} | {r['zero_shot']:.3f} | {probes} | {r['reference_val']:.3f} "
            f"| {r['reference_test']:.3f} |"
        )
    print("\n| ranking by | Kendall tau | top-1 regret (nats) |\n|---|---:|---:|")
    for name, values in table.items():
        print(f"| {name} | {values['kendall_tau']:.2f} | {values['top1_regret']:.3f} |")
    _plot(table, probe_lrs, out / "rank_fidelity.png")
    print(f"\nwrote {out / 'rank_fidelity.json'} and rank_fidelity.png ({result['wall_seconds']:.0f} s)")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _plot(table: dict[str, dict[str, float]], lrs: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for lr in lrs:
        for label, prefix in (("separate probes", "probe "), ("rungs of the longest", "rung ")):
            names = [n for n in table if n.startswith(prefix) and n.endswith(f"lr {lr:g}")]
            xs = [int(n.split()[1].rstrip("k,")) * 1024 for n in names]
            style = {"marker": "o", "linestyle": "-" if prefix == "probe " else ":"}
            left.plot(xs, [table[n]["kendall_tau"] for n in names], label=f"{label}, lr {lr:g}", **style)
            right.plot(xs, [table[n]["top1_regret"] for n in names], label=f"{label}, lr {lr:g}", **style)
    for axis, metric in ((left, "kendall_tau"), (right, "top1_regret")):
        axis.axhline(table["zero-shot"][metric], color="grey", linestyle="--", label="zero-shot")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("probe tokens")
    left.set_ylabel("Kendall tau vs long training")
    right.set_ylabel("top-1 regret (nats, test)")
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()

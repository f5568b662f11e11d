"""Does the probe ranking hold at the length users retrain? The search's probe rungs against
long-training references, in as many reference seeds as were trained.

    python bench/rank_at_length.py --probes results/bench/halving_512k/halving.json \
        --references results/bench/sq_512k_hand/search_quality.json[,more.json] \
        [--probe-seed 0] [--out results/bench/rank_at_length_512k]

Probes: bench/halving.py's run of the search with every probe to its end, so each candidate has
its validation loss at every rung (what successive halving compares), in the search's own probe
schedule for that retraining length. References: bench/search_quality.py's hand arms and `--shapes`
arms, each shape trained alone from its freshly pruned weights for the same T tokens (test split,
which nothing here chooses with). Several reference files (or seeds in one) are pooled by shape.

For the candidates that have a reference, at every rung: Kendall's tau of the rung's order against
the references' mean test loss, and top-1 regret (the mean test loss of the rung's pick minus the
best). Also what ASHA kept, as bench/halving.py replays it. The references' own noise is printed
beside them: the sd over seeds of each shape, and tau between reference seeds where every shape
has both. Writes `<out>/rank_at_length.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rank_fidelity import kendall_tau, regret
from minitron.budget import format_count

OUT_OF_DOMAIN = "speeches-en"


def read_references(paths: list[Path]) -> dict[str, dict[int, dict[str, float]]]:
    """Shape label -> seed -> {"mixture": test loss, "ood": out-of-domain test loss, "validation":
    validation loss (its own, smaller split: how far the references' order is from noise), "tokens": T}."""
    refs: dict[str, dict[int, dict[str, float]]] = {}
    for path in paths:
        rows = json.loads(path.read_text())["rows"]
        for seed, arms in rows.items():
            for arm, row in arms.items():
                if arm in ("search", "random"):  # those continue from their probe: not a reference
                    continue
                refs.setdefault(row["architecture"], {})[int(seed)] = {
                    "mixture": row["test_loss"],
                    "ood": row["test_losses"][OUT_OF_DOMAIN],
                    "validation": row["val_loss"],
                    "tokens": row["tokens"],
                }
    return refs


def compare(curves: dict[str, dict[int, float]], truth: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per rung: tau and top-1 regret of the rung's losses against `truth` over the shapes in both."""
    shapes = sorted(s for s in truth if s in curves)
    rungs = sorted({r for s in shapes for r in curves[s]})
    table: dict[str, dict[str, Any]] = {}
    for rung in rungs:
        probe = [curves[s][rung] for s in shapes]
        ref = [truth[s] for s in shapes]
        table[str(rung)] = {
            "tau": kendall_tau(probe, ref),
            "regret": regret(probe, ref),
            "pick": shapes[probe.index(min(probe))],
            "order": [s for _, s in sorted(zip(probe, shapes, strict=True))],
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", required=True, help="bench/halving.py's halving.json")
    parser.add_argument("--probe-seed", default="0", help="which of its seeds")
    parser.add_argument("--references", required=True, help="bench/search_quality.py JSONs, comma-separated")
    parser.add_argument("--out", default="results/bench/rank_at_length")
    args = parser.parse_args()
    halving = json.loads(Path(args.probes).read_text())
    if args.probe_seed not in halving["rows"]:
        raise SystemExit(f"--probe-seed {args.probe_seed}: {args.probes} has seeds {sorted(halving['rows'])}")
    row = halving["rows"][args.probe_seed]
    curves = {s: {int(k): v for k, v in c.items()} for s, c in row["curves"].items()}
    refs = read_references([Path(p) for p in args.references.split(",")])
    shapes = sorted(s for s in refs if s in curves)
    if len(shapes) < 2:
        raise SystemExit(f"only {len(shapes)} probed shape(s) have a reference: nothing to rank")
    tokens = {r["tokens"] for s in shapes for r in refs[s].values()}
    if len(tokens) != 1:
        raise SystemExit(f"the references were trained for different T ({sorted(tokens)}): not comparable")

    def mean_over_seeds(key: str) -> dict[str, float]:
        return {s: statistics.fmean(r[key] for r in refs[s].values()) for s in shapes}

    mixture, ood, validation = (mean_over_seeds(key) for key in ("mixture", "ood", "validation"))
    print(f"references at T = {format_count(tokens.pop())} tokens; probes of seed {args.probe_seed}")
    print(
        "| shape | reference seeds | mixture test (mean ± sd) | out of domain | validation | ASHA kept to |"
    )
    print("|---|---|---:|---:|---:|---:|")
    asha = row["rules"]["asha"]["reached"]
    for s in sorted(shapes, key=mixture.__getitem__):
        values = [r["mixture"] for r in refs[s].values()]
        sd = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        seeds = ",".join(str(k) for k in sorted(refs[s]))
        cells = f"{mixture[s]:.3f}{sd} | {ood[s]:.3f} | {validation[s]:.3f}"
        print(f"| {s} | {seeds} | {cells} | {format_count(asha[s])} |")

    result: dict[str, Any] = {"args": vars(args), "shapes": shapes, "references": refs}
    result["mixture"] = compare(curves, mixture)
    result["out_of_domain"] = compare(curves, ood)
    result["tau_validation_test"] = kendall_tau([validation[s] for s in shapes], [mixture[s] for s in shapes])
    print(f"tau of the references' validation order against their test: {result['tau_validation_test']:.2f}")
    complete = sorted(set.intersection(*(set(refs[s]) for s in shapes)))  # seeds every shape has
    result["per_seed"] = {
        str(k): compare(curves, {s: refs[s][k]["mixture"] for s in shapes}) for k in complete
    }
    if len(complete) >= 2:  # the references' own noise, as a ranking
        a, b = complete[:2]
        result["tau_between_reference_seeds"] = kendall_tau(
            [refs[s][a]["mixture"] for s in shapes], [refs[s][b]["mixture"] for s in shapes]
        )
        print(f"tau between reference seeds {a} and {b}: {result['tau_between_reference_seeds']:.2f}")
    print("\n| rung (probe tokens) | tau, mixture | regret, mixture | tau, out of domain | pick |")
    print("|---:|---:|---:|---:|---|")
    for rung, cell in result["mixture"].items():
        other = result["out_of_domain"][rung]
        print(
            f"| {format_count(int(rung))} | {cell['tau']:.2f} | {cell['regret']:.3f} | "
            f"{other['tau']:.2f} | {cell['pick']} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rank_at_length.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'rank_at_length.json'}")


if __name__ == "__main__":
    main()

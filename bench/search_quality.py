"""Search quality at equal compute: does the search beat the hand-designed shapes and random sampling?

    python bench/search_quality.py [--budget 70M] [--retrain-tokens 128k] [--overhead 0.25]
                                   [--trials 8] [--seeds 0,1,2] [--fresh-winners]
                                   [--arms search,random,width-only,depth-only] [--search-args '...']

On the default data (the distillation mix). Every arm spends the same total tokens T, counted as
trained tokens:
  search      the real search (`search.py`: default sampler and scheduler, probes on the cached
              teacher targets), its winner retrained for R tokens with the teacher online. The
              winner continues from its probe (its probe tokens are part of R), so
              T = R + the probe tokens of the candidates that were not kept (`cost.tokens_all` in
              its summary.json); with `--fresh-winners`, the recipe before, T = R + all probes;
  random      the same search with Optuna's random sampler (its own T, reported; `--arms random`
              alone runs only this arm);
  width-only  Minitron's hand recipe, all 30 layers and heads, hidden and MLP shrunk
              (L30-h432-m768-q9kv3), trained for the search's T tokens;
  depth-only  full width, 12 of 30 layers (the contiguous block of least loss dropped), for T;
  *-wsd       (only when asked for with --arms) a hand shape trained for T with the search
              winners' schedule (warm-up, constant while a probe runs, then the decay) instead
              of the cosine;
  depth-only-layer-loss, depth-only-bi  (only when asked for) the depth-only shape with another
              choice of its 18 dropped layers, not one contiguous block: the 18 whose removal alone
              costs least, or the 18 of lowest Block Importance; trained like depth-only. Do shapes
              no recipe names (issue 29 item 3) have room to win?
  depth-only-block2, depth-only-block3  (only when asked for) the depth-only shape dropping the
              contiguous block of 18 layers with the 2nd (3rd) least measured removal loss.
  --shapes L20-h576-m768-q9kv3-d64,...  more shapes by their label, each an arm trained like
              depth-only (references for the candidates a search ranked, issue 29 item 2).
With `--total-tokens N` the hand shapes train N tokens and the search arm runs only when asked for
(to repeat a hand arm at a T measured before without repeating its search).
The hand shapes are cut with the importance the search computed (cached per teacher and data) and
trained as `python -m minitron distill` trains a student: the teacher online, in the same seeded
order, its default schedule (warm-up, cosine over the whole run). Each seed changes the data
order, the probe batches and the sampler's seed. Quoted: test loss on the mixture's test split
(which nothing chose with), the out-of-domain part's, per seed and mean ± spread over seeds.
Every finished arm is kept in `<out>/seed-<s>/`, so a rerun continues.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rank_fidelity import DEPTH_ONLY, WIDTH_ONLY
from minitron.budget import format_count, parse_tokens
from minitron.data.generated import teacher_identity
from minitron.data.mix import DEFAULT_DATA, load_tokens
from minitron.distill.provenance import Provenance
from minitron.distill.retrain import RetrainConfig, retrain
from minitron.errors import MinitronError
from minitron.importance.cache import importance_for
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod, select
from minitron.model.architecture import Architecture, count_params
from minitron.model.teacher import load_teacher
from minitron.prune import prune
from search import api
from search.cli.main import given_options
from search.cli.options import build_parser
from search.outputs.summary import Summary
from search.plan.request import SearchRequest
from search.plan.space import load_space
from search.plan.spec import flags


def search_options(text: str) -> dict[str, Any]:
    """The search.py options written in `text` (`--search-args`), read by the search's own parser,
    as `SearchRequest` fields: only those actually written, so the bench's own values stay for the rest."""
    argv = shlex.split(text)
    parsed = build_parser().parse_args(argv)
    given = given_options(build_parser(), argv)
    other = sorted(given - set(SearchRequest.__dataclass_fields__))
    if other:
        raise SystemExit(f"--search-args: {flags(other)} is not an option of a search this bench runs")
    return {name: getattr(parsed, name) for name in given}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="70M")
    parser.add_argument("--retrain-tokens", default="128k")
    parser.add_argument("--overhead", type=float, default=0.25)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--fresh-winners", action="store_true", help="winners start from their pruned weights"
    )
    parser.add_argument("--arms", default="search,random,width-only,depth-only", help="which arms to run")
    parser.add_argument(
        "--search-args",
        default="",
        help="more search.py options for both search arms, e.g. '--trials 4 --rungs 2' (use another --out)",
    )
    parser.add_argument(
        "--total-tokens", default=None, help="T for the hand shapes instead of the search arm's"
    )
    parser.add_argument("--shapes", default="", help="more shapes to train like depth-only, by label")
    parser.add_argument("--out", default="results/bench/search_quality_mix")
    args = parser.parse_args()
    fixed_total = parse_tokens(args.total_tokens, "--total-tokens") if args.total_tokens else None
    retrain_tokens = parse_tokens(args.retrain_tokens, "--retrain-tokens")
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        shapes = [Architecture.parse(label) for label in filter(None, args.shapes.split(","))]
    except MinitronError as err:
        raise SystemExit(f"--shapes: {err}") from None
    wanted = set(args.arms.split(",")) | {arch.short() for arch in shapes}
    out = Path(args.out)
    space = load_space("smollm2-135m")
    started = time.perf_counter()

    extra = search_options(args.search_args)

    def request_for(arm: str, sampler: str, seed: int) -> SearchRequest:
        """The search of this arm (benchmarks off: the arms compare losses)."""
        request = SearchRequest(
            budget=args.budget,
            trials=args.trials,
            overhead=args.overhead,
            retrain_tokens=args.retrain_tokens,
            top_k=1,
            eval="none",
            # One winner beside 7 other probes: the default max_not_kept 0.1 could not pay their
            # first rungs at 128k; the tables in docs/lab/measured-search.md were measured without the cap.
            max_not_kept=1.0,
            out=str(out / f"seed-{seed}"),
            name=arm,
            sampler=sampler,
            seed=seed,
            fresh_winners=args.fresh_winners,
        )
        return dataclasses.replace(request, **extra)  # --search-args win over the values above

    teacher = load_teacher("smollm2-135m")
    # the teacher draws its samples for the mix if they are not cached yet (once per teacher)
    tokens = load_tokens(
        DEFAULT_DATA, teacher.tokenizer, teacher_identity("smollm2-135m"), lambda: teacher.model, offline=True
    )
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    for seed in seeds:
        rows[seed] = {}
        base = api.plan(request_for("search", "tpe", seed)).settings
        for arm, sampler in (("search", "tpe"), ("random", "random")):
            # the search's T sizes the hand shapes: it runs when they do
            needed_for_t = arm == "search" and fixed_total is None and wanted - {"search", "random"}
            if arm not in wanted and not needed_for_t:
                continue
            run = out / f"seed-{seed}" / arm
            t0 = time.perf_counter()
            if (run / "summary.json").exists():
                summary = Summary.load(run / "summary.json")
            else:
                summary = api.run(request_for(arm, sampler, seed), overwrite=True).summary
            winner, cost = summary.winners[0], summary.cost
            rows[seed][arm] = {
                "architecture": winner.architecture.short(),
                "params": winner.params,
                "test_loss": winner.result.test_loss,
                "test_losses": dict(winner.result.test_losses),
                "val_loss": winner.result.final_loss,
                "tokens": cost.tokens_all or (cost.probe_tokens or 0) + (winner.result.tokens_trained or 0),
                "probe_tokens": cost.probe_tokens,
                "not_kept_fraction": cost.not_kept_fraction,
                "seconds": summary.seconds or time.perf_counter() - t0,
            }
            print(f"seed {seed} {arm}: {rows[seed][arm]}", flush=True)

        if "search" not in rows[seed] and fixed_total is None:  # only random sampling asked for
            continue
        # The hand shapes: cut with the importance the search used, trained for the search's T tokens
        # as `python -m minitron distill` trains (teacher online, warm-up and cosine over the run).
        importance = importance_for(
            teacher.model,
            tokens,
            ImportanceConfig(),
            block_sizes=[
                # the --shapes may drop other numbers of layers (a -bN shape needs its block measured)
                *DepthMethod.BLOCK.block_sizes([30 - 12, *(30 - arch.num_hidden_layers for arch in shapes)]),
                *DepthMethod.LAYER_LOSS.block_sizes([30 - 12]),
            ],
            name="smollm2-135m",
        )
        total = fixed_total or int(rows[seed]["search"]["tokens"])
        default = RetrainConfig(tokens=total)
        cfg = dataclasses.replace(
            base.retrain,
            tokens=total,
            warmup_steps=default.warmup_steps,
            decay_fraction=default.decay_fraction,
            checkpoint_every=max(default.steps // 8, 1),
        )
        # The `-wsd` arms isolate the schedule: the hand shape from its pruned weights, trained for
        # T with the search winners' schedule (its warm-up, constant while a probe runs, the decay).
        wsd = dataclasses.replace(
            cfg, warmup_steps=base.retrain.warmup_steps, decay_fraction=base.retrain.decay_fraction
        )
        hand = (
            ("width-only", WIDTH_ONLY, cfg, DepthMethod.BLOCK, 0),
            ("depth-only", DEPTH_ONLY, cfg, DepthMethod.BLOCK, 0),
            ("width-only-wsd", WIDTH_ONLY, wsd, DepthMethod.BLOCK, 0),
            ("depth-only-wsd", DEPTH_ONLY, wsd, DepthMethod.BLOCK, 0),
            ("depth-only-layer-loss", DEPTH_ONLY, cfg, DepthMethod.LAYER_LOSS, 0),
            ("depth-only-bi", DEPTH_ONLY, cfg, DepthMethod.BLOCK_IMPORTANCE, 0),
            ("depth-only-block2", DEPTH_ONLY, cfg, DepthMethod.BLOCK, 1),
            ("depth-only-block3", DEPTH_ONLY, cfg, DepthMethod.BLOCK, 2),
            *((arch.short(), arch, cfg, DepthMethod.BLOCK, 0) for arch in shapes),
        )
        for arm, arch, arm_cfg, depth, block in hand:
            if arm not in wanted:
                continue
            folder = out / f"seed-{seed}" / arm
            kept = select(importance, arch, depth, block).layers
            if not (folder / "provenance.json").exists():
                student = prune(teacher.model, arch, importance, depth=depth, block=block)
                retrain(student, teacher.model, tokens, arm_cfg, folder, teacher.tokenizer, progress=False)
            record = Provenance.load(folder)
            rows[seed][arm] = {
                "architecture": arch.short(),
                "kept_layers": list(kept),
                "params": count_params(space.family, arch),
                "test_loss": record.test_loss,
                "test_losses": dict(record.test_losses),
                "val_loss": record.final_val_loss,
                "tokens": record.tokens_trained,
                "seconds": record.train_seconds,
            }
            print(f"seed {seed} {arm}: {rows[seed][arm]}", flush=True)

    arms = [arm for arm in rows[seeds[0]] if all(arm in rows[s] for s in seeds)]
    print(
        f"\nSearch quality at {args.budget}, equal compute: R = {format_count(retrain_tokens)} retraining "
        f"tokens per winner, T = all tokens trained per arm (the hand shapes: the search's T). Test loss "
        "on the mixture (out of domain: speeches-en), nats/token:\n"
    )
    print("| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± spread |")
    print("|---|" + "---|" * len(seeds) + "---:|")
    means = {}
    for arm in arms:
        losses = [rows[s][arm]["test_loss"] for s in seeds]
        spread = statistics.stdev(losses) if len(losses) > 1 else 0.0
        means[arm] = {"mean": statistics.mean(losses), "stdev": spread}
        cells = " | ".join(
            f"{rows[s][arm]['architecture']} {rows[s][arm]['test_loss']:.3f} "
            f"(OOD {rows[s][arm]['test_losses'].get('speeches-en', float('nan')):.3f}; "
            f"{format_count(rows[s][arm]['tokens'])} tokens)"
            for s in seeds
        )
        print(f"| {arm} | {cells} | {means[arm]['mean']:.3f} ± {spread:.3f} |")
    beats = {
        other: all(rows[s]["search"]["test_loss"] < rows[s][other]["test_loss"] for s in seeds)
        for other in arms
        if other != "search" and "search" in arms
    }
    print(f"\nthe search's winner beats, in every seed: {beats}")
    result = {
        "args": vars(args),
        "rows": {str(s): r for s, r in rows.items()},
        "means": means,
        "search_beats_in_every_seed": beats,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out / "search_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'search_quality.json'}")


if __name__ == "__main__":
    main()

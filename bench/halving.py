"""Which candidate would each halving rule keep? Ray's asynchronous ASHA, as the search runs it with
trials one at a time, against synchronous successive halving, on the same probes.

    python bench/halving.py [--budget 70M] [--retrain-tokens 128k] [--seeds 0,1,2]
                            [--out results/bench/halving]

Why: at R = 512k (docs/lab/measured-search.md) ASHA stopped the depth-only shape at its first rung
against a single recorded value (width-only's), while a synchronous halving of all eight first
rungs would have kept it. Building synchronous halving into the search means pausing and resuming
Ray Tune trials; this bench says first whether it would change the pick.

How: per seed, the search's own candidates (same sampler, seed, hand shapes enqueued first, same
probe schedule: the default plan's rungs, constant learning rate as winners continue from it) are
all probed to the end (`--scheduler none`, nothing retrained). Probes are deterministic and do not
depend on the scheduler, so each rule is then replayed on the recorded rung values, in the order
the trials started:
  asha     Ray's rule (`ray.tune.schedulers.async_hyperband._Bracket.on_result`, reduction factor
           2): at each rung a trial is stopped when its loss is above the median of the losses
           recorded there so far; the first arrival always continues. The search's token budget
           (`search.run.tuning.ProbeBudget`) is applied too.
  sync     successive halving proper: all trials to the first rung, the better half (rounded up)
           to the next, and so on; the pick is the best at the last rung.
  full     no scheduler: every probe to its end (more tokens than either);
  two-stage  every plan "all trials to rung r, the best k on to the end" within the budget.
Each rule's pick is the best probe that ran to its end; its tokens are the probe tokens it spends.
What the long-training order is for these shapes comes from bench/search_quality.py (depth-only
first in every seed measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron.budget import format_count
from search.outputs.records import ProbeReport, ProbeStart
from search.plan.request import SearchRequest
from search.plan.settings import Scheduler
from search.plan.spec import RunSpec, resolve
from search.run.pipeline import run_search  # what `search.api.run` runs after `resolve`

Curve = dict[int, float]
"""A probe's validation losses by probe tokens (its rungs)."""


def asha(order: list[str], curves: dict[str, Curve], rungs: list[int], budget: float) -> dict[str, int]:
    """Ray's asynchronous halving over trials run one at a time, with the search's token budget:
    the tokens each trial reached."""
    recorded: dict[int, list[float]] = {r: [] for r in rungs}
    reached: dict[str, int] = {}
    for trial in order:
        if sum(reached.values()) + rungs[0] > budget:  # ProbeBudget.stop_all: no room for a first rung
            break
        for i, rung in enumerate(rungs):
            reached[trial] = rung
            loss = curves[trial][rung]
            values = recorded[rung]
            median = _median(values) if values else None
            values.append(loss)
            if median is not None and loss > median:
                break  # ASHA stops it here
            following = rungs[i + 1] if i + 1 < len(rungs) else None
            if following is not None and sum(reached.values()) + following - rung > budget:
                break  # ProbeBudget: training on would cross the budget
    return reached


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = (len(ordered) - 1) / 2
    low, high = ordered[math.floor(mid)], ordered[math.ceil(mid)]
    return (low + high) / 2  # numpy's nanpercentile(50), linear interpolation


def synchronous(
    order: list[str], curves: dict[str, Curve], rungs: list[int], keep: list[int] | None = None
) -> dict[str, int]:
    """Successive halving: all trials to the first rung, then the better half (rounded up) on at
    each rung; or, with `keep`, the best `keep[i]` on after rung i."""
    alive = list(order)
    reached: dict[str, int] = {}
    for i, rung in enumerate(rungs):
        for trial in alive:
            reached[trial] = rung
        if i + 1 < len(rungs):
            kept = keep[i] if keep is not None else math.ceil(len(alive) / 2)
            alive = sorted(alive, key=lambda t: curves[t][rung])[:kept]
    return reached


def two_stage_plans(
    order: list[str], curves: dict[str, Curve], rungs: list[int], budget: float
) -> list[dict[str, Any]]:
    """Every plan "all trials to rung r, the best k on to the end" that the budget pays for."""
    plans = []
    for first in rungs[:-1]:
        for k in range(1, len(order)):
            reached = synchronous(order, curves, [first, rungs[-1]], [k])
            tokens = sum(reached.values())
            if tokens <= budget:
                plans.append(
                    {"first": first, "keep": k, "tokens": tokens, "pick": pick(reached, curves, rungs[-1])}
                )
    return plans


def pick(reached: dict[str, int], curves: dict[str, Curve], end: int) -> str | None:
    """The best probe that ran to its end (the search's winner rule)."""
    done = [t for t, r in reached.items() if r == end]
    return min(done, key=lambda t: curves[t][end]) if done else None


def read_curves(run: Path) -> tuple[list[str], dict[str, Curve]]:
    """Architectures in the order their probes started, and their rung losses (from Tune's results)."""
    curves: dict[str, Curve] = {}
    for path in sorted((run / "tune").glob("*/result.json")):
        for line in path.read_text().splitlines():
            report = ProbeReport.of(json.loads(line))
            if report.probe_loss is None or report.probe_tokens is None or report.from_record:
                continue
            curves.setdefault(report.architecture, {})[int(report.probe_tokens)] = report.probe_loss
    order: list[str] = []
    for start in ProbeStart.read_all(run / "probe_starts.jsonl"):
        arch = start.architecture  # the label `Architecture.short` gives
        if arch in curves and arch not in order:
            order.append(arch)
    return order, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="70M")
    parser.add_argument("--retrain-tokens", default="128k")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="results/bench/halving")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    started = time.perf_counter()
    rows: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        # The search as bench/search_quality.py runs it (one winner), so the probe schedule, the
        # candidates and their order are that search's; then every probe runs to its end.
        request = SearchRequest(
            budget=args.budget,
            trials=args.trials,
            top_k=1,
            eval="none",
            retrain_tokens=args.retrain_tokens,
            seed=seed,
            max_not_kept=1.0,  # as bench/search_quality.py: one winner, no cap
            out=str(out),
            name=f"seed-{seed}",
        )
        spec = resolve(request)
        default = spec.settings
        full_tokens = default.tokens.probe_tokens
        # The probes keep that search's schedule (its length, rungs and constant learning rate, as
        # winners continue from them), which a request without a winner would not give: the
        # resolved settings change here, after the probes were sized.
        plan = dataclasses.replace(
            default.plan,
            scheduler=Scheduler.NONE,
            top_k=0,
            overhead=max(args.trials * full_tokens / default.retrain.tokens, default.plan.overhead),
        )
        settings = dataclasses.replace(default, plan=plan)
        run = out / f"seed-{seed}"
        if not (run / "summary.json").exists():
            run_search(RunSpec(settings, spec.space, spec.capacity), overwrite=True)
        order, curves = read_curves(run)
        rungs = sorted(next(iter(curves.values())))
        end = rungs[-1]
        asha_reached = asha(order, curves, rungs, default.tokens.probe_budget)
        sync_reached = synchronous(order, curves, rungs)
        full_reached = {t: end for t in order}
        rows[seed] = {
            "order": order,
            "curves": {t: {str(k): v for k, v in c.items()} for t, c in curves.items()},
            "rungs": rungs,
            "budget": default.tokens.probe_budget,
            "rules": {
                name: {
                    "reached": reached,
                    "pick": pick(reached, curves, end),
                    "tokens": sum(reached.values()),
                }
                for name, reached in (("asha", asha_reached), ("sync", sync_reached), ("full", full_reached))
            },
        }
        print(f"\nseed {seed}: rungs at {', '.join(format_count(r) for r in rungs)} probe tokens")
        header = " | ".join(format_count(r) for r in rungs)
        print(f"| candidate (start order) | {header} | asha | sync |")
        print("|---|" + "---:|" * len(rungs) + "---|---|")
        for t in order:
            cells = " | ".join(f"{curves[t][r]:.3f}" for r in rungs)
            fates = [
                _fate(reached.get(t), end, rows[seed]["rules"][name]["pick"] == t)
                for name, reached in (("asha", asha_reached), ("sync", sync_reached))
            ]
            print(f"| {t} | {cells} | {fates[0]} | {fates[1]} |")
        for name in ("asha", "sync", "full"):
            rule = rows[seed]["rules"][name]
            print(f"{name}: picks {rule['pick']}, {format_count(rule['tokens'])} probe tokens")
        rows[seed]["two_stage"] = two_stage_plans(order, curves, rungs, default.tokens.probe_budget)
        for plan_row in rows[seed]["two_stage"]:
            print(
                f"all to {format_count(plan_row['first'])}, best {plan_row['keep']} to the end: "
                f"picks {plan_row['pick']}, {format_count(plan_row['tokens'])} probe tokens"
            )
    result = {"args": vars(args), "rows": {str(s): r for s, r in rows.items()}}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "halving.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'halving.json'}")


def _fate(reached: int | None, end: int, picked: bool) -> str:
    if reached is None:
        return "not started"
    if picked:
        return "**pick**"
    return "to the end" if reached == end else f"stopped at {format_count(reached)}"


if __name__ == "__main__":
    main()

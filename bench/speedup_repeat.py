"""Do a run's speed-ups repeat? Compare the latency stages of two runs of the same command.

    python search.py --budget 50M:110M --trials 16 --name range-a
    python search.py --budget 50M:110M --trials 16 --name range-b
    python bench/speedup_repeat.py results/range-a results/range-b [--out FILE]

For every architecture both runs timed (`latency.json`, each candidate timed in turn with the
teacher on one worker), prints both speed-ups with their per-round range and their ratio, then the
largest deviation from 1 and how many lie within ±15 %. The same for the trials' own latencies
(`trials.jsonl`: each candidate timed alone in its trial, against which no teacher was timed), to
show what interleaving buys. Writes JSON; the CPU model and whether bf16 was native are in both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron.atomic import write_json
from minitron.runtime import cpu_description

TOLERANCE = 0.15


def _latency(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "latency.json").read_text())["candidates"])


def _trial_latency(run: Path) -> dict[str, float]:
    out = {}
    for line in (run / "trials.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("latency_ms"):
            arch = record["architecture"]
            label = (
                f"L{arch['num_hidden_layers']}-h{arch['hidden_size']}-m{arch['intermediate_size']}"
                f"-q{arch['num_attention_heads']}kv{arch['num_key_value_heads']}-d{arch['head_dim']}"
            )
            out[label] = float(record["latency_ms"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--out", default="results/bench/speedup_repeat.json")
    args = parser.parse_args()
    a, b = _latency(args.first), _latency(args.second)
    shared = sorted(k for k in set(a) & set(b) if "speedup" in a[k] and "speedup" in b[k])
    rows = []
    print(f"{'architecture':<28} {'speed-up A (range)':>22} {'speed-up B (range)':>22} {'B/A':>6}")
    for label in shared:
        x, y = a[label], b[label]
        ratio = y["speedup"] / x["speedup"]
        rows.append({"architecture": label, "a": x, "b": y, "ratio": ratio})
        print(
            f"{label:<28} {x['speedup']:>6.3f} ({x['speedup_low']:.2f}-{x['speedup_high']:.2f}) "
            f"{y['speedup']:>8.3f} ({y['speedup_low']:.2f}-{y['speedup_high']:.2f}) {ratio:>6.3f}"
        )
    ratios = [r["ratio"] for r in rows]
    worst = max((abs(r - 1) for r in ratios), default=float("nan"))
    within = sum(abs(r - 1) <= TOLERANCE for r in ratios)
    median = statistics.median(ratios)
    print(f"\n{len(rows)} architectures in both runs; B/A median {median:.3f}, worst {worst:.1%}")
    print(f"within ±{TOLERANCE:.0%}: {within} of {len(rows)}")
    ta, tb = _trial_latency(args.first), _trial_latency(args.second)
    alone = [tb[k] / ta[k] for k in sorted(set(ta) & set(tb))]
    if alone:
        print(
            f"the trials' own latencies (timed alone): B/A median {statistics.median(alone):.3f}, "
            f"range {min(alone):.3f}-{max(alone):.3f}"
        )
    machine = cpu_description()
    print(f"machine: {machine}")
    write_json(
        Path(args.out),
        {
            "runs": [str(args.first), str(args.second)],
            "rows": rows,
            "worst_deviation": worst,
            "within_tolerance": within,
            "tolerance": TOLERANCE,
            "trial_latency_ratios": alone,
            "machine": machine,
        },
    )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())

"""Do speed-ups repeat? Compare the latency stages of two runs of the same command, or time one
small model's speed-up again and again in this process.

    python search.py --budget 50M:110M --trials 16 --name range-a
    python search.py --budget 50M:110M --trials 16 --name range-b
    python bench/speedup_repeat.py results/range-a results/range-b [--out FILE]
    python bench/speedup_repeat.py --models [--pairs 12] [--out FILE]

With `--models` (what `tests/test_latency.py` asserted until timings left the test suite): a
4-layer model and a 2-layer one, 256 wide, timed in turn 7 rounds at a time (`compare_latency`, as
the latency stage does), `--pairs` times twice in a row, and the 4-layer model against its own
copy; prints how often two speed-ups timed back to back agree within ±15 %, and how far a model
against its copy strays from 1.

For every architecture both runs timed (`latency.json`, each candidate timed in turn with the
teacher on one worker), prints both speed-ups with their per-round range and their ratio, then the
largest deviation from 1 and how many lie within ±15 %. The same for the trials' own latencies
(`trials.jsonl`: each candidate timed alone in its trial, against which no teacher was timed), to
show what interleaving buys. Writes JSON; the CPU model and whether bf16 was native are in both.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron import codec
from minitron.atomic import write_json
from minitron.runtime import cpu_description
from search.outputs.records import CandidateLatency, LatencyMeasurements, TrialLog

TOLERANCE = 0.15


def _latency(run: Path) -> dict[str, CandidateLatency]:
    return dict(LatencyMeasurements.load(run / "latency.json").candidates)


def _trial_latency(run: Path) -> dict[str, float]:
    out = {}
    for record in TrialLog(run / "trials.jsonl").records.values():
        if record.latency_ms:
            out[record.architecture.short()] = float(record.latency_ms)
    return out


def _small(layers: int) -> Any:
    """A model big enough that one forward pass takes milliseconds, not microseconds of Python."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97, hidden_size=256, intermediate_size=512, num_hidden_layers=layers,
        num_attention_heads=8, num_key_value_heads=4, head_dim=32, max_position_embeddings=256,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def models(pairs: int, out: Path) -> int:
    """Speed-ups of one pair of models timed twice in a row, `pairs` times; a model against its copy."""
    import copy

    import torch

    from minitron.model.speed import compare_latency

    torch.set_num_threads(2)
    teacher, student = _small(4), _small(2)
    rows = []
    print(f"{'pair':>4} {'first (range)':>20} {'second (range)':>20} {'2nd/1st':>8} {'copy':>6}")
    for pair in range(pairs):
        first, second = (compare_latency(teacher, student, seq_len=128, rounds=7) for _ in range(2))
        own = compare_latency(teacher, copy.deepcopy(teacher), seq_len=128, rounds=7)
        ratio = second.speedup / first.speedup
        inside = second.speedup_low <= first.speedup <= second.speedup_high
        rows.append(
            {"first": dataclasses.asdict(first), "second": dataclasses.asdict(second), "ratio": ratio,
             "copy": own.speedup, "first_in_second_range": inside}
        )  # fmt: skip
        print(
            f"{pair:>4} {first.speedup:>6.3f} ({first.speedup_low:.2f}-{first.speedup_high:.2f}) "
            f"{second.speedup:>8.3f} ({second.speedup_low:.2f}-{second.speedup_high:.2f}) {ratio:>8.3f} "
            f"{own.speedup:>6.3f}"
        )
    ratios, copies = [r["ratio"] for r in rows], [r["copy"] for r in rows]
    within = sum(abs(r - 1) <= TOLERANCE for r in ratios)
    in_range = sum(r["first_in_second_range"] for r in rows)
    copies_within = sum(0.8 < c < 1.25 for c in copies)
    worst = max(abs(r - 1) for r in ratios)
    print(f"\nback to back: within ±{TOLERANCE:.0%} in {within} of {pairs}, worst {worst:.1%}")
    print(f"the first inside the second's 7-round range: {in_range} of {pairs}")
    spread = f"{min(copies):.3f}-{max(copies):.3f}"
    print(f"against its copy: {spread}, within 0.8-1.25 in {copies_within} of {pairs}")
    machine = cpu_description()
    print(f"machine: {machine}")
    write_json(
        out,
        {"pairs": rows, "within_tolerance": within, "tolerance": TOLERANCE, "first_in_second_range": in_range,
         "copies_within_0.8_1.25": copies_within, "machine": machine},
    )  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("first", type=Path, nargs="?", help="a run directory")
    parser.add_argument("second", type=Path, nargs="?", help="a run directory of the same command")
    parser.add_argument("--models", action="store_true", help="time small models in this process instead")
    parser.add_argument("--pairs", type=int, default=12, help="with --models: measurements of two")
    parser.add_argument("--out", default="results/bench/speedup_repeat.json")
    args = parser.parse_args()
    if args.models:
        return models(args.pairs, Path(args.out))
    if args.first is None or args.second is None:
        parser.error("give two run directories, or --models")
    a, b = _latency(args.first), _latency(args.second)
    shared = sorted(k for k in set(a) & set(b) if a[k].speedup is not None and b[k].speedup is not None)
    rows = []
    print(f"{'architecture':<28} {'speed-up A (range)':>22} {'speed-up B (range)':>22} {'B/A':>6}")
    for label in shared:
        x, y = a[label], b[label]
        assert x.speedup is not None and y.speedup is not None  # as `shared` chose them
        ratio = y.speedup / x.speedup
        rows.append({"architecture": label, "a": codec.encode(x), "b": codec.encode(y), "ratio": ratio})
        print(
            f"{label:<28} {x.speedup:>6.3f} ({x.speedup_low:.2f}-{x.speedup_high:.2f}) "
            f"{y.speedup:>8.3f} ({y.speedup_low:.2f}-{y.speedup_high:.2f}) {ratio:>6.3f}"
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

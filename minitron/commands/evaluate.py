"""`python -m minitron evaluate PATH --tasks ... --limit N [--num-fewshot K] [--output FILE.json]`.

Scores a checkpoint directory or a teacher name on lm-eval benchmarks, offline (see
`minitron.eval.benchmarks`), prints a table and writes lm-eval's results JSON (the `results`
mapping keyed by task, metric names as lm-eval writes them, e.g. `acc,none`), plus our settings
under `minitron`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from minitron.commands.common import config_from_args, run_command
from minitron.errors import MinitronError
from minitron.eval.benchmarks import ALL_TASKS, EvalConfig, check_tasks, evaluate_path
from minitron.eval.tables import format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minitron evaluate",
        description="Score a checkpoint or teacher on lm-eval benchmarks, offline.",
    )
    parser.add_argument("model", help="checkpoint directory, .gguf file or teacher name (smollm2-135m)")
    parser.add_argument(
        "--tasks", default=",".join(ALL_TASKS), help=f"comma-separated (default: {','.join(ALL_TASKS)})"
    )
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: the full split)")
    parser.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (default: 0)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when present)")
    parser.add_argument("--output", type=Path, default=None, help="write lm-eval's results JSON here")
    parser.add_argument("--allow-pickle", action="store_true", help="load pickle weights (weights_only)")
    parser.add_argument("--trust-remote-code", action="store_true", help="run code shipped with the model")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), debug=args.debug)


def _run(args: Any) -> None:
    if args.limit is not None and args.limit <= 0:
        raise MinitronError(f"--limit must be a positive number of items, got {args.limit}")
    if args.num_fewshot is not None and args.num_fewshot < 0:
        raise MinitronError(f"--num-fewshot must be 0 or more, got {args.num_fewshot}")
    if args.batch_size <= 0:
        raise MinitronError(f"--batch-size must be positive, got {args.batch_size}")
    tasks = check_tasks([t.strip() for t in args.tasks.split(",") if t.strip()])
    cfg = config_from_args(EvalConfig, args, tasks=tasks)
    scores = evaluate_path(
        args.model,
        cfg,
        device=args.device,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
    )
    print(format_table({args.model: scores}, tasks))
    print(f"{scores.config['seconds']:.0f} s, {scores.config['dtype']} on {scores.config['device']}")
    if args.output:
        scores.save(args.output)
        print(f"results: {args.output}")

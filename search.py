"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M                                            # the whole search
    python search.py --budget 70M --dry-run                                  # list the candidates
    python search.py --space spaces/llama-3.1-8b.yaml --budget 4.5B --dry-run --json
    python search.py --resume results/<name>                                 # continue a killed run

This file only parses arguments and wires the stages together; the work lives in `minitron/`
(library) and `search/` (spaces, Ray Tune + Optuna, ranking, report).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from minitron.architecture import DEPTH_METHODS
from minitron.budget import parse_budget
from minitron.cli import run_command
from minitron.corpus import DEFAULT_CORPUS
from minitron.errors import MinitronError
from minitron.evaluate import ALL_TASKS, check_tasks
from search.settings import DEFAULT_EVAL_LIMIT, DEFAULT_EVAL_TASKS, SAMPLERS, SCHEDULERS, SearchSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="search.py",
        description="Search pruned architectures of a teacher LLM that fit a parameter budget "
        "(Minitron: activation-guided structured pruning + knowledge distillation), probe them with "
        "Ray Tune + Optuna, retrain the winners and write a report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    what = parser.add_argument_group("what to search")
    what.add_argument(
        "--budget",
        help="target parameter count, e.g. 70M, 4.5B, 900k or 4500000000 (required unless --resume)",
    )
    what.add_argument(
        "--space", default="smollm2-135m", help="search space: a YAML file, or the name of one in spaces/"
    )
    what.add_argument(
        "--teacher",
        default=None,
        help="teacher: an embedded name (smollm2-135m), a checkpoint directory, a .gguf "
        "file or a hub id (default: the space's teacher)",
    )
    what.add_argument(
        "--data",
        default=DEFAULT_CORPUS,
        help="corpus for calibration, probes, validation and retraining: wiki-en, a "
        ".txt/.jsonl file or a directory of them",
    )
    how = parser.add_argument_group("search")
    how.add_argument("--trials", type=int, default=8, help="candidates to probe (Ray Tune trials)")
    how.add_argument("--probe-tokens", default="16k", help="training tokens per probe")
    how.add_argument(
        "--probe-top-k", type=int, default=64, help="teacher logits kept per position for probes"
    )
    how.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler")
    how.add_argument(
        "--scheduler", choices=SCHEDULERS, default="none", help="trial scheduler: asha stops bad probes early"
    )
    how.add_argument(
        "--top-k", type=int, default=None, help="winners to retrain (default: the space's top_k)"
    )
    how.add_argument("--retrain-tokens", default="32k", help="training tokens per winner")
    how.add_argument(
        "--depth",
        choices=DEPTH_METHODS,
        default="block",
        help="which layers a shallower candidate drops: the contiguous block costing the least loss "
        "(block) or the least Winogrande accuracy (block_accuracy, slower), per-layer loss, "
        "Block Importance, or the last layers",
    )
    how.add_argument(
        "--depth-accuracy-items",
        type=int,
        default=200,
        help="Winogrande items scored per block removal with --depth block_accuracy",
    )
    how.add_argument("--seed", type=int, default=0, help="seed of sampling, probe batches and training")
    how.add_argument(
        "--calibration-samples",
        type=int,
        default=128,
        help="calibration sequences (of 256 tokens) for importance",
    )
    how.add_argument(
        "--eval-sequences",
        type=int,
        default=16,
        help="validation sequences (of 256 tokens) for zero-shot, probe and final losses",
    )
    bench = parser.add_argument_group("benchmarks (lm-eval, offline)")
    bench.add_argument(
        "--eval",
        default=",".join(DEFAULT_EVAL_TASKS),
        help=f"tasks scored for the teacher and every winner: comma-separated from {', '.join(ALL_TASKS)}; "
        "`all` for every one, `none` to skip",
    )
    bench.add_argument(
        "--eval-limit",
        default=str(DEFAULT_EVAL_LIMIT),
        help="items per task (per subject for mmlu); `full` scores the whole sets",
    )
    bench.add_argument(
        "--eval-fewshot", type=int, default=None, help="few-shot examples per item (default: 0)"
    )
    safety = parser.add_argument_group("safety (both off by default)")
    safety.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load a teacher whose weights are pickle files (.bin/.pt), with torch.load(weights_only=True)",
    )
    safety.add_argument(
        "--trust-remote-code", action="store_true", help="run Python code shipped with the teacher checkpoint"
    )
    res = parser.add_argument_group("resources")
    res.add_argument(
        "--cpus-per-trial",
        type=float,
        default=None,
        help="CPUs per trial (default: all CPUs here, or CPUs per GPU when GPUs are present)",
    )
    res.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPUs per trial (default: 1 when a GPU is present, else 0)",
    )
    res.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="trials at once (default: as many as the local resources fit)",
    )
    res.add_argument(
        "--address",
        default=None,
        help="attach to a running Ray cluster (`auto` or host:port) instead of starting one",
    )
    res.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        help="interface the local Ray dashboard binds to (anything but localhost is warned about)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="results", help="parent folder of run directories")
    out.add_argument("--name", default=None, help="run directory name (default: date, time and budget)")
    out.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR with its saved settings",
    )
    out.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory of that name"
    )
    out.add_argument(
        "--dry-run",
        action="store_true",
        help="list the feasible candidates (architecture, parameters, fraction of the "
        "teacher) without loading weights",
    )
    out.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: print the candidates as a JSON list of objects with "
        "Hugging Face field names plus params",
    )
    out.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def dry_run(args: argparse.Namespace) -> int:
    from minitron.teacher import local_config
    from search.candidates import feasible
    from search.dryrun import check_teacher_matches, render_json, render_table
    from search.space import load_space

    budget = parse_budget(args.budget)
    check_options(args)
    space = load_space(args.space)
    teacher = args.teacher or space.teacher_name
    config = local_config(teacher)
    if config is not None:
        check_teacher_matches(space, teacher, config)
    candidates = feasible(space, budget)
    print(render_json(candidates) if args.json else render_table(space, teacher, budget, candidates))
    return 0


def check_options(args: argparse.Namespace) -> None:
    """Numeric options that must be positive, and the benchmark options."""
    for name in (
        "trials",
        "probe_top_k",
        "seed",
        "calibration_samples",
        "eval_sequences",
        "depth_accuracy_items",
    ):
        if getattr(args, name) < (0 if name == "seed" else 1):
            raise MinitronError(f"--{name.replace('_', '-')} must be positive")
    eval_options(args)


def eval_options(args: argparse.Namespace) -> tuple[tuple[str, ...], int | None]:
    """(tasks, limit) from --eval and --eval-limit."""
    spec = args.eval.strip().lower()
    if spec == "none":
        tasks: tuple[str, ...] = ()
    elif spec == "all":
        tasks = ALL_TASKS
    else:
        tasks = check_tasks([t.strip() for t in args.eval.split(",") if t.strip()])
    limit_text = str(args.eval_limit).strip().lower()
    if limit_text in ("full", "none"):
        return tasks, None
    if not limit_text.isdigit() or int(limit_text) <= 0:
        raise MinitronError(
            f"--eval-limit must be a positive number of items or `full`, got {args.eval_limit!r}"
        )
    if args.eval_fewshot is not None and args.eval_fewshot < 0:
        raise MinitronError(f"--eval-fewshot must be 0 or more, got {args.eval_fewshot}")
    return tasks, int(limit_text)


def resolve_settings(args: argparse.Namespace) -> SearchSettings:
    """Settings of a new run from the command line (defaults sized to this machine)."""
    import os

    import torch

    from minitron.teacher import check_teacher_source
    from search.candidates import feasible
    from search.runner import default_name
    from search.space import load_space

    budget = parse_budget(args.budget)
    space = load_space(args.space)
    feasible(space, budget)  # fail fast on a budget the space cannot reach
    eval_tasks, eval_limit = eval_options(args)
    check_options(args)
    check_teacher_source(args.teacher or space.teacher_name, allow_pickle=args.allow_pickle)
    gpus = torch.cuda.device_count()
    cpus = os.cpu_count() or 1
    gpus_per_trial = args.gpus_per_trial if args.gpus_per_trial is not None else (1.0 if gpus else 0.0)
    cpus_per_trial = args.cpus_per_trial or float(max(cpus // gpus, 1) if gpus else cpus)
    fits = int(gpus // gpus_per_trial) if gpus_per_trial else int(cpus // max(cpus_per_trial, 1))
    return SearchSettings(
        budget=budget,
        space=str(space.path),
        teacher=args.teacher or space.teacher_name,
        data=args.data,
        trials=args.trials,
        probe_tokens=parse_budget(args.probe_tokens),
        probe_top_k=args.probe_top_k,
        top_k=args.top_k if args.top_k is not None else space.top_k,
        retrain_tokens=parse_budget(args.retrain_tokens),
        calibration_samples=args.calibration_samples,
        eval_sequences=args.eval_sequences,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        concurrency=args.concurrency or max(fits, 1),
        sampler=args.sampler,
        scheduler=args.scheduler,
        seed=args.seed,
        name=args.name or default_name(budget),
        out=args.out,
        address=args.address,
        dashboard_host=args.dashboard_host,
        depth=args.depth,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        depth_accuracy_items=args.depth_accuracy_items,
        eval_tasks=eval_tasks,
        eval_limit=eval_limit,
        eval_fewshot=args.eval_fewshot,
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.json and not args.dry_run:
        raise MinitronError("--json goes with --dry-run")
    if args.resume:
        from search.rundir import RunDir
        from search.runner import run_search

        root = Path(args.resume).expanduser()
        run_dir = RunDir(root)
        if not run_dir.is_run():
            raise MinitronError(f"--resume {root}: not a search run directory (no config.json)")
        saved = SearchSettings.from_json(run_dir.load_config()["settings"])
        settings = dataclasses.replace(saved, out=str(root.parent), name=root.name)
        print(f"[search] resuming {root} with its saved settings", flush=True)
        run_search(settings, resume=True)
        return 0
    if not args.budget:
        raise MinitronError("--budget is required (e.g. --budget 70M), unless --resume RUN_DIR")
    if args.dry_run:
        return dry_run(args)
    from search.runner import run_search

    run_search(resolve_settings(args), overwrite=args.overwrite)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())

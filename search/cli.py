"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M                                            # the whole search
    python search.py --budget 70M --dry-run                                  # list the candidates
    python search.py --space spaces/llama-3.1-8b.yaml --budget 4.5B --dry-run --json
    python search.py --resume results/<name>                                 # continue a killed run

`search.py` and the `minitron-search` console script both run `main` here. This module only parses
arguments, checks them and wires the stages together; the work lives in `minitron/` (library) and
the rest of `search/` (spaces, Ray Tune + Optuna, ranking, report).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from minitron.runtime import quiet_progress_bars_when_logged

quiet_progress_bars_when_logged()  # before any library that draws progress bars is imported

from minitron.budget import parse_budget_range, parse_tokens  # noqa: E402
from minitron.commands.common import run_command  # noqa: E402
from minitron.errors import MinitronError  # noqa: E402
from minitron.eval.benchmarks import ALL_TASKS, check_tasks  # noqa: E402
from search.options import build_parser  # noqa: E402
from search.settings import (  # noqa: E402
    RANGE_RUNGS,
    RANGE_WINNERS,
    SETTINGS_FORMAT,
    Resources,
    SearchPlan,
    SearchSettings,
)

#: What `--resume` may change: where the run continues, not what it computes.
RESUMABLE = (
    "cpus_per_trial", "gpus_per_trial", "concurrency", "retrain_workers", "address", "dashboard_host", "debug"
)  # fmt: skip


def _flags(names: list[str] | tuple[str, ...]) -> str:
    """Option destinations as the command line spells them: `top_k` -> `--top-k`."""
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def pick_space(args: argparse.Namespace, low: int, budget: int) -> tuple[Any, list[Any]]:
    """The space of --space, or the shipped one --budget chooses (said on one line: on stderr when
    stdout is for --json); with its feasible candidates at the budget (or over the range `low`..`budget`)."""
    from search.candidates import feasible, space_for_budget
    from search.space import load_space

    lower = low if low != budget else None
    if args.space:
        space = load_space(args.space)
        return space, feasible(space, budget, lower)
    choice = space_for_budget(budget, lower)
    print(choice.line(low, budget), file=sys.stderr if args.json else sys.stdout, flush=True)
    return choice.space, choice.candidates


def dry_run(args: argparse.Namespace) -> int:
    from minitron.model.teacher import local_config
    from search.dryrun import check_teacher_matches, render_json, render_table, strata_line

    low, budget = parse_budget_range(args.budget)
    check_options(args, low != budget)
    space, candidates = pick_space(args, low, budget)
    teacher = args.teacher or space.teacher_name
    config = local_config(teacher)
    if config is not None:
        check_teacher_matches(space, teacher, config)
    from search.memory_plan import fits, plan, summary_line

    probes = probe_plan_line(args, space.top_k, low != budget)
    # with --trial-memory the plan is for other machines: their resources are not checked here
    memory_settings, capacity = memory_inputs(args, resolve_resources(args, check=args.trial_memory is None))
    plans = [plan(space, c, memory_settings) for c in candidates]
    memory = [(probe, retrain, fits(probe, capacity)) for probe, retrain in plans]
    if args.json:
        print(render_json(candidates, memory))
    else:
        print(render_table(space, teacher, (low, budget), candidates, memory))
        if low != budget:
            print(strata_line(space, (low, budget), candidates))
        print(probes)
        print(summary_line(plans, memory_settings, capacity))
    return 0


def memory_inputs(args: argparse.Namespace, resources: Resources) -> tuple[Any, Any]:
    """What the memory plan of this command assumes, and the memory a trial with `resources` gets."""
    import torch

    from minitron.data.tokens import SEQ_LEN
    from minitron.distill.probe import ProbeConfig
    from minitron.distill.retrain import RetrainConfig
    from minitron.model.memory import GIB
    from minitron.runtime import teacher_dtype, use_bf16
    from search.memory_plan import Capacity, PlanSettings, trial_capacity

    # the kind of device a trial gets, whether or not this machine has one (plans are for any machine)
    device = torch.device("cuda" if resources.gpus_per_trial > 0 else "cpu")
    settings = PlanSettings(
        probe_batch=ProbeConfig.batch_size,
        retrain_batch=RetrainConfig.batch_size,
        seq_len=SEQ_LEN,
        bf16=use_bf16(device, None),
        online_teacher=args.retrain_teacher == "online",
        teacher_bytes=teacher_dtype(device, None).itemsize,
        retrain_workers=resources.retrain_workers,
    )
    if args.trial_memory is not None:
        return settings, Capacity(int(args.trial_memory * GIB), "--trial-memory")
    return settings, trial_capacity(resources)


def probe_plan_line(args: argparse.Namespace, space_top_k: int, is_range: bool = False) -> str:
    """What the probes of this command would be and cost (refusing a plan over the overhead)."""
    from minitron.budget import format_count
    from minitron.data.tokens import SEQ_LEN
    from minitron.distill.probe import ProbeConfig
    from search.probe_plan import full_probe_steps, probe_budget

    plan = plan_from_args(args, space_top_k, is_range)
    retrain = parse_tokens(args.retrain_tokens, "--retrain-tokens")
    per_step = SEQ_LEN * ProbeConfig.batch_size
    steps = full_probe_steps(plan, retrain, per_step)
    budget = probe_budget(plan.overhead, retrain, plan.top_k)
    return (
        f"probes: {plan.trials} trials of up to {format_count(steps * per_step)} tokens ({plan.scheduler}, "
        f"{plan.rungs} rungs); they may spend {format_count(budget)} tokens, --overhead {plan.overhead:g} "
        f"of {format_count(retrain * max(plan.top_k, 1))} retraining tokens"
    )


def plan_from_args(args: argparse.Namespace, space_top_k: int, is_range: bool = False) -> SearchPlan:
    """The plan the options ask for; what they leave out takes the defaults of one budget or of a range."""
    default = SearchPlan()
    return SearchPlan(
        trials=args.trials,
        sampler=args.sampler,
        scheduler=args.scheduler or ("none" if is_range else default.scheduler),
        overhead=args.overhead,
        probe_tokens=parse_tokens(args.probe_tokens, "--probe-tokens") if args.probe_tokens else 0,
        rungs=args.rungs if args.rungs is not None else RANGE_RUNGS if is_range else default.rungs,
        probe_top_k=args.probe_top_k,
        retrain_teacher=args.retrain_teacher,
        top_k=args.top_k if args.top_k is not None else RANGE_WINNERS if is_range else space_top_k,
        objective=args.objective,
        depth=args.depth,
        depth_accuracy_items=args.depth_accuracy_items,
        validation_sequences=args.eval_sequences,
    )


def check_options(args: argparse.Namespace, is_range: bool = False) -> None:
    """Numeric options that must be positive, token counts, and the benchmark options (a dry run
    checks them too, so that the command it previews would start); `is_range`: --budget is a range."""
    if is_range and args.scheduler == "asha":
        raise MinitronError(
            "--scheduler asha compares probe losses of candidates of any size at its rungs, so with a "
            "budget range it would stop the small ones first; use --scheduler none (the range's default)"
        )
    if not is_range and args.objective != "params":
        raise MinitronError(
            f"--objective {args.objective} goes with a budget range (e.g. --budget 50M:110M); one budget "
            "ranks its candidates by probe loss alone"
        )
    if args.probe_tokens is not None:
        parse_tokens(args.probe_tokens, "--probe-tokens")
    parse_tokens(args.retrain_tokens, "--retrain-tokens")
    if not args.overhead > 0:
        raise MinitronError(
            f"--overhead must be a positive fraction of the retraining tokens, got {args.overhead:g}"
        )
    if args.trial_memory is not None and not args.trial_memory > 0:
        raise MinitronError(f"--trial-memory must be a positive number of GiB, got {args.trial_memory:g}")
    if args.rungs is not None and not 1 <= args.rungs <= 8:
        raise MinitronError(f"--rungs must be between 1 and 8, got {args.rungs}")
    for name in ("trials", "probe_top_k", "calibration_samples", "eval_sequences", "depth_accuracy_items"):
        if getattr(args, name) < 1:
            raise MinitronError(f"{_flags([name])} must be positive")
    for name in ("seed", "top_k"):
        if (getattr(args, name) or 0) < 0:
            raise MinitronError(f"{_flags([name])} must be 0 or more")
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
    if args.eval_fewshot is not None and args.eval_fewshot < 0:
        raise MinitronError(f"--eval-fewshot must be 0 or more, got {args.eval_fewshot}")
    limit_text = str(args.eval_limit).strip().lower()
    if limit_text in ("full", "none"):
        return tasks, None
    if not limit_text.isdigit() or int(limit_text) <= 0:
        raise MinitronError(
            f"--eval-limit must be a positive number of items or `full`, got {args.eval_limit!r}"
        )
    return tasks, int(limit_text)


def resolve_resources(
    args: argparse.Namespace, saved: Resources | None = None, check: bool = True
) -> Resources:
    """Trial resources from the command line (over `saved` ones on --resume), checked against this
    machine before anything is written (a cluster's nodes are checked once attached: ray_runtime)."""
    from search.ray_runtime import check_fits, local_resources

    cpus, gpus = local_resources()

    def pick(name: str, default: Any) -> Any:
        given = getattr(args, name)
        return given if given is not None else getattr(saved, name) if saved else default

    gpus_per_trial = pick("gpus_per_trial", 1.0 if gpus else 0.0)
    cpus_per_trial = pick("cpus_per_trial", float(max(cpus // gpus, 1) if gpus else cpus))
    fits = int(gpus // gpus_per_trial) if gpus_per_trial > 0 else int(cpus // max(cpus_per_trial, 1))
    resources = Resources(
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        concurrency=pick("concurrency", max(fits, 1)),
        address=pick("address", None),
        dashboard_host=pick("dashboard_host", Resources().dashboard_host),
        retrain_workers=pick("retrain_workers", 1),
    )
    if resources.address or not check:  # only the values can be checked before attaching
        check_fits(resources, [(float("inf"), float("inf"))], "the cluster")
    else:
        check_fits(resources, [(float(cpus), float(gpus))], "this machine")
    return resources


def resolve_settings(args: argparse.Namespace) -> SearchSettings:
    """Settings of a new run from the command line (defaults sized to this machine)."""
    from minitron.model.teacher import check_teacher_source
    from search.checks import check_name, check_out, default_name
    from search.memory_plan import check_some_fit

    low, budget = parse_budget_range(args.budget)
    is_range = low != budget
    space, candidates = pick_space(args, low, budget)  # fails fast on a budget the space cannot reach
    eval_tasks, eval_limit = eval_options(args)
    check_options(args, is_range)
    name = check_name(args.name) if args.name is not None else default_name(low, budget)
    check_out(args.out)
    plan = plan_from_args(args, space.top_k, is_range)
    retrain_tokens = parse_tokens(args.retrain_tokens, "--retrain-tokens")
    resources = resolve_resources(args)
    check_some_fit(space, candidates, *memory_inputs(args, resources))
    check_teacher_source(args.teacher or space.teacher_name, allow_pickle=args.allow_pickle)
    settings = SearchSettings.create(
        budget=budget,
        space=str(space.path),
        teacher=args.teacher or space.teacher_name,
        plan=plan,
        resources=resources,
        retrain_tokens=retrain_tokens,
        calibration_samples=args.calibration_samples,
        eval_tasks=eval_tasks,
        eval_limit=eval_limit,
        eval_fewshot=args.eval_fewshot,
        seed=args.seed,
        data=args.data,
        budget_low=low if is_range else None,
        name=name,
        out=args.out,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
    )
    check_retrain_workers(settings)
    return settings


def check_retrain_workers(settings: SearchSettings) -> None:
    """Each Ray Train worker takes an equal share of every retraining batch."""
    workers, batch = settings.resources.retrain_workers, settings.retrain.batch_size
    if batch % workers:
        raise MinitronError(
            f"--retrain-workers {workers} cannot split the retraining batch of {batch} sequences evenly; "
            f"use a worker count that divides {batch}"
        )


def resume_settings(args: argparse.Namespace, given: set[str]) -> SearchSettings:
    """The saved settings of the run in --resume, with only the resources changed that were given.

    Every other option would change what the run computes, so it is refused rather than ignored."""
    from search.rundir import RunDir

    refused = sorted(given - set(RESUMABLE) - {"resume"})
    if refused:
        raise MinitronError(
            f"--resume continues a run with its saved settings; {_flags(refused)} cannot change them "
            f"(only {_flags(RESUMABLE)} may be given with --resume); start a new run to change them"
        )
    root = Path(args.resume).expanduser()
    run_dir = RunDir(root)
    if not run_dir.is_run():
        raise MinitronError(f"--resume {root}: not a search run directory (no config.json)")
    config = run_dir.load_config()
    if config.get("format") != SETTINGS_FORMAT:
        raise MinitronError(
            f"--resume {root}: the run was made by an earlier version of minitron-search (other data "
            "splits and probe schedule), which this version cannot continue exactly; start a new run"
        )
    saved = SearchSettings.from_json(config["settings"])
    settings = saved.with_resources(resolve_resources(args, saved.resources))
    check_retrain_workers(settings)
    return dataclasses.replace(settings, out=str(root.parent), name=root.name)


def run(args: argparse.Namespace, given: set[str]) -> int:
    if args.json and not args.dry_run:
        raise MinitronError("--json goes with --dry-run")
    from search.runner import run_search

    if args.resume:
        settings = resume_settings(args, given)
        changed = sorted(given & set(RESUMABLE) - {"debug"})
        note = f" (resources from {_flags(changed)})" if changed else ""
        print(f"[search] resuming {args.resume} with its saved settings{note}", flush=True)
        run_search(settings, resume=True)
        return 0
    if not args.budget:
        raise MinitronError("--budget is required (e.g. --budget 70M), unless --resume RUN_DIR")
    if args.dry_run:
        return dry_run(args)
    run_search(resolve_settings(args), overwrite=args.overwrite)
    return 0


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options actually written on the command line."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = given_options(build_parser(), argv)
    return run_command(lambda: run(args, given), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())

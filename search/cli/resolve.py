"""From a command line to the settings of a run: the plan, resources, benchmarks and the checks
of the options' values, all before anything is written."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from minitron.budget import parse_budget_range, parse_tokens
from minitron.data.generated import GenerationConfig
from minitron.data.mix import check_parts
from minitron.errors import MinitronError
from minitron.eval.benchmarks import ALL_TASKS, check_tasks
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from search.plan.settings import RANGE_RUNGS, RANGE_WINNERS, Resources, SearchPlan, SearchSettings


def flags(names: list[str] | tuple[str, ...]) -> str:
    """Option destinations as the command line spells them: `top_k` -> `--top-k`."""
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def pick_space(args: argparse.Namespace, low: int, budget: int) -> tuple[Any, list[Any]]:
    """The space of --space, or the shipped one --budget chooses (said on one line: on stderr when
    stdout is for --json); with its feasible candidates at the budget (or over the range `low`..`budget`)."""
    from search.plan.candidates import feasible, space_for_budget
    from search.plan.space import load_space, with_layer_blocks

    lower = low if low != budget else None
    if args.space:
        space = load_space(args.space)
    else:
        choice = space_for_budget(budget, lower)
        print(choice.line(low, budget), file=sys.stderr if args.json else sys.stdout, flush=True)
        space = choice.space
    if args.layer_blocks is not None:
        space = with_layer_blocks(space, args.layer_blocks)
    return space, feasible(space, budget, lower)


def plan_from_args(
    args: argparse.Namespace, space_top_k: int, is_range: bool = False, layer_blocks: int = 1
) -> SearchPlan:
    """The plan the options ask for; what they leave out takes the defaults of one budget or of a
    range. `layer_blocks`: the space's (after --layer-blocks)."""
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
        continue_probes=not args.fresh_winners,
        max_not_kept=args.max_not_kept,
        objective=args.objective,
        latency_runtime=latency_runtime_option(args.latency_runtime),
        depth=args.depth,
        depth_accuracy_items=args.depth_accuracy_items,
        layer_blocks=layer_blocks,
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
    if not 0 < args.max_not_kept <= 1:
        raise MinitronError(
            "--max-not-kept must be a share of all tokens above 0 and at most 1 (no cap), "
            f"got {args.max_not_kept:g}"
        )
    if args.trial_memory is not None and not args.trial_memory > 0:
        raise MinitronError(f"--trial-memory must be a positive number of GiB, got {args.trial_memory:g}")
    if args.rungs is not None and not 1 <= args.rungs <= 8:
        raise MinitronError(f"--rungs must be between 1 and 8, got {args.rungs}")
    for name in ("trials", "probe_top_k", "calibration_samples", "eval_sequences", "depth_accuracy_items"):
        if getattr(args, name) < 1:
            raise MinitronError(f"{flags([name])} must be positive")
    for name in ("seed", "top_k"):
        if (getattr(args, name) or 0) < 0:
            raise MinitronError(f"{flags([name])} must be 0 or more")
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
    from search.run.ray_runtime import check_fits, local_resources

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
    """Settings of a new run from the command line (defaults sized to this machine), checked before
    anything is written: the name, the output folder, that some candidate fits a trial's memory and
    that the teacher can load."""
    from minitron.model.teacher import check_teacher_source
    from search.cli.checks import check_name, check_out, default_name
    from search.plan.memory_plan import PlanSettings, check_some_fit

    low, budget = parse_budget_range(args.budget)
    space, candidates = pick_space(args, low, budget)  # fails fast on a budget the space cannot reach
    check_options(args, low != budget)
    check_data_options(args)
    name = check_name(args.name) if args.name is not None else default_name(low, budget)
    check_out(args.out)
    resources = resolve_resources(args)
    settings = settings_from_args(args, space, (low, budget), resources, name)
    check_some_fit(space, candidates, PlanSettings.of(settings), trial_memory(args, resources))
    check_teacher_source(settings.teacher, allow_pickle=args.allow_pickle)
    check_retrain_workers(settings)
    return settings


def settings_from_args(
    args: argparse.Namespace, space: Any, bounds: tuple[int, int], resources: Resources, name: str
) -> SearchSettings:
    """The settings the options ask for over `space` at `bounds` (low, budget; equal for one
    budget), on `resources`: what a run saves, and what a dry run plans with."""
    low, budget = bounds
    is_range = low != budget
    eval_tasks, eval_limit = eval_options(args)
    check_layer_blocks(space.layer_blocks, args.depth)
    return SearchSettings.create(
        budget=budget,
        space=str(space.path),
        teacher=args.teacher or space.teacher_name,
        plan=plan_from_args(args, space.top_k, is_range, space.layer_blocks),
        resources=resources,
        retrain_tokens=parse_tokens(args.retrain_tokens, "--retrain-tokens"),
        calibration_samples=args.calibration_samples,
        eval_tasks=eval_tasks,
        eval_limit=eval_limit,
        eval_fewshot=args.eval_fewshot,
        seed=args.seed,
        data=args.data,
        generation=GenerationConfig(documents=args.teacher_samples, max_new_tokens=args.sample_tokens),
        budget_low=low if is_range else None,
        name=name,
        out=args.out,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        gguf=gguf_option(args.gguf),
    )


def check_layer_blocks(layer_blocks: int, depth: str) -> None:
    """More than one layer block needs the depth method that ranks blocks, and no more blocks than
    the depth importance surely measures per size (its shortlist)."""
    if layer_blocks > 1 and depth != DepthMethod.BLOCK.value:
        raise MinitronError(
            f"layer_blocks {layer_blocks} ranks contiguous blocks by their removal loss, which only "
            f"--depth block uses, not --depth {depth}"
        )
    shortlist = ImportanceConfig.depth_shortlist
    if 0 < shortlist < layer_blocks:
        raise MinitronError(
            f"layer_blocks {layer_blocks}: the depth importance measures only {shortlist} contiguous "
            f"blocks per size for sure; choose at most {shortlist}"
        )


def latency_runtime_option(text: str) -> str:
    """`pytorch`, or `llama.cpp:<quant>` once llama.cpp is known to be installed here."""
    from minitron.export.llamacpp import require, runtime_quant

    quant = runtime_quant(text)
    if quant is None:
        return "pytorch"
    require()
    return f"llama.cpp:{quant}"


def gguf_option(text: str) -> tuple[str, ...]:
    """`--gguf f16,q8_0` -> ("f16", "q8_0"); `none` -> ()."""
    from minitron.export.gguf_file import parse_quants

    if text.strip().lower() == "none":
        return ()
    return tuple(parse_quants(text))


def check_data_options(args: argparse.Namespace) -> None:
    """`--data` names corpora that exist, with valid weights; the teacher's samples are sized."""
    check_parts(args.data)
    for option, value in (
        ("--teacher-samples", args.teacher_samples),
        ("--sample-tokens", args.sample_tokens),
    ):
        if value <= 0:
            raise MinitronError(f"{option} must be a positive number, got {value}")


def trial_memory(args: argparse.Namespace, resources: Resources) -> Any:
    """The memory a trial with `resources` gets (`--trial-memory`, or this machine's share)."""
    from minitron.model.memory import GIB
    from search.plan.memory_plan import Capacity, trial_capacity

    if args.trial_memory is not None:
        return Capacity(int(args.trial_memory * GIB), "--trial-memory")
    return trial_capacity(resources)


def check_retrain_workers(settings: SearchSettings) -> None:
    """Each Ray Train worker takes an equal share of every retraining batch."""
    workers, batch = settings.resources.retrain_workers, settings.retrain.batch_size
    if batch % workers:
        raise MinitronError(
            f"--retrain-workers {workers} cannot split the retraining batch of {batch} sequences evenly; "
            f"use a worker count that divides {batch}"
        )

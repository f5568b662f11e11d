"""A run's specification, resolved once: from what a user asks for (`SearchRequest`, the options of
`search.py` and of `search.api.run`) to the `RunSpec` every stage reads.

`resolve(request)` is the one place that checks the options against each other and against this
machine (the rules are tabled in docs/usage.md), picks the space, sizes the probes and builds the
settings; nothing after it re-derives a count or re-reads a file. `RunConfig` is what `config.json`
holds: the settings and the space's *content*, so that `--resume` (`RunSpec.resume`) searches the
space the run started with, whatever became of the YAML file since.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minitron import codec
from minitron.budget import parse_budget_range, parse_tokens
from minitron.data.generated import GenerationConfig
from minitron.data.mix import check_parts
from minitron.errors import MinitronError
from minitron.eval.benchmarks import ALL_TASKS, check_tasks
from minitron.export.llamacpp import LatencyRuntime
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.model.memory import GIB
from search.plan.candidates import Candidate, feasible, space_for_budget
from search.plan.front import seeded_shapes
from search.plan.geometry import geometry_for
from search.plan.memory_plan import Capacity, PlanSettings, check_some_fit, trial_capacity
from search.plan.names import check_name, check_out, default_name
from search.plan.request import SearchRequest
from search.plan.resources import Resources, check_fits, local_resources
from search.plan.settings import (
    CONFIG_SOURCE,
    RANGE_RUNGS,
    RANGE_WINNERS,
    SETTINGS_FORMAT,
    Objective,
    Sampler,
    Scheduler,
    SearchPlan,
    SearchSettings,
    TeacherMode,
)
from search.plan.space import (
    KnownArchitecture,
    SearchSpace,
    load_space,
    space_from_definition,
    with_layer_blocks,
)


@dataclass(frozen=True)
class SpaceRecord:
    """The space of a run as `config.json` keeps it."""

    name: str
    path: str
    """The YAML file it was first read from (never read again)."""
    band: float
    definition: dict[str, Any] | None = None
    """Its content in the YAML schema; runs from before it read the file again on resume."""


@dataclass(frozen=True)
class RunConfig:
    """`config.json`: the run's format, settings and space, and when it was made."""

    format: int
    settings: SearchSettings
    space: SpaceRecord
    feasible_candidates: int
    """How many candidates the space had at the budget: a resumed run must find the same."""
    created: str


@dataclass(frozen=True)
class RunSpec:
    """A run, resolved: its settings (what `config.json` saves), its space (loaded once), and what
    follows from both, computed once: the feasible candidates, the shapes probed first, the memory
    plan's terms and the memory a trial has."""

    settings: SearchSettings
    space: SearchSpace
    """The space as loaded when the run began, with the run's `layer_blocks`."""
    capacity: Capacity | None = None
    """Memory a trial gets (None: unknown until a cluster is attached)."""
    candidates: tuple[Candidate, ...] = field(init=False)
    """Every architecture of the space in the budget band (or range), largest first."""
    seeds: tuple[KnownArchitecture, ...] = field(init=False)
    """Shapes probed first: the space's known ones in the band, or a range's hand shapes at its
    budget points (`search.plan.front`); their names mark them in the report."""
    memory: PlanSettings = field(init=False)
    """What each candidate's memory estimate depends on besides its shape."""

    def __post_init__(self) -> None:
        s = self.settings
        candidates = tuple(feasible(self.space, s.budget, s.budget_low))
        if s.budget_low is not None:
            seeds = tuple(seeded_shapes(self.space, s.budget_low, s.budget, s.plan.top_k))
        else:
            feasible_now = {c.arch for c in candidates}
            seeds = tuple(k for k in self.space.known if k.arch in feasible_now)
        object.__setattr__(self, "candidates", candidates)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "memory", PlanSettings.of(s))

    @property
    def run_dir(self) -> Path:
        """Where the run lives: `<out>/<name>`, absolute (Tune needs absolute paths)."""
        return Path(self.settings.out).expanduser().resolve() / self.settings.name

    @property
    def teacher_spec(self) -> str:
        """A teacher spec worker processes can load: a local path made absolute (Tune changes the
        working directory of its trials)."""
        path = Path(self.settings.teacher).expanduser()
        return str(path.resolve()) if path.exists() else self.settings.teacher

    def config(self) -> RunConfig:
        """What `config.json` holds for this run."""
        space = self.space
        record = SpaceRecord(space.name, str(space.path), space.band, space.definition())
        created = datetime.datetime.now().isoformat(timespec="seconds")
        return RunConfig(SETTINGS_FORMAT, self.settings, record, len(self.candidates), created)

    @classmethod
    def resume(cls, root: Path, data: dict[str, Any], given: SearchRequest | None = None) -> RunSpec:
        """The spec of the run in `root` from its `config.json` (`data`), on its saved resources or
        those `given` asks for (checked against this machine as a new run's are)."""
        if data.get("format") != SETTINGS_FORMAT:
            raise MinitronError(
                f"--resume {root}: the run was made by an earlier version of minitron-search (other data "
                "splits and probe schedule), which this version cannot continue exactly; start a new run"
            )
        SearchSettings.from_json(data.get("settings"))  # the settings' own errors before the rest's
        config = codec.decode(RunConfig, data, CONFIG_SOURCE)
        saved = config.settings
        settings = saved.with_resources(resolve_resources(given or SearchRequest(), saved.resources))
        settings = dataclasses.replace(settings, out=str(root.parent), name=root.name)
        if config.space.definition is not None:
            space = space_from_definition(config.space.path, config.space.definition)
        else:  # written before the definition was kept: the file, as such runs always read it
            space = load_space(config.space.path)
        spec = cls(
            settings, with_layer_blocks(space, settings.plan.layer_blocks), trial_capacity(settings.resources)
        )
        if len(spec.candidates) != config.feasible_candidates:
            raise MinitronError(
                f"--resume {root}: the run searched {config.feasible_candidates} candidates, but its space "
                f"{config.space.path} now gives {len(spec.candidates)}; restore the file or start a new run"
            )
        return spec


# ------------------------------------------------------------------------------------- resolution


def flags(names: Sequence[str]) -> str:
    """Option names as the command line spells them: `top_k` -> `--top-k`."""
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def resolve(request: SearchRequest, *, dry_run: bool = False, quiet: bool = False) -> RunSpec:
    """The run `request` asks for, every option checked before anything is written (the rules:
    docs/usage.md, "Which options go together"). With `dry_run`, what only a real start needs is
    left unchecked: the run's name and folder, and the teacher's source; with `trial_memory` the
    plan is for other machines, whose resources are not checked here. `quiet`: the line saying which
    space the budget chose goes to stderr (stdout is for JSON)."""
    if request.budget is None or str(request.budget).strip() == "":
        raise MinitronError("--budget is required (e.g. --budget 70M), unless --resume RUN_DIR")
    low, budget = parse_budget_range(str(request.budget))
    is_range = low != budget
    if dry_run:
        values = check_options(request, is_range)
        space = pick_space(request, low, budget, quiet)
    else:
        space = pick_space(request, low, budget, quiet)  # fails fast on a budget the space cannot reach
        values = check_options(request, is_range)
        check_data_options(request)
    name = ""
    if not dry_run:
        name = check_name(request.name) if request.name is not None else default_name(low, budget)
        check_out(request.out)
    elif request.name:
        name = request.name
    resources = resolve_resources(request, check=not (dry_run and request.trial_memory is not None))
    capacity = trial_capacity_for(request, resources)
    settings = settings_for(request, values, space, (low, budget), resources, name, capacity)
    spec = RunSpec(settings, space, capacity)
    if not dry_run:
        from minitron.model.teacher import check_teacher_source

        check_some_fit(space, list(spec.candidates), spec.memory, spec.capacity)
        check_teacher_source(settings.teacher, allow_pickle=request.allow_pickle)
        check_retrain_workers(settings)
    return spec


def pick_space(request: SearchRequest, low: int, budget: int, quiet: bool = False) -> SearchSpace:
    """The space of `space`, or the shipped one the budget chooses (said on one line, on stderr when
    `quiet`: stdout is for JSON), with the requested `layer_blocks`; refused when it has no
    candidate at the budget (or over the range `low`..`budget`)."""
    lower = low if low != budget else None
    if request.space:
        space = load_space(request.space)
    else:
        choice = space_for_budget(budget, lower)
        print(choice.line(low, budget), file=sys.stderr if quiet else sys.stdout, flush=True)
        space = choice.space
    if request.layer_blocks is not None:
        space = with_layer_blocks(space, request.layer_blocks)
    feasible(space, budget, lower)
    return space


@dataclass(frozen=True)
class Parsed:
    """The request's values that are read from text, each read once (`check_options`)."""

    retrain_tokens: int
    probe_tokens: int
    """0: the most the overhead and the cap pay for."""
    eval_tasks: tuple[str, ...]
    eval_limit: int | None


def check_options(request: SearchRequest, is_range: bool = False) -> Parsed:
    """Numeric options that must be positive, token counts, and the benchmark options (a dry run
    checks them too, so that the command it previews would start); `is_range`: the budget is a
    range. Returns the values read from text."""
    if is_range and request.scheduler == Scheduler.ASHA:
        raise MinitronError(
            "--scheduler asha compares probe losses of candidates of any size at its rungs, so with a "
            "budget range it would stop the small ones first; use --scheduler none (the range's default)"
        )
    objective = Objective.parse(request.objective, "--objective")
    if not is_range and objective is not Objective.PARAMS:
        raise MinitronError(
            f"--objective {objective} goes with a budget range (e.g. --budget 50M:110M); one budget "
            "ranks its candidates by probe loss alone"
        )
    probe_tokens = parse_tokens(str(request.probe_tokens), "--probe-tokens") if request.probe_tokens else 0
    retrain_tokens = parse_tokens(str(request.retrain_tokens), "--retrain-tokens")
    if not request.overhead > 0:
        raise MinitronError(
            f"--overhead must be a positive fraction of the retraining tokens, got {request.overhead:g}"
        )
    if not 0 < request.max_not_kept <= 1:
        raise MinitronError(
            "--max-not-kept must be a share of all tokens above 0 and at most 1 (no cap), "
            f"got {request.max_not_kept:g}"
        )
    if request.trial_memory is not None and not request.trial_memory > 0:
        raise MinitronError(f"--trial-memory must be a positive number of GiB, got {request.trial_memory:g}")
    if request.rungs is not None and not 1 <= request.rungs <= 8:
        raise MinitronError(f"--rungs must be between 1 and 8, got {request.rungs}")
    for name in (
        "trials",
        "probe_top_k",
        "calibration_samples",
        "eval_sequences",
        "test_sequences",
        "depth_accuracy_items",
    ):
        if getattr(request, name) < 1:
            raise MinitronError(f"{flags([name])} must be positive")
    for name in ("seed", "top_k"):
        if (getattr(request, name) or 0) < 0:
            raise MinitronError(f"{flags([name])} must be 0 or more")
    eval_tasks, eval_limit = eval_options(request)
    return Parsed(retrain_tokens, probe_tokens, eval_tasks, eval_limit)


def eval_options(request: SearchRequest) -> tuple[tuple[str, ...], int | None]:
    """(tasks, limit) from `eval` and `eval_limit`."""
    spec = request.eval if isinstance(request.eval, str) else ",".join(request.eval)
    if spec.strip().lower() == "none":
        tasks: tuple[str, ...] = ()
    elif spec.strip().lower() == "all":
        tasks = ALL_TASKS
    else:
        tasks = check_tasks([t.strip() for t in spec.split(",") if t.strip()])
    if request.eval_fewshot is not None and request.eval_fewshot < 0:
        raise MinitronError(f"--eval-fewshot must be 0 or more, got {request.eval_fewshot}")
    limit_text = str(request.eval_limit).strip().lower()
    if limit_text in ("full", "none"):
        return tasks, None
    if not limit_text.isdigit() or int(limit_text) <= 0:
        raise MinitronError(
            f"--eval-limit must be a positive number of items or `full`, got {request.eval_limit!r}"
        )
    return tasks, int(limit_text)


def check_data_options(request: SearchRequest) -> None:
    """`data` names corpora that exist, with valid weights; the teacher's samples are sized."""
    check_parts(request.data)
    for option, value in (
        ("--teacher-samples", request.teacher_samples),
        ("--sample-tokens", request.sample_tokens),
    ):
        if value <= 0:
            raise MinitronError(f"{option} must be a positive number, got {value}")


def resolve_resources(
    request: SearchRequest, saved: Resources | None = None, check: bool = True
) -> Resources:
    """Trial resources from the request (over `saved` ones on resume), checked against this machine
    before anything is written (a cluster's nodes are checked once attached: `search.run.ray_runtime`)."""
    cpus, gpus = local_resources()

    def pick(name: str, default: Any) -> Any:
        given = getattr(request, name)
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


def settings_for(
    request: SearchRequest,
    values: Parsed,
    space: SearchSpace,
    bounds: tuple[int, int],
    resources: Resources,
    name: str,
    capacity: Capacity | None = None,
) -> SearchSettings:
    """The settings `request` asks for over `space` at `bounds` (low, budget; equal for one budget),
    on `resources` whose trials have `capacity`: what a run saves, and what a dry run plans with."""
    low, budget = bounds
    is_range = low != budget
    check_layer_blocks(space.layer_blocks, request.depth)
    return SearchSettings.create(
        geometry=geometry_for(request, space, bounds, resources, capacity),
        budget=budget,
        space=str(space.path),
        teacher=request.teacher or space.teacher_name,
        plan=plan_for(request, values, space.top_k, is_range, space.layer_blocks),
        resources=resources,
        retrain_tokens=values.retrain_tokens,
        calibration_samples=request.calibration_samples,
        eval_tasks=values.eval_tasks,
        eval_limit=values.eval_limit,
        eval_fewshot=request.eval_fewshot,
        seed=request.seed,
        data=request.data,
        generation=GenerationConfig(documents=request.teacher_samples, max_new_tokens=request.sample_tokens),
        budget_low=low if is_range else None,
        name=name,
        out=request.out,
        allow_pickle=request.allow_pickle,
        trust_remote_code=request.trust_remote_code,
        gguf=gguf_option(request.gguf),
    )


def plan_for(
    request: SearchRequest, values: Parsed, space_top_k: int, is_range: bool, layer_blocks: int
) -> SearchPlan:
    """The plan the request asks for; what it leaves out takes the defaults of one budget or of a
    range. `layer_blocks`: the space's (after the request's own)."""
    return SearchPlan(
        trials=request.trials,
        sampler=Sampler.parse(request.sampler, "--sampler"),
        scheduler=Scheduler.parse(request.scheduler, "--scheduler")
        if request.scheduler
        else (Scheduler.NONE if is_range else SearchPlan().scheduler),
        overhead=request.overhead,
        probe_tokens=values.probe_tokens,
        rungs=request.rungs if request.rungs is not None else RANGE_RUNGS if is_range else SearchPlan().rungs,
        probe_top_k=request.probe_top_k,
        retrain_teacher=TeacherMode.parse(request.retrain_teacher, "--retrain-teacher"),
        top_k=request.top_k if request.top_k is not None else RANGE_WINNERS if is_range else space_top_k,
        continue_probes=not request.fresh_winners,
        max_not_kept=request.max_not_kept,
        objective=Objective.parse(request.objective, "--objective"),
        latency_runtime=latency_runtime_option(request.latency_runtime),
        depth=DepthMethod.parse(request.depth, "--depth"),
        depth_accuracy_items=request.depth_accuracy_items,
        layer_blocks=layer_blocks,
        validation_sequences=request.eval_sequences,
        test_sequences=request.test_sequences,
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


def latency_runtime_option(text: str) -> LatencyRuntime:
    """`pytorch`, or llama.cpp in a quantization once llama.cpp is known to be installed here."""
    from minitron.export.llamacpp import require

    runtime = LatencyRuntime.parse(text)
    if runtime.is_llama_cpp:
        require()
    return runtime


def gguf_option(value: str | Sequence[str]) -> tuple[str, ...]:
    """`f16,q8_0` (or a list) -> ("f16", "q8_0"); `none` -> ()."""
    from minitron.export.gguf_file import parse_quants

    text = value if isinstance(value, str) else ",".join(value)
    if text.strip().lower() == "none":
        return ()
    return tuple(parse_quants(text))


def trial_capacity_for(request: SearchRequest, resources: Resources) -> Capacity | None:
    """The memory a trial with `resources` gets (`trial_memory`, or this machine's share)."""
    if request.trial_memory is not None:
        return Capacity(int(request.trial_memory * GIB), "--trial-memory")
    return trial_capacity(resources)


def check_retrain_workers(settings: SearchSettings) -> None:
    """Sharded retraining starts a winner from its pruned weights (it cannot adopt a probe's
    one-process state), so it goes with `--fresh-winners`, whose probes are planned as candidates of
    their own (that the workers share each batch evenly is checked with the step's shape,
    `search.plan.geometry`)."""
    workers = settings.resources.retrain_workers
    if workers > 1 and settings.plan.keeps_probe_states:
        raise MinitronError(
            f"--retrain-workers {workers} retrains each winner from its pruned weights (a sharded "
            "retraining cannot continue from its probe), so the probes would be planned as the winners' "
            "first steps for nothing; add --fresh-winners"
        )

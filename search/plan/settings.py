"""The resolved settings of one search run: what `config.json` in the run directory holds.

`SearchSettings` is composed of the library's own configs (how importance is estimated, how a
probe and a winner's retraining train, how benchmarks are scored) plus what only the search has
(the plan: trials, sampler, probe tokens, winners) and where it runs (resources). Every default
lives once: in the library config it belongs to, or here for what only the search decides.
`from_json` is strict: an unknown or missing key is an error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from minitron.data.generated import GenerationConfig
from minitron.data.mix import DEFAULT_DATA
from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.errors import MinitronError
from minitron.eval.benchmarks import EvalConfig
from minitron.eval.loss import VALIDATION_SEQUENCES
from minitron.export.gguf_file import DEFAULT_QUANTS
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.runtime import Placement

#: Benchmarks of the default run: sized so a teacher + 2 winners take a few minutes on 2 CPU cores.
#: MMLU (57 subjects) is left out by default: at 100M parameters it scores at chance (25 %).
DEFAULT_EVAL_TASKS = ("hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai")
DEFAULT_EVAL_LIMIT = 400
SCHEDULERS = ("asha", "none")
#: The search's second objective beside the probe loss when it searches a budget range.
OBJECTIVES = ("params", "latency")
#: A budget range's defaults: probes validate once, at their end (every probe runs to it: no
#: scheduler compares candidates of different sizes early), and 3 winners along the front.
RANGE_RUNGS = 1
RANGE_WINNERS = 3
RETRAIN_TEACHERS = ("cached", "online")
#: The layout of `config.json`; runs of another format cannot be resumed (2: test split, one loop;
#: 3: probes without decay, winners continue from them).
SETTINGS_FORMAT = 3


@dataclass(frozen=True)
class SearchPlan:
    """What the search itself does, beyond the library's configs."""

    trials: int = 8
    """Candidates to probe (Ray Tune trials); duplicates and infeasible suggestions cost none."""
    sampler: str = "tpe"
    """Optuna sampler (see `search.run.sampling.SAMPLERS`)."""
    scheduler: str = "asha"
    """`asha` (successive halving: every probe to the first rung, the better half on to the next)
    or `none` (every probe runs to the end)."""
    overhead: float = 0.25
    """Probe tokens of the whole search ÷ retraining tokens of all winners: the probe schedule is
    derived from it, and the search stops once it is spent (see `search.plan.probe_plan`)."""
    probe_tokens: int = 0
    """Training tokens of a full probe (its last rung); 0: the most the overhead pays for."""
    rungs: int = 4
    """Validations per probe at geometric points (1, 2, 4, ... × the first); ASHA's rungs."""
    probe_top_k: int = 64
    """Teacher logits kept per position for probes and cached retraining (computed once, shared)."""
    retrain_teacher: str = "online"
    """`online`: the teacher runs on every batch and winners learn its full distribution; `cached`:
    winners train on the teacher's top-k logits cached over their whole token stream (computed
    once, about twice as fast, 512 bytes per token). Online is the default because it returns
    better models: the default demo's winners tested 4.099 and 4.301 online against 4.146 and
    4.333 cached, same tokens (docs/measurements.md)."""
    top_k: int = 2
    """Winners retrained fully (0: the search only ranks candidates)."""
    continue_probes: bool = True
    """A winner's retraining continues from its probe (weights, optimizer state, data position)
    instead of starting from the pruned weights: probes stay at the peak learning rate and the
    retraining's cosine decay starts where the full probe ends, so a probe is the first steps of its
    winner's retraining and only the candidates that were not kept cost extra tokens. False: the
    recipe before 2026-12-03 (cosine probes, cosine retraining from the pruned weights)."""
    max_not_kept: float = 0.1
    """When winners continue from their probes: the largest share of all tokens trained (the
    winners' retraining, their probes included, plus every other probe) that may go to candidates
    that are not kept; the probes are sized and the search stops to stay within it
    (`search.plan.probe_plan`). 1: no cap. Runs from before it read 1."""
    depth: DepthMethod = DepthMethod.BLOCK
    """How a shallower candidate chooses the layers it drops."""
    depth_accuracy_items: int = 200
    """Winogrande items per block removal when `depth` is `block_accuracy`."""
    layer_blocks: int = 1
    """With `depth` `block`: the space's `layer_blocks` (or `--layer-blocks`), how many contiguous
    blocks of least removal loss a shallower shape may drop. Runs from before it read 1."""
    validation_sequences: int = VALIDATION_SEQUENCES
    """Validation sequences for the zero-shot, probe and final losses (the same ones for all)."""
    objective: str = "params"
    """With a budget range, the second objective beside the probe loss: `params` (the count) or
    `latency` (milliseconds for one sequence on the trial's device, measured by the trial)."""
    latency_runtime: str = "pytorch"
    """Where latencies are measured (the trials' and the latency stage's): `pytorch`, or
    `llama.cpp:<quant>` (each candidate written as a GGUF file in that quantization and timed in
    llama.cpp, `minitron.export.llamacpp`). Runs from before it read `pytorch`."""

    def __post_init__(self) -> None:
        # the command line gives a name; the run works with the member
        object.__setattr__(self, "depth", DepthMethod.parse(self.depth, "--depth"))


@dataclass(frozen=True)
class Resources:
    """Where trials, retraining and benchmarks run."""

    cpus_per_trial: float = 2.0
    gpus_per_trial: float = 0.0
    concurrency: int = 1
    """Trials run at once."""
    address: str | None = None
    """Ray cluster to attach to (`auto` or host:port); None starts a local Ray."""
    retrain_workers: int = 1
    """Ray Train workers that retrain each winner together (FSDP2, data-parallel, sharded), each with
    a trial's resources; 1 retrains a winner in one process."""
    dashboard_host: str = "127.0.0.1"

    @property
    def threads(self) -> int:
        """Torch threads per trial: its CPU share, at least one."""
        return max(int(self.cpus_per_trial), 1)


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides what a search computes. Saved to `config.json`; `--resume` reads it back."""

    budget: int
    """Target parameter count; the upper end of a budget range."""
    space: str
    """Path of the search-space YAML file."""
    teacher: str
    """Teacher spec as given (embedded name, checkpoint dir, .gguf or hub id)."""
    data: str = DEFAULT_DATA
    """Data for calibration, probes, validation and retraining: one corpus, the default `mix`, or
    several corpora with weights (`minitron.data.mix`)."""
    budget_low: int | None = None
    """The lower end of a budget range (`--budget 50M:110M`): the search then covers every size
    from it to `budget` and returns a Pareto front; None: one budget."""
    name: str = ""
    """The run directory's name (one path component)."""
    out: str = "results"
    """The folder that holds run directories."""
    seed: int = 0
    """Seeds sampling, probe batches and training (the probe's and retraining's `seed`)."""
    allow_pickle: bool = False
    """Load a teacher whose weights are pickle files (with `weights_only=True`); refused otherwise."""
    trust_remote_code: bool = False
    """Run code shipped with a teacher checkpoint (never by default)."""
    plan: SearchPlan = field(default_factory=SearchPlan)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """The teacher's samples, where the data holds `teacher-samples` (runs from before them read
    the defaults and never use them)."""
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    """Calibration; its `seq_len` is the run's sequence length everywhere."""
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    retrain: RetrainConfig = field(default_factory=lambda: RetrainConfig(tokens=64_000))
    eval: EvalConfig = field(
        default_factory=lambda: EvalConfig(tasks=DEFAULT_EVAL_TASKS, limit=DEFAULT_EVAL_LIMIT)
    )
    """Benchmarks of the teacher and every winner (no tasks: none)."""
    gguf: tuple[str, ...] = DEFAULT_QUANTS
    """GGUF files for llama.cpp written beside each winner, one per quantization
    (`minitron.export`); empty: none. Runs from before it read the default."""
    resources: Resources = field(default_factory=Resources)

    @classmethod
    def create(
        cls,
        *,
        budget: int,
        space: str,
        teacher: str,
        plan: SearchPlan,
        resources: Resources,
        retrain_tokens: int,
        calibration_samples: int,
        eval_tasks: tuple[str, ...],
        eval_limit: int | None,
        eval_fewshot: int | None,
        seed: int,
        **identity: Any,
    ) -> SearchSettings:
        """Settings with every derived value filled in: the probe's and retraining's step counts,
        validation intervals, seed and threads follow from the plan, the seed and the resources."""
        from search.plan.probe_plan import full_probe_steps

        importance = ImportanceConfig(num_samples=calibration_samples)
        tokens_per_step = importance.seq_len * ProbeConfig.batch_size
        retrain_steps = max(retrain_tokens // (importance.seq_len * RetrainConfig.batch_size), 1)
        winner_tokens = retrain_steps * importance.seq_len * RetrainConfig.batch_size * max(plan.top_k, 1)
        probe_steps = full_probe_steps(plan, retrain_tokens, tokens_per_step, winner_tokens)
        placement = Placement(threads=resources.threads)
        continued = plan.continue_probes and plan.top_k > 0
        probe = ProbeConfig(
            tokens=probe_steps * tokens_per_step,
            rungs=plan.rungs,
            seed=seed,
            placement=placement,
            decay_fraction=0.0 if continued else 1.0,
        )
        retrain = RetrainConfig(
            tokens=retrain_tokens,
            seq_len=importance.seq_len,
            eval_every=max(retrain_steps // 4, 1),
            eval_sequences=plan.validation_sequences,
            checkpoint_every=max(retrain_steps // 8, 1),
            seed=seed,
            placement=placement,
        )
        if continued:  # the probe's warm-up and peak are the retraining's first steps
            # The cosine decay starts where a full probe ends: the constant phase is as long as a
            # probe needs and no longer. A decay over the last fifth only (warm-up/stable/decay as
            # long LLM runs use it) cost 0.04-0.10 nats at 150k tokens (docs/lab/measured-search.md).
            warmup = probe.schedule(probe_steps).warmup
            decay = max(retrain.steps - probe_steps, 1) / retrain.steps
            retrain = dataclasses.replace(retrain, warmup_steps=warmup, decay_fraction=decay)
            _check_prefix(probe.schedule(probe_steps), retrain.schedule())
        evaluation = EvalConfig(tasks=eval_tasks, limit=eval_limit, num_fewshot=eval_fewshot)
        return cls(
            budget=budget,
            space=space,
            teacher=teacher,
            seed=seed,
            plan=plan,
            importance=importance,
            probe=probe,
            retrain=retrain,
            eval=evaluation,
            resources=resources,
            **identity,
        )

    def with_resources(self, resources: Resources) -> SearchSettings:
        """The same run on other resources (what `--resume` may change): threads follow the CPUs."""
        placement = dataclasses.replace(self.probe.placement, threads=resources.threads)
        return dataclasses.replace(
            self,
            resources=resources,
            probe=dataclasses.replace(self.probe, placement=placement),
            retrain=dataclasses.replace(self.retrain, placement=placement),
        )

    @property
    def is_range(self) -> bool:
        """Whether this run searches a budget range (a Pareto front) rather than one budget."""
        return self.budget_low is not None

    @property
    def bounds(self) -> tuple[int, int]:
        """The budget range's ends; (budget, budget) for one budget."""
        return (self.budget_low if self.budget_low is not None else self.budget), self.budget

    @property
    def seq_len(self) -> int:
        return self.importance.seq_len

    @property
    def probe_steps(self) -> int:
        """Optimizer steps of a full probe (at least one)."""
        return max(self.probe.tokens // (self.seq_len * self.probe.batch_size), 1)

    @property
    def probe_sequences(self) -> int:
        """Packed sequences a full probe trains on."""
        return self.probe_steps * self.probe.batch_size

    @property
    def target_sequences(self) -> int:
        """Sequences of the cached teacher targets: the probes' and, when winners train on cached
        targets, a retraining's (both read the same seeded order from its start)."""
        retrain = self.retrain.steps * self.retrain.batch_size
        cached = self.plan.retrain_teacher == "cached" and self.plan.top_k > 0
        return max(self.probe_sequences, retrain if cached else 0)

    @property
    def probe_reports(self) -> int:
        """How many validation losses a probe reports (its rungs)."""
        return self.probe.schedule(self.probe_steps).rungs

    @property
    def winner_tokens(self) -> int:
        """Tokens all winners train (each one's retraining, its probe included when it continues)."""
        return max(self.retrain.steps, 1) * self.seq_len * self.retrain.batch_size * max(self.plan.top_k, 1)

    @property
    def probe_budget(self) -> int:
        """Probe tokens the search may spend: the overhead times all winners' retraining tokens and,
        when winners continue from their probes, no more than `--max-not-kept` allows beside them."""
        from search.plan.probe_plan import spend_cap

        probe_tokens = self.probe_steps * self.seq_len * self.probe.batch_size
        return spend_cap(self.plan, self.retrain.tokens, self.winner_tokens, probe_tokens)

    def teacher_options(self) -> dict[str, bool]:
        """The safety switches every `load_teacher` call of this run passes on."""
        return {"allow_pickle": self.allow_pickle, "trust_remote_code": self.trust_remote_code}

    def teacher_placement(self) -> dict[str, Any]:
        """`load_teacher`'s device and dtype for the teacher's stages in this process: the device
        kind and precision trials use (`Placement.teacher`)."""
        return self.probe.placement.teacher()

    def to_json(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, values: Any) -> SearchSettings:
        """Read saved settings strictly."""
        if (
            isinstance(values, dict)
            and isinstance(values.get("plan"), dict)
            and "max_not_kept" not in values["plan"]
        ):
            # runs from before `--max-not-kept` had no cap: resumed, they stop where they would have
            values = {**values, "plan": {**values["plan"], "max_not_kept": 1.0}}
        settings = _load(cls, values, "settings")
        assert isinstance(settings, SearchSettings)
        if settings.retrain.seq_len != settings.seq_len:
            raise MinitronError(
                "config.json: settings.retrain.seq_len differs from settings.importance.seq_len"
            )
        return settings


def _check_prefix(probe: Any, retrain: Any) -> None:
    """A full probe must lie within its winner's retraining before the decay (one clear line if not)."""
    if not probe.is_prefix_of(retrain, probe.steps):
        raise MinitronError(
            f"a full probe ({probe.steps} steps) must end before its winner's retraining decays "
            f"(step {retrain.decay_start} of {retrain.steps}, warm-up {retrain.warmup}) for the winner "
            "to continue from it; lower --probe-tokens or --overhead, raise --retrain-tokens, or pass "
            f"--fresh-winners (winners retrained from their pruned weights)"
        )


def _plain(value: Any) -> Any:
    """JSON-ready values: enums by value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _load(kind: Any, value: Any, where: str) -> Any:
    """`value` read as type `kind` (dataclasses recursively); anything unexpected is an error."""
    origin = typing.get_origin(kind)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise MinitronError(f"config.json: {where} must be an object")
        hints = typing.get_type_hints(kind)
        fields = {f.name: f for f in dataclasses.fields(kind)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise MinitronError(
                f"config.json: unknown setting {where}.{unknown[0]} (written by another version of "
                "minitron-search?); start a new run instead of --resume"
            )
        missing = [
            name
            for name, f in fields.items()
            if name not in value
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise MinitronError(f"config.json: setting {where}.{missing[0]} is missing")
        return kind(**{k: _load(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        return _load(next(o for o in options if o is not type(None)), value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise MinitronError(f"config.json: {where} must be a list")
        return tuple(value)
    if origin is dict or kind is Any:
        return value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise MinitronError(f"config.json: {where} has an unknown value {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and not isinstance(value, kind):
        raise MinitronError(f"config.json: {where} must be {kind.__name__}, got {value!r}")
    return value

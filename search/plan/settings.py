"""The resolved settings of one search run: what `config.json` in the run directory holds.

`SearchSettings` is composed of the library's own configs (how importance is estimated, how a
probe and a winner's retraining train, how benchmarks are scored) plus what only the search has
(the plan: trials, sampler, probe tokens, winners) and where it runs (resources). Every default
lives once: in the library config it belongs to, or here for what only the search decides.
`from_json` is strict: an unknown or missing key is an error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from minitron import codec
from minitron.choice import Choice
from minitron.data.generated import GenerationConfig
from minitron.data.mix import DEFAULT_DATA
from minitron.data.tokens import SEQ_LEN
from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.errors import MinitronError
from minitron.eval.benchmarks import EvalConfig
from minitron.eval.loss import TEST_SEQUENCES, VALIDATION_SEQUENCES
from minitron.export.gguf_file import DEFAULT_QUANTS
from minitron.export.llamacpp import LatencyRuntime
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.runtime import Placement
from search.plan.probe_plan import TokenPlan
from search.plan.resources import Resources

#: Benchmarks of the default run: sized so a teacher + 2 winners take a few minutes on 2 CPU cores.
#: MMLU (57 subjects) is left out by default: at 100M parameters it scores at chance (25 %).
DEFAULT_EVAL_TASKS = ("hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai")
DEFAULT_EVAL_LIMIT = 400
#: A budget range's defaults: probes validate once, at their end (every probe runs to it: no
#: scheduler compares candidates of different sizes early), and 3 winners along the front.
RANGE_RUNGS = 1
RANGE_WINNERS = 3
#: The layout of `config.json`; runs of another format cannot be resumed (2: test split, one loop;
#: 3: probes without decay, winners continue from them).
SETTINGS_FORMAT = 3
#: How errors in `config.json` read.
CONFIG_SOURCE = codec.Source("config.json", "setting", "; start a new run instead of --resume")


@dataclass(frozen=True)
class Geometry:
    """The shape of a training step, the same for probes and retraining (a winner continues from its
    probe step for step). On the CPU the default, 4 x 256; on GPUs `search.plan.geometry` chooses."""

    seq_len: int = SEQ_LEN
    """Tokens per packed sequence, for calibration, training, validation and test alike."""
    global_batch: int = 4
    """Sequences per optimizer step (over every worker of a sharded retraining)."""
    micro_batch: int | None = None
    """Sequences per forward and backward pass of one process; a step accumulates the gradients of
    global batch / micro-batch passes (per worker). None: the whole batch at once."""


class Scheduler(Choice):
    """How probes are cut short."""

    ASHA = "asha"
    """Successive halving: every probe to the first rung, the better half on to the next."""
    NONE = "none"
    """Every probe runs to its end."""


class Objective(Choice):
    """With a budget range, the search's second objective beside the probe loss."""

    PARAMS = "params"
    """The parameter count."""
    LATENCY = "latency"
    """Milliseconds for one sequence on the trial's device, measured by the trial."""

    @property
    def key(self) -> str:
        """The `TrialRecord` field that holds this objective's value."""
        return "params" if self is Objective.PARAMS else "latency_ms"


class TeacherMode(Choice):
    """How winners see the teacher while they retrain."""

    ONLINE = "online"
    """The teacher runs on every batch; winners learn its full distribution."""
    CACHED = "cached"
    """Winners train on the teacher's top-k logits cached over their whole token stream."""


class Sampler(Choice):
    """The Optuna sampler that proposes architectures (`search.run.samplers` builds each)."""

    TPE = "tpe"
    NSGA2 = "nsga2"
    RANDOM = "random"
    GRID = "grid"


@dataclass(frozen=True)
class SearchPlan:
    """What the search itself does, beyond the library's configs."""

    trials: int = 8
    """Candidates to probe (Ray Tune trials); duplicates and infeasible suggestions cost none."""
    sampler: Sampler = Sampler.TPE
    """Optuna sampler (built by `search.run.samplers`)."""
    scheduler: Scheduler = Scheduler.ASHA
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
    retrain_teacher: TeacherMode = TeacherMode.ONLINE
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
    test_sequences: int = TEST_SEQUENCES
    """Test sequences behind the teacher's and every winner's test loss (each part of a mix: half
    as many). Runs from before it read 64."""
    objective: Objective = Objective.PARAMS
    """With a budget range, the second objective beside the probe loss: `params` (the count) or
    `latency` (milliseconds for one sequence on the trial's device, measured by the trial)."""
    latency_runtime: LatencyRuntime = field(default_factory=LatencyRuntime)
    """Where latencies are measured (the trials' and the latency stage's): `pytorch`, or
    `llama.cpp:<quant>` (each candidate written as a GGUF file in that quantization and timed in
    llama.cpp, `minitron.export.llamacpp`). Runs from before it read `pytorch`."""

    def __post_init__(self) -> None:
        # names as a user writes them become members (one line when unknown)
        object.__setattr__(self, "depth", DepthMethod.parse(self.depth, "--depth"))
        object.__setattr__(self, "sampler", Sampler.parse(self.sampler, "--sampler"))
        object.__setattr__(self, "scheduler", Scheduler.parse(self.scheduler, "--scheduler"))
        object.__setattr__(self, "objective", Objective.parse(self.objective, "--objective"))
        object.__setattr__(
            self, "retrain_teacher", TeacherMode.parse(self.retrain_teacher, "--retrain-teacher")
        )
        if isinstance(self.latency_runtime, str):
            object.__setattr__(self, "latency_runtime", LatencyRuntime.parse(self.latency_runtime))

    @property
    def keeps_probe_states(self) -> bool:
        """Whether winners continue from their probes (so finished probes keep their state)."""
        return self.continue_probes and self.top_k > 0


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides what a search computes. Saved to `config.json`; `--resume` reads it
    back. Every count that follows from it (probe steps, winners' tokens, the probe budget, ...) is
    in `tokens`, derived once when the settings are made or read."""

    budget: int
    """Target parameter count; the upper end of a budget range."""
    space: str
    """Path of the search-space YAML file as it was given (its content is saved beside the
    settings: `search.plan.spec`)."""
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
    tokens: TokenPlan = field(init=False, repr=False, compare=False)
    """Every token count of the run (derived, never saved)."""

    def __post_init__(self) -> None:
        if self.retrain.seq_len != self.importance.seq_len:
            raise MinitronError("settings.retrain.seq_len differs from settings.importance.seq_len")
        if (self.probe.batch_size, self.probe.micro_batch) != (
            self.retrain.batch_size,
            self.retrain.micro_batch,
        ):
            raise MinitronError("settings.probe and settings.retrain differ in batch_size or micro_batch")
        cached = self.plan.retrain_teacher is TeacherMode.CACHED
        plan = TokenPlan.of(self.plan, self.seq_len, self.probe, self.retrain, cached)
        object.__setattr__(self, "tokens", plan)

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
        geometry: Geometry | None = None,
        **identity: Any,
    ) -> SearchSettings:
        """Settings with every decided value filled in: the probe's length (what the overhead and
        `--max-not-kept` pay for), the retraining's validation and checkpoint intervals and its
        schedule, seed and threads follow from the plan, the seed and the resources."""
        from search.plan.probe_plan import full_probe_steps

        shape = geometry or Geometry()
        importance = ImportanceConfig(num_samples=calibration_samples, seq_len=shape.seq_len)
        placement = Placement(threads=resources.threads)
        batch, micro = shape.global_batch, shape.micro_batch
        retrain = RetrainConfig(
            tokens=retrain_tokens,
            seq_len=shape.seq_len,
            batch_size=batch,
            micro_batch=micro,
            placement=placement,
        )
        draft_probe = ProbeConfig(batch_size=batch, micro_batch=micro)
        draft = TokenPlan.of(plan, shape.seq_len, draft_probe, retrain, cached_retraining=False)
        probe_steps = full_probe_steps(plan, retrain_tokens, draft.probe_step, draft.winner_tokens)
        probe = ProbeConfig(
            batch_size=batch,
            micro_batch=micro,
            tokens=probe_steps * draft.probe_step,
            rungs=plan.rungs,
            seed=seed,
            placement=placement,
            decay_fraction=0.0 if plan.keeps_probe_states else 1.0,
        )
        retrain = dataclasses.replace(
            retrain,
            eval_every=max(draft.retrain_steps // 4, 1),
            eval_sequences=plan.validation_sequences,
            test_sequences=plan.test_sequences,
            checkpoint_every=max(draft.retrain_steps // 8, 1),
            seed=seed,
        )
        if plan.keeps_probe_states:  # the probe's warm-up and peak are the retraining's first steps
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

    def teacher_options(self) -> dict[str, bool]:
        """The safety switches every `load_teacher` call of this run passes on."""
        return {"allow_pickle": self.allow_pickle, "trust_remote_code": self.trust_remote_code}

    def teacher_placement(self) -> dict[str, Any]:
        """`load_teacher`'s device and dtype for the teacher's stages in this process: the device
        kind and precision trials use (`Placement.teacher`)."""
        return self.probe.placement.teacher()

    def to_json(self) -> dict[str, Any]:
        """The settings as `config.json` holds them."""
        return codec.encode_fields(self)

    @classmethod
    def from_json(cls, values: Any) -> SearchSettings:
        """Read saved settings strictly (`minitron.codec`)."""
        if (
            isinstance(values, dict)
            and isinstance(values.get("plan"), dict)
            and "max_not_kept" not in values["plan"]
        ):
            # runs from before `--max-not-kept` had no cap: resumed, they stop where they would have
            values = {**values, "plan": {**values["plan"], "max_not_kept": 1.0}}
        return codec.decode_fields(cls, values, CONFIG_SOURCE, "settings")


def _check_prefix(probe: Any, retrain: Any) -> None:
    """A full probe must lie within its winner's retraining before the decay (one clear line if not)."""
    if not probe.is_prefix_of(retrain, probe.steps):
        raise MinitronError(
            f"a full probe ({probe.steps} steps) must end before its winner's retraining decays "
            f"(step {retrain.decay_start} of {retrain.steps}, warm-up {retrain.warmup}) for the winner "
            "to continue from it; lower --probe-tokens or --overhead, raise --retrain-tokens, or pass "
            f"--fresh-winners (winners retrained from their pruned weights)"
        )

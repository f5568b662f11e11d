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

from minitron.data.tokens import SEQ_LEN
from minitron.distill.probe import ProbeConfig
from minitron.distill.retrain import RetrainConfig
from minitron.errors import MinitronError
from minitron.eval.benchmarks import EvalConfig
from minitron.eval.loss import VALIDATION_SEQUENCES
from minitron.importance.scores import ImportanceConfig
from minitron.importance.selection import DepthMethod
from minitron.runtime import Placement

#: Benchmarks of the default run: sized so a teacher + 2 winners take a few minutes on 2 CPU cores.
#: MMLU (57 subjects) is left out by default: at 100M parameters it scores at chance (25 %).
DEFAULT_EVAL_TASKS = ("hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai")
DEFAULT_EVAL_LIMIT = 100
SCHEDULERS = ("none", "asha")


@dataclass(frozen=True)
class SearchPlan:
    """What the search itself does, beyond the library's configs."""

    trials: int = 8
    """Candidates to probe (Ray Tune trials); duplicates and infeasible suggestions cost none."""
    sampler: str = "tpe"
    """Optuna sampler (see `search.sampling.SAMPLERS`)."""
    scheduler: str = "none"
    """`none` or `asha` (stop bad probes early)."""
    probe_tokens: int = 16_000
    """Training tokens per probe (the same seeded batches for every candidate)."""
    probe_top_k: int = 64
    """Teacher logits kept per position for probes (computed once, shared by every trial)."""
    top_k: int = 2
    """Winners retrained fully (0: the search only ranks candidates)."""
    depth: DepthMethod = DepthMethod.BLOCK
    """How a shallower candidate chooses the layers it drops."""
    depth_accuracy_items: int = 200
    """Winogrande items per block removal when `depth` is `block_accuracy`."""
    validation_sequences: int = VALIDATION_SEQUENCES
    """Validation sequences for the zero-shot, probe and final losses (the same ones for all)."""

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
    dashboard_host: str = "127.0.0.1"

    @property
    def threads(self) -> int:
        """Torch threads per trial: its CPU share, at least one."""
        return max(int(self.cpus_per_trial), 1)


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides what a search computes. Saved to `config.json`; `--resume` reads it back."""

    budget: int
    """Target parameter count."""
    space: str
    """Path of the search-space YAML file."""
    teacher: str
    """Teacher spec as given (embedded name, checkpoint dir, .gguf or hub id)."""
    data: str = "wiki-en"
    """Corpus for calibration, probes, validation and retraining."""
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
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    """Calibration; its `seq_len` is the run's sequence length everywhere."""
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    retrain: RetrainConfig = field(default_factory=lambda: RetrainConfig(tokens=32_000))
    eval: EvalConfig = field(
        default_factory=lambda: EvalConfig(tasks=DEFAULT_EVAL_TASKS, limit=DEFAULT_EVAL_LIMIT)
    )
    """Benchmarks of the teacher and every winner (no tasks: none)."""
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
        importance = ImportanceConfig(num_samples=calibration_samples)
        probe_steps = max(plan.probe_tokens // (importance.seq_len * ProbeConfig.batch_size), 1)
        placement = Placement(threads=resources.threads)
        probe = ProbeConfig(eval_every=max(probe_steps // 4, 1), seed=seed, placement=placement)
        retrain_steps = max(retrain_tokens // (importance.seq_len * RetrainConfig.batch_size), 1)
        retrain = RetrainConfig(
            tokens=retrain_tokens,
            seq_len=importance.seq_len,
            eval_every=max(retrain_steps // 4, 1),
            eval_sequences=plan.validation_sequences,
            checkpoint_every=max(retrain_steps // 8, 1),
            seed=seed,
            placement=placement,
        )
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
    def seq_len(self) -> int:
        return self.importance.seq_len

    @property
    def probe_steps(self) -> int:
        """Optimizer steps of one probe (at least one)."""
        return max(self.plan.probe_tokens // (self.seq_len * self.probe.batch_size), 1)

    @property
    def probe_sequences(self) -> int:
        """Packed sequences of the probe set (at least one batch)."""
        return max(self.plan.probe_tokens // self.seq_len, self.probe.batch_size)

    @property
    def probe_reports(self) -> int:
        """How many validation losses a probe reports (the intermediate ones and the final one)."""
        every = self.probe.eval_every
        return sum(1 for step in range(1, self.probe_steps) if step % every == 0) + 1

    def teacher_options(self) -> dict[str, bool]:
        """The safety switches every `load_teacher` call of this run passes on."""
        return {"allow_pickle": self.allow_pickle, "trust_remote_code": self.trust_remote_code}

    def to_json(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, values: Any) -> SearchSettings:
        """Read saved settings strictly (a flat file from before the settings tree is converted)."""
        if isinstance(values, dict) and "plan" not in values and "budget" in values:
            return _from_flat(values)
        settings = _load(cls, values, "settings")
        assert isinstance(settings, SearchSettings)
        if settings.retrain.seq_len != settings.seq_len:
            raise MinitronError(
                "config.json: settings.retrain.seq_len differs from settings.importance.seq_len"
            )
        return settings


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


def _from_flat(values: dict[str, Any]) -> SearchSettings:
    """Settings saved flat by versions before the settings tree (same meaning, other layout)."""
    known = {
        "budget", "space", "teacher", "data", "trials", "probe_tokens", "probe_top_k", "probe_lr",
        "top_k", "retrain_tokens", "retrain_lr", "seq_len", "batch_size", "eval_sequences",
        "calibration_samples", "depth", "depth_accuracy_items", "cpus_per_trial", "gpus_per_trial",
        "concurrency", "sampler", "scheduler", "seed", "name", "out", "address", "dashboard_host",
        "allow_pickle", "trust_remote_code", "eval_tasks", "eval_limit", "eval_fewshot",
    }  # fmt: skip
    unknown = sorted(set(values) - known)
    if unknown:
        raise MinitronError(f"config.json: unknown setting {unknown[0]}; start a new run instead of --resume")
    defaults = {"seq_len": SEQ_LEN, "batch_size": 4, "probe_lr": 3e-4, "retrain_lr": 2e-4}
    if any(values.get(k, v) != v for k, v in defaults.items()):
        raise MinitronError("config.json: this old run used settings this version cannot reproduce")
    plan = SearchPlan(
        **{k: values[k] for k in ("trials", "sampler", "scheduler", "probe_tokens", "probe_top_k", "top_k")},
        depth=DepthMethod.parse(values.get("depth", "block"), "depth"),
        depth_accuracy_items=values.get("depth_accuracy_items", 200),
        validation_sequences=values["eval_sequences"],
    )
    resources = Resources(
        **{
            k: values[k]
            for k in ("cpus_per_trial", "gpus_per_trial", "concurrency", "address", "dashboard_host")
        }
    )
    return SearchSettings.create(
        budget=values["budget"],
        space=values["space"],
        teacher=values["teacher"],
        plan=plan,
        resources=resources,
        retrain_tokens=values["retrain_tokens"],
        calibration_samples=values["calibration_samples"],
        eval_tasks=tuple(values.get("eval_tasks", ())),
        eval_limit=values.get("eval_limit"),
        eval_fewshot=values.get("eval_fewshot"),
        seed=values["seed"],
        data=values["data"],
        name=values["name"],
        out=values["out"],
        allow_pickle=values.get("allow_pickle", False),
        trust_remote_code=values.get("trust_remote_code", False),
    )

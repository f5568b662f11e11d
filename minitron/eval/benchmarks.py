"""Benchmark scores through lm-eval, offline: `evaluate(model, tokenizer, cfg) -> Scores`.

The model goes through lm-eval's own `HFLM` wrapper and `simple_evaluate`, and every task keeps
lm-eval's own definition (prompt format, metrics, normalisation, few-shot split); only the data
source is redirected to the verified local copies of `minitron.data.benchdata`, so our numbers mean
what the community's lm-eval numbers mean (on the splits the copies hold: see that module).

The command `python -m minitron evaluate` wraps this (see `minitron.commands.evaluate`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from minitron.data.benchdata import benchmark_dir
from minitron.errors import MinitronError


class Task(NamedTuple):
    """One benchmark we score, as lm-eval names it."""

    data: str
    """Our offline copy of its data (a `minitron.data.benchdata` folder)."""
    metric: str
    """The metric we quote first: the papers' choice for that task."""
    config: str
    """Where lm-eval keeps its configuration, inside lm-eval's own `tasks/` folder."""


TASKS = {
    "hellaswag": Task("hellaswag", "acc_norm", "hellaswag"),
    "piqa": Task("piqa", "acc_norm", "piqa"),
    "winogrande": Task("winogrande", "acc", "winogrande"),
    "arc_easy": Task("ai2_arc", "acc", "arc"),
    "arc_challenge": Task("ai2_arc", "acc_norm", "arc"),
    "mmlu": Task("mmlu", "acc", "mmlu/default"),
    "lambada_openai": Task("lambada_openai", "acc", "lambada"),
}
ALL_TASKS = tuple(TASKS)
#: lm-eval's seeds (Python, NumPy, torch, few-shot sampling): all set from `EvalConfig.seed`.
_SEEDS = ("random_seed", "numpy_random_seed", "torch_random_seed", "fewshot_random_seed")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how."""

    tasks: tuple[str, ...] = ALL_TASKS
    """lm-eval task names; see `TASKS` (MMLU is the 57-subject group, scored as lm-eval weights it)."""
    limit: int | None = None
    """At most this many items per task (per subject for MMLU), the first ones in lm-eval's order;
    None evaluates the full split. Limited scores say so in every table."""
    num_fewshot: int | None = None
    """Few-shot examples per item; None keeps each task's default (0 for all of `TASKS`)."""
    batch_size: int = 16
    """Requests per forward pass."""
    dtype: str = "auto"
    """`auto`: bf16 on a GPU or a CPU with native bf16, else fp32; or `float32` / `bfloat16`."""
    seed: int = 1234
    """Seed of lm-eval's few-shot sampling."""
    samples: dict[str, list[int]] | None = None
    """Exact item indices per task instead of `limit` (e.g. items held out from a selection)."""


@dataclass
class Scores:
    """What one evaluation produced: lm-eval's own result mappings plus our settings."""

    results: dict[str, dict[str, Any]]
    """lm-eval's `results`: task -> {"acc,none": ..., "acc_stderr,none": ..., "alias": ...}."""
    n_samples: dict[str, dict[str, int]] = field(default_factory=dict)
    """lm-eval's `n-samples`: task -> {"original": items in the split, "effective": items used}."""
    n_shot: dict[str, int] = field(default_factory=dict)
    """lm-eval's `n-shot`."""
    versions: dict[str, Any] = field(default_factory=dict)
    """lm-eval's task versions."""
    config: dict[str, Any] = field(default_factory=dict)
    """Our `EvalConfig` as a dict, plus the model, dtype, lm-eval version and seconds taken."""

    def headline(self, task: str) -> tuple[str, float | None]:
        """(metric, value) quoted first for `task` (value None when the task is missing)."""
        metric = TASKS[task].metric if task in TASKS else "acc"
        value = self.results.get(task, {}).get(f"{metric},none")
        return metric, (float(value) if isinstance(value, (int, float)) else None)

    @property
    def limited(self) -> bool:
        return self.config.get("limit") is not None or bool(self.config.get("samples"))

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "n-samples": self.n_samples,
            "n-shot": self.n_shot,
            "versions": self.versions,
            "minitron": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scores:
        return cls(
            results=data["results"],
            n_samples=data.get("n-samples", {}),
            n_shot=data.get("n-shot", {}),
            versions=data.get("versions", {}),
            config=data.get("minitron", {}),
        )

    def save(self, path: Path) -> None:
        from minitron.atomic import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Scores:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def check_tasks(tasks: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate task names early (before any model is loaded)."""
    if not tasks:
        raise MinitronError(f"no evaluation task given; choose from {', '.join(ALL_TASKS)}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise MinitronError(
            f"unknown evaluation task {unknown[0]!r}; choose from {', '.join(ALL_TASKS)} (comma-separated)"
        )
    return tuple(dict.fromkeys(tasks))


def check_data(tasks: tuple[str, ...], offline: bool = False) -> None:
    """Verify (fetching unless `offline`) the benchmark data of `tasks`: before any model is loaded,
    so a missing or corrupted asset fails in a second, not after a long load or a long search."""
    for task in check_tasks(tasks):
        benchmark_dir(TASKS[task].data, offline=offline)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set for a block, each restored (or removed again) afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Hugging Face offline mode for the duration of an evaluation, restored afterwards.

    Why: evaluation must never reach the network (the data are local; a Hub lookup would hang or
    fail on an offline machine), but the rest of a run may legitimately download a hub teacher.
    `datasets` and `huggingface_hub` read the switches once at import, so their module constants
    are set too.
    """
    import datasets
    import huggingface_hub.constants as hub_constants

    saved = (
        hub_constants.HF_HUB_OFFLINE,
        datasets.config.HF_HUB_OFFLINE,
        datasets.config.HF_DATASETS_OFFLINE,
    )
    with _environment(dict.fromkeys(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"), "1")):
        hub_constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = (
            datasets.config.HF_DATASETS_OFFLINE
        ) = True
        try:
            yield
        finally:
            (
                hub_constants.HF_HUB_OFFLINE,
                datasets.config.HF_HUB_OFFLINE,
                datasets.config.HF_DATASETS_OFFLINE,
            ) = saved


@functools.cache
def _task_manager(tasks: tuple[str, ...]) -> Any:
    """lm-eval's `TaskManager` over the folders of its task directory that hold `tasks`.

    Why: a default `TaskManager` scans every task YAML lm-eval ships (about 5 s, and
    `simple_evaluate` builds one of its own unless given one); these folders take a fraction of one.
    """
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    root = Path(lm_eval.tasks.__file__).parent
    folders = sorted({str(root / TASKS[t].config) for t in check_tasks(tasks)})
    return TaskManager(include_defaults=False, include_path=folders)


def build_tasks(tasks: tuple[str, ...], offline: bool = False) -> list[Any]:
    """lm-eval Task/Group objects from lm-eval's own configs, with the data source made local.

    Built through lm-eval's task factory so that groups (MMLU: 4 subgroups, 57 subjects) get the
    same override on every member and keep lm-eval's own aggregation.
    """
    from lm_eval.tasks._factory import TaskFactory

    from minitron.data.assets import cache_dir
    from minitron.data.benchdata import BENCHMARKS

    index = dict(_task_manager(tuple(tasks)).task_index)
    factory = TaskFactory()
    built = []
    for task in check_tasks(tasks):
        bench = BENCHMARKS[TASKS[task].data]
        folder = benchmark_dir(bench.name, offline=offline)
        # Only the source changes: the split names our copy lacks are switched off, so lm-eval
        # evaluates the split that exists (validation for ARC, whose published scores use test),
        # and the datasets cache stays inside our cache directory.
        overrides: dict[str, Any] = {
            "dataset_path": str(folder),
            "dataset_kwargs": {"cache_dir": str(cache_dir() / "hf-datasets")},
        }
        for key, split in (("training_split", "train"), ("validation_split", "validation"),
                           ("test_split", "test")):  # fmt: skip
            if split not in bench.splits:
                overrides[key] = None
        built.append(factory.build(index[task], overrides=overrides, registry=index))
    return built


def _torch_dtype(name: str, device: Any) -> Any:
    import torch

    from minitron.runtime import use_bf16

    if name == "auto":
        return torch.bfloat16 if use_bf16(device, None) else torch.float32
    if name in ("float32", "bfloat16"):
        return getattr(torch, name)
    raise MinitronError(f"unknown evaluation dtype {name!r}; use auto, float32 or bfloat16")


def serial_bootstrap() -> contextlib.AbstractContextManager[None]:
    """lm-eval's bootstrap standard errors computed in this process, restored afterwards.

    Why: unless `DISABLE_MULTIPROC` is set, lm-eval draws them in `multiprocessing.Pool(cpu_count())`,
    which forks one child per CPU of the *host* (not per core this job was given) out of a process
    that holds torch's and often Ray's threads. A fork taken while another thread holds a lock can
    leave a child stuck forever, and the evaluation with it: a CI run hung that way for an hour. The
    serial loop draws the same 1,000 resamples (lm-eval seeds each chunk by its index) in well under
    a second for our sample counts.
    """
    return _environment({"DISABLE_MULTIPROC": "1"})


def evaluate(
    model: Any,
    tokenizer: Any,
    cfg: EvalConfig = EvalConfig(),
    offline: bool = False,
    progress_file: Path | None = None,
) -> Scores:
    """Score an in-memory causal LM on `cfg.tasks` with lm-eval; the model itself is not modified.

    Missing benchmark data are fetched first, unless `offline` (then they are an error). lm-eval's
    requests are counted as progress (`minitron.progress`): lines in a log, and `progress_file`.
    """
    import lm_eval
    import lm_eval.models.huggingface
    import torch
    from lm_eval.models.huggingface import HFLM

    from minitron.progress import counting_bars

    check_data(cfg.tasks, offline=offline)
    device = next(model.parameters()).device
    dtype = _torch_dtype(cfg.dtype, device)
    if dtype != next(model.parameters()).dtype:
        model = copy.deepcopy(model).to(dtype)
    model.eval()
    _quiet_lm_eval()
    start = time.perf_counter()
    bars = counting_bars(lm_eval.models.huggingface, "lm-eval", progress_file)
    with hub_offline(), serial_bootstrap(), torch.no_grad(), bars:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)
        specs = build_tasks(cfg.tasks, offline=True)
        which = {name: getattr(cfg, name) for name in ("num_fewshot", "limit", "samples")}
        seeds = dict.fromkeys(_SEEDS, cfg.seed)
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=specs,
            task_manager=_task_manager(tuple(cfg.tasks)),
            log_samples=False,
            bootstrap_iters=1000,
            **which,
            **seeds,
        )
    if out is None:  # only on non-zero ranks of a distributed run
        raise MinitronError("lm-eval returned no results")
    results = {k: v for k, v in out["results"].items()}
    results.update(out.get("groups", {}))
    return Scores(
        results=results,
        n_samples=dict(out.get("n-samples", {})),
        n_shot=dict(out.get("n-shot", {})),
        versions=dict(out.get("versions", {})),
        config={
            **asdict(cfg),
            "tasks": list(cfg.tasks),
            "dtype": str(dtype).replace("torch.", ""),
            "device": str(device),
            "lm_eval": lm_eval.__version__,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )


def evaluate_path(
    spec: str,
    cfg: EvalConfig = EvalConfig(),
    device: str | None = None,
    *,
    cache: bool = False,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress_file: Path | None = None,
) -> Scores:
    """Load a checkpoint directory or teacher name (see `load_teacher`) and `evaluate` it
    (`progress_file`: see `evaluate`).

    With `cache`, the scores are kept in `<cache>/evals/` and reused: a teacher is scored once per
    content and settings (the key covers its weights' `model_fingerprint`, the evaluation
    settings, the lm-eval version and the benchmark data digests).
    """
    from minitron.atomic import write_json
    from minitron.model.teacher import load_teacher
    from minitron.runtime import resolve_device

    check_data(cfg.tasks)
    dev = resolve_device(device)
    dtype = _torch_dtype(cfg.dtype, dev)
    loaded = load_teacher(
        spec, dtype=dtype, device=dev, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    path = _cache_path(loaded.model, cfg, dtype, dev) if cache else None
    if path is not None and path.exists():
        scores = Scores.load(path)
        scores.config["cached"] = str(path)
        return scores
    scores = evaluate(loaded.model, loaded.tokenizer, cfg, progress_file=progress_file)
    scores.config["model"] = spec
    if path is not None:
        write_json(path, scores.to_json())
    return scores


def _cache_path(model: Any, cfg: EvalConfig, dtype: Any, device: Any) -> Path:
    import hashlib

    import lm_eval

    from minitron.data.assets import cache_dir
    from minitron.data.benchdata import BENCHMARKS
    from minitron.model.fingerprint import model_fingerprint

    key_data = {
        "model": model_fingerprint(model),
        "eval": {**asdict(cfg), "tasks": list(cfg.tasks), "dtype": str(dtype), "device": device.type},
        "lm_eval": lm_eval.__version__,
        "data": {t: BENCHMARKS[TASKS[t].data].digest for t in cfg.tasks},
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir() / "evals" / f"{key}.json"


def _quiet_lm_eval() -> None:
    """lm-eval logs every task and request at INFO; our tables say what matters."""
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)

"""The resolved settings of one search run (what `config.json` in the run directory holds)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SAMPLERS = ("tpe", "nsga2", "random", "grid")
SCHEDULERS = ("none", "asha")
#: Benchmarks of the default run: sized so a teacher + 2 winners take a few minutes on 2 CPU cores.
#: MMLU (57 subjects) is left out by default: at 100M parameters it scores at chance (25 %).
DEFAULT_EVAL_TASKS = ("hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai")
DEFAULT_EVAL_LIMIT = 100


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
    trials: int = 8
    """Candidates to probe (Ray Tune trials); duplicates and infeasible suggestions cost none."""
    probe_tokens: int = 16384
    """Training tokens per probe (the same seeded batches for every candidate)."""
    probe_top_k: int = 64
    """Teacher logits kept per position for probes (computed once, shared by every trial)."""
    probe_lr: float = 3e-4
    """Peak learning rate of probes."""
    top_k: int = 2
    """Winners retrained fully."""
    retrain_tokens: int = 32768
    """Training tokens per winner (teacher online, full distribution)."""
    retrain_lr: float = 2e-4
    seq_len: int = 256
    """Tokens per packed sequence everywhere."""
    batch_size: int = 4
    """Sequences per optimizer step for probes and retraining."""
    eval_sequences: int = 16
    """Validation sequences for zero-shot, probe and final losses (the same ones for all)."""
    calibration_samples: int = 128
    """Calibration sequences for width importance."""
    depth: str = "block"
    """How layers are dropped (see minitron.selection)."""
    depth_accuracy_items: int = 200
    """Winogrande items per block removal when `depth` is `block_accuracy`."""
    cpus_per_trial: float = 2.0
    gpus_per_trial: float = 0.0
    concurrency: int = 1
    """Trials run at once."""
    sampler: str = "tpe"
    scheduler: str = "none"
    seed: int = 0
    name: str = ""
    out: str = "results"
    address: str | None = None
    """Ray cluster to attach to (`auto` or host:port); None starts a local Ray."""
    dashboard_host: str = "127.0.0.1"
    allow_pickle: bool = False
    """Load a teacher whose weights are pickle files (with `weights_only=True`); refused otherwise."""
    trust_remote_code: bool = False
    """Run code shipped with a teacher checkpoint (never by default)."""
    eval_tasks: tuple[str, ...] = DEFAULT_EVAL_TASKS
    """lm-eval tasks scored for the teacher and every winner (empty: no benchmarks)."""
    eval_limit: int | None = DEFAULT_EVAL_LIMIT
    """Items per benchmark task (per subject for MMLU); None scores the full sets."""
    eval_fewshot: int | None = None
    """Few-shot examples per item; None keeps each task's default (0)."""

    def teacher_options(self) -> dict[str, bool]:
        """The safety switches every `load_teacher` call of this run passes on."""
        return {"allow_pickle": self.allow_pickle, "trust_remote_code": self.trust_remote_code}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> SearchSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        if "eval_tasks" in kept:
            kept["eval_tasks"] = tuple(kept["eval_tasks"])
        return cls(**kept)

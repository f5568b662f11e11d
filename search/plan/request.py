"""What a user asks of a search (`SearchRequest`): every option of `search.py` and keyword of
`search.api.run`, as written, with its default. `search.plan.spec.resolve` checks it and turns it
into the run's specification; the command line only maps flags onto it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minitron.budget import format_count
from minitron.data.generated import GenerationConfig
from minitron.data.mix import DEFAULT_DATA
from minitron.eval.loss import TEST_SEQUENCES, VALIDATION_SEQUENCES
from minitron.export.gguf_file import DEFAULT_QUANTS
from minitron.importance.scores import ImportanceConfig
from search.plan.settings import DEFAULT_EVAL_LIMIT, DEFAULT_EVAL_TASKS, SearchPlan, SearchSettings

_PLAN = SearchPlan()
_RETRAIN_TOKENS = SearchSettings(budget=0, space="", teacher="").retrain.tokens


@dataclass(frozen=True)
class SearchRequest:
    """What a user asks of a search: every option of `search.py` (`--trials 8` is `trials=8`),
    as the Python API takes them. Values are as a user writes them (`budget="70M"`,
    `retrain_tokens="64k"`, `eval="hellaswag,piqa"`); `None` takes the default that depends on the
    rest (the space's, or a budget range's). `resolve` turns it into a `RunSpec`."""

    budget: str | int | None = None
    """Target parameter count (`70M`, `4.5B`, `900k`, 4500000000) or a range `LOW:HIGH`
    (`50M:110M`), searched as a Pareto front."""
    space: str | None = None
    """Search space: a YAML file or the name of one in `spaces/`; None: the shipped space of the
    smallest teacher at least 1.25x the budget."""
    teacher: str | None = None
    """Embedded name, checkpoint directory, `.gguf` file or hub id; None: the space's teacher."""
    data: str = DEFAULT_DATA
    """`mix` (embedded corpora and the teacher's samples, with an out-of-domain test), one corpus,
    or several with weights (`wiki-en=0.6,notes.jsonl=0.4`; weight 0: test only)."""
    teacher_samples: int = GenerationConfig.documents
    """Samples drawn from the teacher for a mix's `teacher-samples` part (cached per teacher)."""
    sample_tokens: int = GenerationConfig.max_new_tokens
    """Tokens per teacher sample at most."""
    trials: int = _PLAN.trials
    """Candidates to probe (Ray Tune trials)."""
    overhead: float = _PLAN.overhead
    """Probe tokens of all trials ÷ retraining tokens of all winners."""
    max_not_kept: float = _PLAN.max_not_kept
    """The largest share of all tokens that may go to candidates that are not kept (1: no cap)."""
    probe_tokens: str | int | None = None
    """Training tokens of a full probe; None: the most the overhead and the cap pay for."""
    rungs: int | None = None
    """Validations per probe at 1, 2, 4, ... times the first (ASHA's rungs); None: 4, or 1 with a
    budget range."""
    probe_top_k: int = _PLAN.probe_top_k
    """Teacher logits kept per position for probes (and cached retraining)."""
    sampler: str = str(_PLAN.sampler)
    """Optuna sampler: tpe, nsga2, random or grid."""
    scheduler: str | None = None
    """`asha` or `none`; None: asha for one budget, none for a range."""
    objective: str = str(_PLAN.objective)
    """With a budget range, what the front trades probe loss against: `params` or `latency`."""
    latency_runtime: str = str(_PLAN.latency_runtime)
    """`pytorch`, or `llama.cpp[:QUANT]` (needs the llamacpp extra)."""
    top_k: int | None = None
    """Winners to retrain (0: only rank); None: the space's, or 3 budget points along a range."""
    retrain_tokens: str | int = format_count(_RETRAIN_TOKENS)
    """Training tokens per winner (its probe's included when it continues from it)."""
    fresh_winners: bool = False
    """Retrain winners from their pruned weights instead of continuing each from its probe."""
    retrain_teacher: str = str(_PLAN.retrain_teacher)
    """`online` (the teacher runs on every batch) or `cached` (its top-k logits, computed once)."""
    depth: str = str(_PLAN.depth)
    """Which layers a shallower candidate drops (`block`, `block_accuracy`, ...)."""
    layer_blocks: int | None = None
    """Contiguous blocks of least removal loss a shallower shape may drop; None: the space's."""
    depth_accuracy_items: int = _PLAN.depth_accuracy_items
    """Winogrande items per block removal with `depth="block_accuracy"`."""
    seq_len: int | None = None
    """Tokens per sequence for calibration, training and evaluation; None: 256 on CPUs, on GPUs
    4096 or the teacher's context if shorter (`search.plan.geometry`)."""
    global_batch: int | None = None
    """Sequences per optimizer step, probes and retraining alike; None: 4 on CPUs, 256k tokens
    on GPUs."""
    micro_batch: int | None = None
    """Sequences per forward and backward pass (per worker); None: the whole batch on CPUs, on GPUs
    the largest that the memory plan fits."""
    seed: int = 0
    """Seed of sampling, probe batches and training."""
    calibration_samples: int = ImportanceConfig.num_samples
    """Calibration sequences for importance."""
    eval_sequences: int = VALIDATION_SEQUENCES
    """Validation sequences for the zero-shot, probe and final losses."""
    test_sequences: int = TEST_SEQUENCES
    """Test sequences for the teacher's and every winner's test loss (each part of a mix: half)."""
    eval: str | Sequence[str] = ",".join(DEFAULT_EVAL_TASKS)
    """Benchmarks for the teacher and every winner: task names, `all`, or `none`."""
    eval_limit: str | int | None = DEFAULT_EVAL_LIMIT
    """Items per task; `full` (or None) scores the whole sets."""
    eval_fewshot: int | None = None
    """Few-shot examples per item (None: 0)."""
    gguf: str | Sequence[str] = ",".join(DEFAULT_QUANTS)
    """GGUF files written beside each winner (`f16,q8_0`); `none` skips them."""
    allow_pickle: bool = False
    """Load a teacher whose weights are pickle files (with `weights_only=True`)."""
    trust_remote_code: bool = False
    """Run Python code shipped with the teacher checkpoint."""
    cpus_per_trial: float | None = None
    """CPUs per trial; None: all of this machine's, or its CPUs per GPU."""
    gpus_per_trial: float | None = None
    """GPUs per trial; None: 1 where there are GPUs, else 0."""
    concurrency: int | None = None
    """Trials at once; None: as many as the local resources fit."""
    retrain_workers: int | None = None
    """Ray Train workers per winner's retraining (FSDP2); None: 1."""
    trial_memory: float | None = None
    """GiB one trial has, for the memory plan; None: its share of this machine."""
    address: str | None = None
    """An existing Ray cluster (`auto` or host:port); None: a local Ray."""
    dashboard_host: str | None = None
    """Interface of the local Ray dashboard; None: 127.0.0.1."""
    out: str = "results"
    """Parent folder of run directories."""
    name: str | None = None
    """Run directory name; None: date, time and budget."""

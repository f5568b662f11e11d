"""The command line of `search.py`: every option, its help and its default.

Defaults come from the settings dataclasses (`search.plan.settings` and the library configs they are
made of), so the command line and the library never disagree.
"""

from __future__ import annotations

import argparse

from minitron.data.tokens import SEQ_LEN
from minitron.eval.benchmarks import ALL_TASKS
from minitron.export.gguf_file import QUANTS
from minitron.importance.selection import DEPTH_METHODS
from search.plan.request import SearchRequest
from search.plan.resources import Resources
from search.plan.settings import (
    RANGE_RUNGS,
    RANGE_WINNERS,
    Objective,
    Sampler,
    Scheduler,
    SearchPlan,
    TeacherMode,
)
from search.plan.space import DEFAULT_SPACE_NAME


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, except where there is none to show (None: its help
    says what decides it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """Every option; each one's destination is the `SearchRequest` field of the same name."""
    d, plan = SearchRequest(), SearchPlan()  # the defaults, each kept in one place
    parser = argparse.ArgumentParser(
        prog="search.py",
        description="Search pruned architectures of a teacher LLM that fit a parameter budget "
        "(Minitron: activation-guided structured pruning + knowledge distillation), probe them with "
        "Ray Tune + Optuna, retrain the winners and write a report.",
        formatter_class=_Formatter,
    )
    what = parser.add_argument_group("what to search")
    what.add_argument(
        "--budget",
        help="target parameter count, e.g. 70M, 4.5B, 900k or 4500000000; or a range LOW:HIGH, e.g. "
        "50M:110M, searched as a Pareto front of probe loss against --objective (required unless --resume)",
    )
    what.add_argument(
        "--space",
        default=None,
        help="search space: a YAML file, or the name of one in spaces/ (default: chosen by --budget, "
        f"the shipped space of the smallest teacher at least 1.25x the budget; {DEFAULT_SPACE_NAME} at 70M)",
    )
    what.add_argument(
        "--teacher",
        default=None,
        help="teacher: an embedded name (smollm2-135m), a checkpoint directory, a .gguf "
        "file or a hub id (default: the space's teacher)",
    )
    what.add_argument(
        "--data",
        default=d.data,
        help="data for calibration, probes, validation and retraining: `mix` (embedded corpora and the "
        "teacher's own samples, with an out-of-domain test), one corpus (wiki-en, narrative-en, "
        "code-py, dialogue-en, speeches-en, a .txt/.jsonl file or a directory of them), or several "
        "with weights: wiki-en=0.6,notes.jsonl=0.4,teacher-samples=0.2 (weight 0: test only)",
    )
    what.add_argument(
        "--teacher-samples",
        type=int,
        default=d.teacher_samples,
        help="samples drawn from the teacher (temperature 1) for a mix's teacher-samples part, once per "
        "teacher and setting (cached)",
    )
    what.add_argument(
        "--sample-tokens",
        type=int,
        default=d.sample_tokens,
        help="tokens per teacher sample at most",
    )
    how = parser.add_argument_group("search")
    how.add_argument("--trials", type=int, default=d.trials, help="candidates to probe (Ray Tune trials)")
    how.add_argument(
        "--overhead",
        type=float,
        default=d.overhead,
        help="what the search may cost: probe tokens of all trials / retraining tokens of all winners; "
        "the probe length follows from it and the search stops once it is spent",
    )
    how.add_argument(
        "--max-not-kept",
        type=float,
        default=d.max_not_kept,
        help="when winners continue from their probes: the largest share of all tokens trained that may "
        "go to candidates that are not kept (the probes are sized and the search stops to stay within it; "
        "1: no cap)",
    )
    how.add_argument(
        "--probe-tokens",
        default=None,
        help="training tokens of a full probe (default: the most --overhead pays for)",
    )
    how.add_argument(
        "--rungs",
        type=int,
        default=None,
        help=f"validations per probe at 1, 2, 4, ... times the first (where ASHA compares trials; default "
        f"{plan.rungs}, with a budget range {RANGE_RUNGS})",
    )
    how.add_argument(
        "--probe-top-k",
        type=int,
        default=d.probe_top_k,
        help="teacher logits kept per position for probes",
    )
    how.add_argument("--sampler", choices=Sampler.names(), default=d.sampler, help="Optuna sampler")
    how.add_argument(
        "--scheduler",
        choices=Scheduler.names(),
        default=None,
        help=f"asha: successive halving (the better half of the probes go on at each rung); none: every "
        f"probe runs to the end (default {plan.scheduler}; none with a budget range, whose candidates of "
        "different sizes must be compared after equal training)",
    )
    how.add_argument(
        "--objective",
        choices=Objective.names(),
        default=d.objective,
        help="with a budget range, what the front trades probe loss against: the parameter count, or the "
        "latency of one sequence measured on the trial's device",
    )
    how.add_argument(
        "--latency-runtime",
        default=d.latency_runtime,
        metavar="RUNTIME",
        help="where latencies and speed-ups are measured: pytorch (default), or llama.cpp[:QUANT] (each "
        "candidate written as a GGUF file, q8_0 unless QUANT says, and timed in llama.cpp; needs the "
        "llama-cpp-python extra)",
    )
    how.add_argument(
        "--top-k",
        type=int,
        default=None,
        help=f"winners to retrain (default: the space's top_k; 0: only rank the candidates); with a budget "
        f"range, the budget points spread evenly over it, each retraining the best candidate that fits "
        f"it (default {RANGE_WINNERS})",
    )
    how.add_argument("--retrain-tokens", default=d.retrain_tokens, help="training tokens per winner")
    how.add_argument(
        "--fresh-winners",
        action="store_true",
        help="retrain winners from their pruned weights (cosine probes and retraining, the recipe before "
        "2026-12-03) instead of continuing each from its probe (the default: probes stay at the peak "
        "learning rate, the retraining decays from where a full probe ends)",
    )
    how.add_argument(
        "--retrain-teacher",
        choices=TeacherMode.names(),
        default=d.retrain_teacher,
        help="cached: winners train on the teacher's cached top-k logits (computed once, fast); online: "
        "the teacher runs on every batch (for retraining too long to cache)",
    )
    how.add_argument(
        "--depth",
        choices=DEPTH_METHODS,
        default=d.depth,
        help="which layers a shallower candidate drops: the contiguous block costing the least loss "
        "(block) or the least Winogrande accuracy (block_accuracy, slower), per-layer loss, "
        "Block Importance, or the last layers",
    )
    how.add_argument(
        "--layer-blocks",
        type=int,
        default=None,
        metavar="N",
        help="search which layers a shallower candidate drops: each of the N contiguous blocks of "
        "least measured removal loss is a candidate of its own (label suffix -b1, -b2, ...); "
        "default: the space's layer_blocks (1: only the least, Minitron's rule)",
    )
    how.add_argument(
        "--depth-accuracy-items",
        type=int,
        default=d.depth_accuracy_items,
        help="Winogrande items scored per block removal with --depth block_accuracy",
    )
    how.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help=f"tokens per sequence for calibration, training and evaluation (default: {SEQ_LEN} on CPUs; "
        "on GPUs 4096, or the teacher's context if shorter)",
    )
    how.add_argument(
        "--global-batch",
        type=int,
        default=None,
        help="sequences per optimizer step, for probes and retraining alike (default: 4 on CPUs; on "
        "GPUs as many as make 256k tokens)",
    )
    how.add_argument(
        "--micro-batch",
        type=int,
        default=None,
        help="sequences per forward and backward pass (per worker): a step accumulates the gradients "
        "of global-batch / micro-batch passes (default: the whole batch on CPUs; on GPUs the largest "
        "the memory plan fits)",
    )
    how.add_argument("--seed", type=int, default=d.seed, help="seed of sampling, probe batches and training")
    how.add_argument(
        "--calibration-samples",
        type=int,
        default=d.calibration_samples,
        help="calibration sequences (of --seq-len tokens) for importance",
    )
    how.add_argument(
        "--eval-sequences",
        type=int,
        default=d.eval_sequences,
        help="validation sequences (of --seq-len tokens) for zero-shot, probe and final losses "
        "(the final test loss reads its own split)",
    )
    how.add_argument(
        "--test-sequences",
        type=int,
        default=d.test_sequences,
        help="test sequences (of --seq-len tokens) behind the teacher's and every winner's test loss "
        "(each part of a mix reads half as many)",
    )
    bench = parser.add_argument_group("benchmarks (lm-eval, offline)")
    bench.add_argument(
        "--eval",
        default=d.eval,
        help=f"tasks scored for the teacher and every winner: comma-separated from {', '.join(ALL_TASKS)}; "
        "`all` for every one, `none` to skip",
    )
    bench.add_argument(
        "--eval-limit",
        default=str(d.eval_limit),
        help="items per task (per subject for mmlu); `full` scores the whole sets",
    )
    bench.add_argument(
        "--eval-fewshot", type=int, default=None, help="few-shot examples per item (default: 0)"
    )
    bench.add_argument(
        "--gguf",
        default=d.gguf,
        help=f"GGUF files for llama.cpp written beside each winner, comma-separated from "
        f"{', '.join(QUANTS)}; `none` to skip",
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
        "--retrain-workers",
        type=int,
        default=None,
        help="Ray Train workers per winner's retraining (FSDP2: data-parallel with sharded weights, "
        "gradients and optimizer state), each with a trial's resources (default 1: one process)",
    )
    res.add_argument(
        "--trial-memory",
        type=float,
        default=None,
        help="GiB of memory one trial has, for the memory plan (default: its share of this machine's GPU, "
        "or of its RAM on CPUs; give it to plan for other machines, e.g. 80 for an H100, or with --address)",
    )
    res.add_argument(
        "--address",
        default=None,
        help="attach to a running Ray cluster (`auto` or host:port) instead of starting one",
    )
    res.add_argument(
        "--dashboard-host",
        default=None,
        help=f"interface the local Ray dashboard binds to (default {Resources().dashboard_host}; anything "
        "but localhost is warned about)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=d.out, help="parent folder of run directories")
    out.add_argument(
        "--name", default=None, help="run directory name, one folder name (default: date, time and budget)"
    )
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

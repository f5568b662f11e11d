"""`python -m minitron distill`: retrain a saved student by distillation from a teacher.

    python -m minitron distill --student results/pruned-69m --teacher smollm2-135m \\
        --tokens 200000 --out results/distilled-69m

Runs the full-retraining path (teacher online, full distribution), prints the validation loss
before and after and the test loss after, and resumes when `--out` holds a checkpoint of the same
job. The work is `minitron.api.distill`; this reads its flags.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from minitron import api
from minitron.commands.common import DATA_HELP, add_common_options, api_defaults, run_command

#: `--bf16`'s words and the `bf16` they give the API.
BF16 = {"auto": None, "on": True, "off": False}


def add_training_options(parser: argparse.ArgumentParser, d: dict[str, Any]) -> None:
    """The retraining's schedule and placement flags that `distill` and `correct` share, with the
    defaults `d` of their API function."""
    parser.add_argument(
        "--batch-size", type=int, default=d["batch_size"], help="sequences per optimizer step"
    )
    parser.add_argument(
        "--micro-batch",
        type=int,
        default=d["micro_batch"],
        help="sequences per forward and backward pass; a step accumulates the gradients of "
        "batch-size / micro-batch of them (default: the whole batch at once)",
    )
    parser.add_argument("--eval-every", type=int, default=d["eval_every"], help="steps between validations")
    parser.add_argument(
        "--eval-sequences", type=int, default=d["eval_sequences"], help="validation sequences per validation"
    )
    parser.add_argument(
        "--test-sequences",
        type=int,
        default=d["test_sequences"],
        help="test sequences behind the final test loss (each part of a mix: half as many)",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=d["checkpoint_every"], help="steps between checkpoints"
    )
    parser.add_argument("--seed", type=int, default=d["seed"], help="seed of the data order and training")
    bf16 = next(word for word, value in BF16.items() if value is d["bf16"])
    parser.add_argument("--bf16", choices=list(BF16), default=bf16, help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=d["threads"], help="CPU threads (default: torch's)")
    parser.add_argument(
        "--device", default=d["device"], help="cpu, cuda, cuda:1, ... (default: cuda if present)"
    )


def build_parser() -> argparse.ArgumentParser:
    d = api_defaults(api.distill)
    parser = argparse.ArgumentParser(
        prog="python -m minitron distill",
        description="Distill a saved student from a teacher (full retraining, resumable).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--student", required=True, help="student checkpoint folder (e.g. from python -m minitron prune)"
    )
    parser.add_argument("--tokens", required=True, help="training tokens, e.g. 200k or 2M")
    parser.add_argument("--out", required=True, help="folder for checkpoints and the final model")
    parser.add_argument("--overwrite", action="store_true", help="start over even if --out holds another job")
    add_common_options(parser, DATA_HELP, d)
    parser.add_argument("--lr", type=float, default=d["lr"], help="peak learning rate")
    parser.add_argument(
        "--min-lr", type=float, default=d["min_lr"], help="final learning rate of the cosine decay"
    )
    parser.add_argument(
        "--ce-weight", type=float, default=d["ce_weight"], help="weight of next-token cross-entropy"
    )
    parser.add_argument(
        "--kd-weight", type=float, default=d["kd_weight"], help="weight of the KL to the teacher"
    )
    parser.add_argument("--temperature", type=float, default=d["temperature"], help="KD softmax temperature")
    parser.add_argument("--intermediate", action="store_true", help="add the hidden-state cosine loss")
    add_training_options(parser, d)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv, api.distill)


def run_parsed(parser: argparse.ArgumentParser, argv: list[str] | None, function: Callable[..., Any]) -> int:
    """Parse `argv` and call the API `function` with every flag but --debug (--bf16 as a bool or
    None), under `run_command`."""
    options = vars(parser.parse_args(argv))
    debug = options.pop("debug")
    options["bf16"] = BF16[options["bf16"]]

    def body() -> None:
        function(**options)

    return run_command(body, debug=debug)

"""Teacher correction: `python -m minitron correct --teacher T --tokens N --out DIR`.

When the teacher's original training data is unavailable, Minitron (arXiv 2408.11796) first
fine-tunes the teacher briefly on the distillation corpus, so that its distribution matches the data
the student will see. This is that stage: plain next-token cross-entropy (no KD) with a small
learning rate, through the same resumable retraining as `python -m minitron distill`
(`minitron.api.correct`). Pass the resulting folder as `--teacher` to `prune`, `distill`, `evaluate`
or `search.py`. Off unless you run it.
"""

from __future__ import annotations

import argparse

from minitron import api
from minitron.commands.common import DATA_HELP, add_common_options, api_defaults
from minitron.commands.distill import add_training_options, run_parsed


def build_parser() -> argparse.ArgumentParser:
    d = api_defaults(api.correct)
    parser = argparse.ArgumentParser(
        prog="python -m minitron correct",
        description="Fine-tune a teacher on the distillation corpus (teacher correction).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--tokens", required=True, help="fine-tuning tokens, e.g. 200k")
    parser.add_argument("--out", required=True, help="folder for the corrected teacher")
    parser.add_argument("--overwrite", action="store_true", help="start over even if --out holds another job")
    add_common_options(parser, "the distillation data: " + DATA_HELP, d)
    parser.add_argument(
        "--lr", type=float, default=d["lr"], help="peak learning rate (small: only adapt to the data)"
    )
    parser.add_argument(
        "--min-lr", type=float, default=d["min_lr"], help="final learning rate of the cosine decay"
    )
    add_training_options(parser, d)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv, api.correct)

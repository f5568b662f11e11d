"""Teacher correction: `python -m minitron correct --teacher T --tokens N --out DIR`.

When the teacher's original training data is unavailable, Minitron (arXiv 2408.11796) first
fine-tunes the teacher briefly on the distillation corpus, so that its distribution matches the data
the student will see. This is that stage: plain next-token cross-entropy (no KD) with a small
learning rate, through the same resumable retraining as `python -m minitron distill`. Pass the
resulting folder as `--teacher` to `prune`, `distill`, `evaluate` or `search.py`. Off unless you run it.
"""

from __future__ import annotations

import argparse

from minitron.commands.common import TEACHER_HELP
from minitron.commands.distill import main as distill_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minitron correct",
        description="Fine-tune a teacher on the distillation corpus (teacher correction).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--teacher", default="smollm2-135m", help=TEACHER_HELP)
    parser.add_argument("--tokens", required=True, help="fine-tuning tokens, e.g. 200k")
    parser.add_argument("--out", required=True, help="folder for the corrected teacher")
    parser.add_argument("--data", default="wiki-en", help="the distillation corpus")
    parser.add_argument("--lr", default="2e-5", help="peak learning rate (small: only adapt to the data)")
    args, rest = parser.parse_known_args(argv)
    return distill_main(
        [
            *("--student", args.teacher, "--tokens", args.tokens, "--out", args.out, "--data", args.data),
            *("--kd-weight", "0", "--ce-weight", "1", "--lr", args.lr, "--min-lr", "2e-6"),
            *rest,
        ]
    )

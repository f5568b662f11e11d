"""`python -m minitron prune`: cut one architecture out of a teacher by importance and save it.

    python -m minitron prune --teacher smollm2-135m --out results/pruned-70m \\
        --arch num_hidden_layers=20,hidden_size=432,intermediate_size=1024,num_attention_heads=9

The "I already know the shape I want" path: importance (cached), selection, surgery, the zero-shot
validation loss, and a Hugging Face checkpoint with `pruning.json` beside it. The work is
`minitron.api.prune`; this reads its flags.
"""

from __future__ import annotations

import argparse

from minitron import api
from minitron.commands.common import DATA_HELP, add_common_options, api_defaults, run_command
from minitron.importance.selection import DEPTH_METHODS
from minitron.model.arch_input import parse_arch as parse_arch  # where it always was


def build_parser() -> argparse.ArgumentParser:
    d = api_defaults(api.prune)
    parser = argparse.ArgumentParser(
        prog="python -m minitron prune",
        description="Cut one architecture out of a teacher by importance; save a Hugging Face checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--arch",
        dest="architecture",
        metavar="ARCH",
        required=True,
        help="k=v list of num_hidden_layers, hidden_size, intermediate_size, num_attention_heads "
        "[, num_key_value_heads, head_dim], or a JSON file with those fields",
    )
    parser.add_argument(
        "--out", required=True, help="folder for the pruned checkpoint (must not exist or be empty)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument(
        "--depth", default=str(d["depth"]), choices=DEPTH_METHODS, help="how the layers to drop are chosen"
    )
    parser.add_argument(
        "--block",
        type=int,
        default=d["block"],
        help="with --depth block: drop the contiguous block of the (N+1)-th least measured removal loss "
        "(0: the least; pruning.json lists the measured blocks)",
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=d["calibration_samples"],
        help="calibration sequences for importance",
    )
    parser.add_argument(
        "--eval-sequences",
        default=str(d["eval_sequences"]),
        help="validation sequences for the zero-shot loss, or 'all', or 0 to skip",
    )
    add_common_options(parser, "for calibration and the zero-shot loss: " + DATA_HELP, d)
    return parser


def main(argv: list[str] | None = None) -> int:
    options = vars(build_parser().parse_args(argv))
    debug = options.pop("debug")

    def body() -> None:
        api.prune(**options)

    return run_command(body, debug=debug)

"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M --dry-run                                  # embedded default
    python search.py --space spaces/llama-3.1-8b.yaml --budget 4.5B --dry-run --json

This file only parses arguments and wires the stages together; the work lives in `minitron/`
(library) and `search/` (search-space handling, later Ray Tune and Optuna).
"""

from __future__ import annotations

import argparse
import sys

from minitron.budget import parse_budget
from minitron.corpus import DEFAULT_CORPUS
from minitron.errors import MinitronError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="search.py",
        description="Search pruned architectures of a teacher LLM that fit a parameter budget "
        "(Minitron: activation-guided structured pruning + knowledge distillation).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--budget", required=True, help="target parameter count, e.g. 70M, 4.5B, 900k or 4500000000"
    )
    parser.add_argument(
        "--space", default="smollm2-135m", help="search space: a YAML file, or the name of one in spaces/"
    )
    parser.add_argument(
        "--teacher",
        default=None,
        help="teacher: an embedded name (smollm2-135m), a checkpoint directory, a .gguf "
        "file or a hub id (default: the space's teacher)",
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_CORPUS,
        help="corpus for calibration, probes and validation: wiki-en, a .txt/.jsonl "
        "file or a directory of them (used by the search, not by --dry-run)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the feasible candidates (architecture, parameters, fraction of the "
        "teacher) without loading weights",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: print the candidates as a JSON list of objects with "
        "Hugging Face field names plus params",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def run(args: argparse.Namespace) -> int:
    from minitron.teacher import local_config
    from search.candidates import feasible
    from search.dryrun import check_teacher_matches, render_json, render_table
    from search.space import load_space

    budget = parse_budget(args.budget)
    space = load_space(args.space)
    teacher = args.teacher or space.teacher_name
    if args.json and not args.dry_run:
        raise MinitronError("--json goes with --dry-run")
    if not args.dry_run:
        raise MinitronError(
            "the architecture search itself is not implemented yet; use --dry-run to list the candidates"
        )
    config = local_config(teacher)
    if config is not None:
        check_teacher_matches(space, teacher, config)
    candidates = feasible(space, budget)
    print(render_json(candidates) if args.json else render_table(space, teacher, budget, candidates))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except MinitronError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

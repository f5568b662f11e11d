"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M                                            # the whole search
    python search.py --budget 70M --dry-run                                  # list the candidates
    python search.py --space spaces/llama-3.1-8b.yaml --budget 4.5B --dry-run --json
    python search.py --resume results/<name>                                 # continue a killed run

`search.py` and the `minitron-search` console script both run `main` here: a new run, a `--resume`
or a `--dry-run`. The options map onto a `SearchRequest` (`search.cli.resolve`) and go to the
Python API (`search.api`), which every other way of running a search uses too; a dry run's tables
are drawn by `search.cli.dryrun`.
"""

from __future__ import annotations

import argparse
import sys

from minitron.runtime import quiet_progress_bars_when_logged

quiet_progress_bars_when_logged()  # before any library that draws progress bars is imported

from minitron.commands.common import run_command  # noqa: E402
from minitron.errors import MinitronError  # noqa: E402
from search import api  # noqa: E402
from search.cli.options import build_parser  # noqa: E402
from search.cli.resolve import request_from_args  # noqa: E402
from search.plan.spec import flags  # noqa: E402


def run(args: argparse.Namespace, given: set[str]) -> int:
    if args.json and not args.dry_run:
        raise MinitronError("--json goes with --dry-run")
    if args.resume:
        refused = sorted(given - set(api.RESUMABLE) - {"resume", "debug"})
        if refused:
            raise MinitronError(
                f"--resume continues a run with its saved settings; {flags(refused)} cannot change them "
                f"(only {flags(api.RESUMABLE)} may be given with --resume); start a new run to change them"
            )
        changed = sorted(given & set(api.RESUMABLE))
        note = f" (resources from {flags(changed)})" if changed else ""
        print(f"[search] resuming {args.resume} with its saved settings{note}", flush=True)
        api.resume(args.resume, **{name: getattr(args, name) for name in changed})
        return 0
    request = request_from_args(args)
    if args.dry_run:
        from search.cli.dryrun import dry_run

        return dry_run(request, as_json=args.json)
    api.run(request, overwrite=args.overwrite)
    return 0


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the options actually written on the command line."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = given_options(build_parser(), argv)
    return run_command(lambda: run(args, given), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())

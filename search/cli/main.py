"""minitron-search: find the best pruned + distilled model of a teacher within a parameter budget.

    python search.py --budget 70M                                            # the whole search
    python search.py --budget 70M --dry-run                                  # list the candidates
    python search.py --space spaces/llama-3.1-8b.yaml --budget 4.5B --dry-run --json
    python search.py --resume results/<name>                                 # continue a killed run

`search.py` and the `minitron-search` console script both run `main` here: a new run, a `--resume`
or a `--dry-run`. The options become settings in `search.cli.resolve` and a dry run's tables in
`search.cli.dryrun`; the work lives in `minitron/` (the library) and the rest of `search/` (the
plan, its execution on Ray, the outputs).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from minitron.runtime import quiet_progress_bars_when_logged

quiet_progress_bars_when_logged()  # before any library that draws progress bars is imported

from minitron.commands.common import run_command  # noqa: E402
from minitron.errors import MinitronError  # noqa: E402
from search.cli.options import build_parser  # noqa: E402
from search.cli.resolve import check_retrain_workers, flags, resolve_resources, resolve_settings  # noqa: E402
from search.plan.settings import SETTINGS_FORMAT, SearchSettings  # noqa: E402

#: What `--resume` may change: where the run continues, not what it computes.
RESUMABLE = (
    "cpus_per_trial", "gpus_per_trial", "concurrency", "retrain_workers", "address", "dashboard_host", "debug"
)  # fmt: skip


def resume_settings(args: argparse.Namespace, given: set[str]) -> SearchSettings:
    """The saved settings of the run in --resume, with only the resources changed that were given.

    Every other option would change what the run computes, so it is refused rather than ignored."""
    from search.outputs.rundir import RunDir

    refused = sorted(given - set(RESUMABLE) - {"resume"})
    if refused:
        raise MinitronError(
            f"--resume continues a run with its saved settings; {flags(refused)} cannot change them "
            f"(only {flags(RESUMABLE)} may be given with --resume); start a new run to change them"
        )
    root = Path(args.resume).expanduser()
    run_dir = RunDir(root)
    if not run_dir.is_run():
        raise MinitronError(f"--resume {root}: not a search run directory (no config.json)")
    config = run_dir.load_config()
    if config.get("format") != SETTINGS_FORMAT:
        raise MinitronError(
            f"--resume {root}: the run was made by an earlier version of minitron-search (other data "
            "splits and probe schedule), which this version cannot continue exactly; start a new run"
        )
    saved = SearchSettings.from_json(config["settings"])
    settings = saved.with_resources(resolve_resources(args, saved.resources))
    check_retrain_workers(settings)
    return dataclasses.replace(settings, out=str(root.parent), name=root.name)


def run(args: argparse.Namespace, given: set[str]) -> int:
    if args.json and not args.dry_run:
        raise MinitronError("--json goes with --dry-run")
    from search.run.runner import run_search

    if args.resume:
        settings = resume_settings(args, given)
        changed = sorted(given & set(RESUMABLE) - {"debug"})
        note = f" (resources from {flags(changed)})" if changed else ""
        print(f"[search] resuming {args.resume} with its saved settings{note}", flush=True)
        run_search(settings, resume=True)
        return 0
    if not args.budget:
        raise MinitronError("--budget is required (e.g. --budget 70M), unless --resume RUN_DIR")
    if args.dry_run:
        from search.cli.dryrun import dry_run

        return dry_run(args)
    run_search(resolve_settings(args), overwrite=args.overwrite)
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

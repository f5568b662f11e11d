"""The Python API: a search in one call, with the options as data.

    from search import api

    result = api.run(budget="70M", trials=8)             # the whole search, as `search.py` runs it
    best = result.winners[0]
    print(best.architecture, best.params, best.test_loss, best.path)
    result = api.resume("results/20261207-120000-70M")  # continue a stopped or killed run
    spec = api.plan(budget="4.5B")                       # resolve only: candidates, probe and memory plan

Every keyword is an option of `search.py` with `-` written `_` (`retrain_tokens="128k"`, `top_k=1`;
`search.plan.spec.SearchRequest` lists them with their defaults), checked by the one validation the
command line uses. `run` returns a `SearchResult` (winners with their checkpoint paths, test losses
per domain and benchmark scores, the Pareto front, the report's path). The library's stages alone
are `prune(...)` and `distill(...)` (`minitron.api`), as `python -m minitron prune|distill` runs them.
`search.py`, the `minitron-search` console script and the benches all go through here.

May import: the library, `search.plan`, `search.outputs` and `search.run`; only `search.cli` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minitron.api import distill, prune
from minitron.errors import MinitronError
from search.outputs.result import SearchResult, Winner
from search.outputs.rundir import RunDir
from search.plan.request import SearchRequest
from search.plan.spec import RunSpec, flags, resolve

#: What `resume` may change: where the run continues, not what it computes. (`retrain_workers` is
#: not among them: a winner retrained on several workers starts from its pruned weights, one on a
#: single process continues from its probe, so the count changes what a winner computes.)
RESUMABLE = ("cpus_per_trial", "gpus_per_trial", "concurrency", "address", "dashboard_host")

__all__ = [
    "RESUMABLE",
    "RunSpec",
    "SearchRequest",
    "SearchResult",
    "Winner",
    "distill",
    "plan",
    "prune",
    "resume",
    "run",
]


def _request(request: SearchRequest | None, options: dict[str, Any]) -> SearchRequest:
    if request is not None and options:
        raise TypeError("give either a SearchRequest or keyword options, not both")
    if request is not None:
        return request
    known = set(SearchRequest.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise MinitronError(f"unknown search option {unknown[0]!r}; the options are SearchRequest's fields")
    return SearchRequest(**options)


def plan(request: SearchRequest | None = None, /, **options: Any) -> RunSpec:
    """The run these options would start, resolved and checked as a dry run checks it (no name,
    folder or teacher source), without loading weights or writing anything."""
    return resolve(_request(request, options), dry_run=True)


def run(request: SearchRequest | None = None, /, *, overwrite: bool = False, **options: Any) -> SearchResult:
    """Run a whole search (`search.py --budget ...`); `overwrite` replaces a run directory of the
    same name. Ctrl-C stops it with every finished piece kept for `resume`."""
    from search.run.pipeline import run_search

    spec = resolve(_request(request, options))
    return run_search(spec, overwrite=overwrite)


def resume(run_dir: str | Path, **resources: Any) -> SearchResult:
    """Continue the run in `run_dir` with its saved settings and space; `resources` may change where
    it runs (`RESUMABLE`), nothing else."""
    from search.run.pipeline import run_search

    refused = sorted(set(resources) - set(RESUMABLE))
    if refused:
        raise MinitronError(
            f"--resume continues a run with its saved settings; {flags(refused)} cannot change them "
            f"(only {flags(RESUMABLE)} may be given with --resume); start a new run to change them"
        )
    root = Path(run_dir).expanduser()
    run = RunDir(root)
    if not run.is_run():
        raise MinitronError(f"--resume {root}: not a search run directory (no config.json)")
    spec = RunSpec.resume(root, run.load_config(), SearchRequest(**resources))
    return run_search(spec, resume=True)

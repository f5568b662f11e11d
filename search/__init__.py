"""The search: everything Ray Tune and Optuna, in four packages that import one way
(`tests/test_layering.py`):

    cli      the command line: options, checks of what was typed, the dry run       -> run, outputs, plan
    run      a run's execution on Ray: the stages, trials, latency, winners, benchmarks -> outputs, plan
    outputs  what a run writes and reads back: run directory, records, summary, report -> plan
    plan     what a run will do, decided before anything runs: settings, spaces,
             candidates, the front's strata, the probe and memory plans            -> (the library only)

Runs made before these packages existed pickled objects by their old module names (`search.tuning`,
`search.sampling`, ...) in their Ray Tune experiment and Optuna searcher; `_OldNames` answers
those names with the modules' new homes, so such runs still resume.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

#: The flat modules of the layout before the packages, and where each went.
MOVED = {
    "settings": "plan.settings",
    "space": "plan.space",
    "candidates": "plan.candidates",
    "front": "plan.front",
    "pareto": "plan.pareto",
    "probe_plan": "plan.probe_plan",
    "memory_plan": "plan.memory_plan",
    "records": "outputs.records",
    "summary": "outputs.summary",
    "cards": "outputs.cards",
    "rundir": "outputs.rundir",
    "report": "outputs.report",
    "report_data": "outputs.report_data",
    "report_html": "outputs.report_html",
    "report_plotly": "outputs.report_plotly",
    "report_png": "outputs.report_png",
    "runner": "run.runner",
    "stages": "run.stages",
    "ray_runtime": "run.ray_runtime",
    "tuning": "run.tuning",
    "trial": "run.trial",
    "sampling": "run.sampling",
    "samplers": "run.samplers",
    "progress": "run.progress",
    "latency": "run.latency",
    "winners": "run.winners",
    "winner_job": "run.winner_job",
    "train_workers": "run.train_workers",
    "benchmarks": "run.benchmarks",
    "timebudget": "run.timebudget",
    "options": "cli.options",
    "checks": "cli.checks",
    "dryrun": "cli.dryrun",
}


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`search.<old>` as a module whose attributes are those of `search.<new>` (for unpickling)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> None:
        return None  # a plain module, filled by exec_module

    def exec_module(self, module: types.ModuleType) -> None:
        new = importlib.import_module(f"{__name__}.{MOVED[module.__name__.partition('.')[2]]}")
        module.__getattr__ = lambda name: getattr(new, name)  # type: ignore[method-assign]


if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
    sys.meta_path.append(_OldNames())

"""Sampling architectures with Optuna through Ray Tune.

The space is define-by-run: one `suggest_categorical` per architecture field, then Optuna's own
constraint API marks a suggestion feasible or not (`trial.set_constraint`: ≤ 0 is feasible):
- `budget_band`: how far the parameters lie outside the band around the budget (or around every
  budget of a range), as a fraction of the budget;
- `buildable`: 1 when transformers or GQA would reject the shape, or pruning cannot cut it.

`ArchitectureSearch` wraps Ray's `OptunaSearch` so that no probe is ever spent on an infeasible
suggestion or on an architecture already probed in this study: such suggestions are answered at
once (infeasible: a penalty value with the constraint recorded; duplicate: the known probe loss)
and Optuna is asked again, without creating a Ray trial. The study lives in SQLite inside the run
directory. Everything here is module-level so that Tune can pickle the searcher for resume.

With a budget range the study has two objectives (probe loss, and parameters or latency; Optuna's
TPE and NSGA-II both handle that) and the searcher spreads the trials over the range's strata
(`search.plan.front`): a suggestion is taken only for a stratum with the fewest trials so far (seeded
hand shapes excepted); when the sampler keeps missing those, one of their candidates is enqueued.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from minitron.atomic import write_json
from minitron.model.architecture import ARCH_FIELDS, Architecture, Family, count_params
from search.outputs.records import PROBE_LOSS, ProbeReport
from search.plan.front import Strata
from search.plan.settings import Objective, Sampler
from search.plan.space import SearchSpace
from search.run.samplers import make_sampler

log = logging.getLogger(__name__)

#: Value told to Optuna for an infeasible suggestion (its constraints make it infeasible anyway).
INFEASIBLE_PENALTY = 1e3
#: Suggestions tried in a row without finding a new feasible architecture before giving up.
MAX_REJECTIONS = 5000
#: Suggestions in a row for strata that have had their share before one of the emptiest strata's
#: candidates is enqueued instead.
STRATUM_TRIES = 30


def define_architecture(
    trial: Any,
    axes: dict[str, list[int]],
    teacher: Architecture,
    family: Family,
    budget: int,
    band: float,
    low: int | None = None,
) -> dict[str, Any]:
    """Optuna define-by-run space: sample each field, record the constraints, return derived values.
    `low`: the lower end of a budget range whose upper end is `budget`."""
    values = {name: trial.suggest_categorical(name, choices) for name, choices in axes.items()}
    arch = Architecture(**values)
    params = count_params(family, arch)
    least, most = (low if low is not None else budget) * (1 - band), budget * (1 + band)
    trial.set_constraint("budget_band", max(least - params, params - most) / budget)
    trial.set_constraint("buildable", 1.0 if arch.cut_problems(teacher) else 0.0)
    return {"params": params}


def space_function(
    space: SearchSpace, budget: int, low: int | None = None
) -> functools.partial[dict[str, Any]]:
    return functools.partial(
        define_architecture,
        axes=space.axes(),
        teacher=space.teacher,
        family=space.family,
        budget=budget,
        band=space.band,
        low=low,
    )


def architecture_of(config: dict[str, Any]) -> Architecture:
    """The candidate a trial's config holds (`layer_block` 0 where the space does not search it)."""
    return Architecture.from_mapping(config)


def _tell(study: optuna.Study, trial: Any, *args: Any, **kwargs: Any) -> bool:
    """`study.tell`, False once a grid sampler has no point left (it then calls `study.stop()`)."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise
        return False
    return True


def _feasible(ot_trial: Any) -> bool:
    return all(value <= 0 for value in ot_trial.constraints.values())


class ArchitectureSearch(OptunaSearch):
    """`OptunaSearch` that never hands Tune an infeasible or already-probed architecture."""

    def __init__(
        self,
        *args: Any,
        stats_path: str | None = None,
        strata: Strata | None = None,
        pool: dict[Architecture, int] | None = None,
        seeds: list[Architecture] | None = None,
        search_space: SearchSpace | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.space = search_space
        """The space the candidates come from (how an architecture is enqueued)."""
        self.stats_path = stats_path
        """Where the rejection counts are kept (JSON), for the run's summary."""
        self.known: dict[Architecture, Any] = {}
        """Objective values of finished trials (the probe loss, or a list with the second), by
        architecture."""
        self.pending: dict[str, Architecture] = {}
        """Architectures of trials in flight, by Tune trial id."""
        self.rejected = {"infeasible": 0, "duplicate": 0, "in_flight": 0}
        self.strata = strata
        """With a budget range: the strata the trials are spread over."""
        self.pool = dict(pool or {})
        """The feasible candidates on the grid and their parameters (what a stratum can still offer)."""
        self.seeds = set(seeds or ())
        """Architectures enqueued first (hand shapes): taken whatever their stratum."""
        self.random = random.Random(self._seed)
        if strata is not None:
            self.rejected["stratum_full"] = 0

    def _metrics(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    def _value(self, result: dict[str, Any]) -> Any:
        """The objective value(s) Optuna is told for a finished trial's result."""
        report = ProbeReport.of(result)
        values = [report.objective(m) for m in self._metrics()]
        return values if isinstance(self.metric, list) else values[0]

    def _penalty(self) -> Any:
        return (
            [INFEASIBLE_PENALTY] * len(self.metric) if isinstance(self.metric, list) else INFEASIBLE_PENALTY
        )

    def _has_metric(self, result: dict[str, Any]) -> bool:
        report = ProbeReport.of(result)
        return all(report.objective(m) is not None for m in self._metrics())

    def _open_strata(self) -> tuple[Counter[int], set[int]]:
        """Trials per stratum so far, and the strata that still have an unprobed candidate."""
        assert self.strata is not None
        probed = set(self.known) | set(self.pending.values())
        counts = Counter(self.strata.of(self.pool[a]) for a in probed if a in self.pool)
        return counts, {self.strata.of(p) for a, p in self.pool.items() if a not in probed}

    def _takes(self, arch: Architecture) -> bool:
        """Whether the strata let this (new, feasible) architecture be probed now."""
        if self.strata is None or arch in self.seeds or arch not in self.pool:
            return True
        counts, open_strata = self._open_strata()
        fewest = min((counts[s] for s in open_strata), default=0)
        return counts[self.strata.of(self.pool[arch])] <= fewest

    def _enqueue_emptiest(self) -> None:
        """Enqueue a random unprobed candidate of a stratum with the fewest trials."""
        assert self.strata is not None and self._ot_study is not None
        counts, open_strata = self._open_strata()
        if not open_strata:
            return
        fewest = min(counts[s] for s in open_strata)
        probed = set(self.known) | set(self.pending.values())
        options = sorted(
            a
            for a, p in self.pool.items()
            if a not in probed and self.strata.of(p) in open_strata and counts[self.strata.of(p)] == fewest
        )
        if options:
            choice = self.random.choice(options)
            space = getattr(self, "space", None)  # a searcher pickled before layer blocks has none
            self._ot_study.enqueue_trial(space.point(choice) if space else choice.as_dict())

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        study = self._ot_study
        assert study is not None, "the study is set up in __init__ when a space is given"
        misses = 0
        for _ in range(MAX_REJECTIONS):
            config = super().suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            ot_trial = self._ot_trials.pop(trial_id)
            arch = architecture_of(config)
            if not _feasible(ot_trial):
                answered = _tell(study, ot_trial, self._penalty())
                self.rejected["infeasible"] += 1
            elif arch in self.known:  # answered from the results already known
                answered = _tell(study, ot_trial, self.known[arch])
                self.rejected["duplicate"] += 1
            elif arch in self.pending.values():
                answered = _tell(study, ot_trial, state=optuna.trial.TrialState.FAIL)
                self.rejected["in_flight"] += 1
            elif not self._takes(arch):  # its stratum has had its share: not told as a result
                answered = _tell(study, ot_trial, state=optuna.trial.TrialState.FAIL)
                self.rejected["stratum_full"] += 1
                misses += 1
                if misses >= STRATUM_TRIES:
                    self._enqueue_emptiest()
                    misses = 0
            else:
                self._ot_trials[trial_id] = ot_trial
                self.pending[trial_id] = arch
                self._save_stats()
                return config
            if not answered:
                break
        log.warning("no new feasible architecture to suggest; the search ends")
        self._save_stats()
        return Searcher.FINISHED

    def _save_stats(self) -> None:
        if self.stats_path:
            write_json(Path(self.stats_path), self.rejected)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._has_metric(result):  # a failed trial's last result has `trial_error` instead
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        error = error or bool(result and ProbeReport.of(result).failed)  # Optuna records it as failed
        if trial_id in self._ot_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
        arch = self.pending.pop(trial_id, None)
        if arch is not None and result and not error and self._has_metric(result):
            self.known[arch] = self._value(result)


def make_searcher(
    space: SearchSpace,
    budget: int,
    sampler: Sampler,
    seed: int,
    storage_url: str,
    study_name: str,
    seeds: list[Architecture],
    stats_path: str | None = None,
    low: int | None = None,
    objective: Objective = Objective.PARAMS,
    pool: dict[Architecture, int] | None = None,
) -> ArchitectureSearch:
    """The searcher for one run; `seeds` (feasible known architectures) are evaluated first. With a
    range (`low` given) it has two objectives and spreads trials over `pool`'s strata."""
    storage = optuna.storages.RDBStorage(storage_url)
    points = [space.point(a) for a in seeds]
    metric: Any = PROBE_LOSS
    mode: Any = "min"
    strata = None
    if low is not None:
        metric, mode = [PROBE_LOSS, Objective.parse(objective, "--objective").key], ["min", "min"]
        strata = Strata.over(space, low, budget)
    on_grid = {
        a: p for a, p in (pool or {}).items() if all(getattr(a, f) in space.choices[f] for f in ARCH_FIELDS)
    }
    return ArchitectureSearch(
        space=space_function(space, budget, low),
        metric=metric,
        mode=mode,
        points_to_evaluate=points or None,
        sampler=make_sampler(sampler, space, seed),
        study_name=study_name,
        storage=storage,
        seed=seed,
        stats_path=stats_path,
        strata=strata,
        pool=on_grid,
        seeds=seeds,
        search_space=space,
    )

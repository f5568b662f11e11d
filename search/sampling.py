"""Sampling architectures with Optuna through Ray Tune.

The space is define-by-run: one `suggest_categorical` per architecture field, then Optuna's own
constraint API marks a suggestion feasible or not (`trial.set_constraint`: ≤ 0 is feasible):
- `budget_band`: |params − budget| / budget − band;
- `buildable`: 1 when transformers or GQA would reject the shape, or pruning cannot cut it.

`ArchitectureSearch` wraps Ray's `OptunaSearch` so that no probe is ever spent on an infeasible
suggestion or on an architecture already probed in this study: such suggestions are answered at
once (infeasible: a penalty value with the constraint recorded; duplicate: the known probe loss)
and Optuna is asked again, without creating a Ray trial. The study lives in SQLite inside the run
directory. Everything here is module-level so that Tune can pickle the searcher for resume.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from minitron.atomic import write_json
from minitron.model.architecture import ARCH_FIELDS, Architecture, Family, count_params
from search.samplers import make_sampler
from search.space import SearchSpace

log = logging.getLogger(__name__)

#: Value told to Optuna for an infeasible suggestion (its constraints make it infeasible anyway).
INFEASIBLE_PENALTY = 1e3
#: Suggestions tried in a row without finding a new feasible architecture before giving up.
MAX_REJECTIONS = 5000


def define_architecture(
    trial: Any,
    choices: dict[str, list[int]],
    teacher: Architecture,
    family: Family,
    budget: int,
    band: float,
) -> dict[str, Any]:
    """Optuna define-by-run space: sample each field, record the constraints, return derived values."""
    values = {name: trial.suggest_categorical(name, choices[name]) for name in ARCH_FIELDS}
    arch = Architecture(**values)
    params = count_params(family, arch)
    trial.set_constraint("budget_band", abs(params - budget) / budget - band)
    trial.set_constraint("buildable", 1.0 if arch.cut_problems(teacher) else 0.0)
    return {"params": params}


def space_function(space: SearchSpace, budget: int) -> functools.partial[dict[str, Any]]:
    choices = {name: list(space.choices[name]) for name in ARCH_FIELDS}
    return functools.partial(
        define_architecture,
        choices=choices,
        teacher=space.teacher,
        family=space.family,
        budget=budget,
        band=space.band,
    )


def architecture_of(config: dict[str, Any]) -> Architecture:
    return Architecture(**{name: int(config[name]) for name in ARCH_FIELDS})


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

    def __init__(self, *args: Any, stats_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats_path = stats_path
        """Where the rejection counts are kept (JSON), for the run's summary."""
        self.known: dict[Architecture, float] = {}
        """Probe losses of finished trials, by architecture."""
        self.pending: dict[str, Architecture] = {}
        """Architectures of trials in flight, by Tune trial id."""
        self.rejected = {"infeasible": 0, "duplicate": 0, "in_flight": 0}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        study = self._ot_study
        assert study is not None, "the study is set up in __init__ when a space is given"
        for _ in range(MAX_REJECTIONS):
            config = super().suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            ot_trial = self._ot_trials.pop(trial_id)
            arch = architecture_of(config)
            if not _feasible(ot_trial):
                answered = _tell(study, ot_trial, INFEASIBLE_PENALTY)
                self.rejected["infeasible"] += 1
            elif arch in self.known:  # answered from the results already known
                answered = _tell(study, ot_trial, self.known[arch])
                self.rejected["duplicate"] += 1
            elif arch in self.pending.values():
                answered = _tell(study, ot_trial, state=optuna.trial.TrialState.FAIL)
                self.rejected["in_flight"] += 1
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
        if self.metric in result:  # a failed trial's last result has `trial_error` instead
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        error = error or bool(result and result.get("trial_error"))  # Optuna records it as failed
        if trial_id in self._ot_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
        arch = self.pending.pop(trial_id, None)
        if arch is not None and result and not error and self.metric in result:
            self.known[arch] = float(result[self.metric])


def make_searcher(
    space: SearchSpace,
    budget: int,
    sampler: str,
    seed: int,
    storage_url: str,
    study_name: str,
    seeds: list[Architecture],
    stats_path: str | None = None,
) -> ArchitectureSearch:
    """The searcher for one run; `seeds` (feasible known architectures) are evaluated first."""
    storage = optuna.storages.RDBStorage(storage_url)
    points = [a.as_dict() for a in seeds]
    return ArchitectureSearch(
        space=space_function(space, budget),
        metric="probe_loss",
        mode="min",
        points_to_evaluate=points or None,
        sampler=make_sampler(sampler, space, seed),
        study_name=study_name,
        storage=storage,
        seed=seed,
        stats_path=stats_path,
    )

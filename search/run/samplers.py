"""Optuna samplers by name: the one registry the command line and the searcher both use.

Each entry builds its sampler from the search space and the seed; optuna is imported only when a
sampler is built, so listing the names costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minitron.errors import MinitronError

if TYPE_CHECKING:
    from search.plan.space import SearchSpace


def _tpe(space: SearchSpace, seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _nsga2(space: SearchSpace, seed: int) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


def _random(space: SearchSpace, seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(space: SearchSpace, seed: int) -> Any:
    import optuna

    return optuna.samplers.GridSampler(space.axes(), seed=seed)


SAMPLERS: dict[str, Callable[[SearchSpace, int], Any]] = {
    "tpe": _tpe,
    "nsga2": _nsga2,
    "random": _random,
    "grid": _grid,
}


def make_sampler(name: str, space: SearchSpace, seed: int) -> Any:
    if name not in SAMPLERS:
        raise MinitronError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](space, seed)

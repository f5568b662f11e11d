"""Optuna samplers: how each `Sampler` (`search.plan.settings`) is built from the search space and
the seed; optuna is imported only when a sampler is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from search.plan.settings import Sampler

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


SAMPLERS: dict[Sampler, Callable[[SearchSpace, int], Any]] = {
    Sampler.TPE: _tpe,
    Sampler.NSGA2: _nsga2,
    Sampler.RANDOM: _random,
    Sampler.GRID: _grid,
}


def make_sampler(name: Sampler | str, space: SearchSpace, seed: int) -> Any:
    return SAMPLERS[Sampler.parse(name, "--sampler")](space, seed)

"""bench/halving.py replays Ray's ASHA on recorded probe curves: the replay must stop the same trials
at the same rungs as Ray's own bracket, fed the same results in the same order; and its synchronous
halving must keep the better half at each rung."""

from __future__ import annotations

import random
from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

from bench.halving import asha, pick, synchronous

RUNGS = [1024, 2048, 4096, 8192]


def _curves(rng: random.Random, n: int) -> dict[str, dict[int, float]]:
    return {f"t{i}": {r: rng.uniform(5.0, 8.0) for r in RUNGS} for i in range(n)}


def _ray(order: list[str], curves: dict[str, dict[int, float]]) -> dict[str, int]:
    """Ray's bracket, as the search configures it (reduction factor 2, first rung = grace period)."""
    bracket = _Bracket(min_t=RUNGS[0], max_t=RUNGS[-1], reduction_factor=2, s=0)
    reached: dict[str, int] = {}
    for name in order:
        trial = SimpleNamespace(trial_id=name)
        for rung in RUNGS:
            reached[name] = rung
            # mode "min": Ray compares the negated metric
            if bracket.on_result(trial, rung, -curves[name][rung]) == TrialScheduler.STOP:
                break
    return reached


def test_asha_replay_matches_rays_bracket() -> None:
    rng = random.Random(0)
    for n in (2, 5, 8, 13):
        for _ in range(50):
            curves = _curves(rng, n)
            order = list(curves)
            assert asha(order, curves, RUNGS, budget=float("inf")) == _ray(order, curves)


def test_asha_budget_stops_trials_and_new_starts() -> None:
    curves = {f"t{i}": {r: 6.0 - i * 0.1 for r in RUNGS} for i in range(4)}  # each better than the last
    reached = asha(list(curves), curves, RUNGS, budget=8192 + 4096)
    # t0 runs to the end (8192); t1 reaches 4096, where going on to 8192 would cross the budget
    # (ProbeBudget: spent + the next rung's extra tokens > budget), and t2 has no room to start
    assert reached == {"t0": 8192, "t1": 4096}
    assert sum(reached.values()) <= 8192 + 4096


def test_synchronous_keeps_the_better_half() -> None:
    curves = _curves(random.Random(1), 8)
    reached = synchronous(list(curves), curves, RUNGS)
    assert sorted(reached.values()).count(RUNGS[0]) == 4  # 8 -> 4 -> 2 -> 1
    assert list(reached.values()).count(RUNGS[-1]) == 1
    best_first = sorted(curves, key=lambda t: curves[t][RUNGS[0]])
    assert all(reached[t] >= RUNGS[1] for t in best_first[:4])
    assert all(reached[t] == RUNGS[0] for t in best_first[4:])
    winner = pick(reached, curves, RUNGS[-1])
    assert winner is not None and reached[winner] == RUNGS[-1]

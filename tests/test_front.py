"""Budget ranges: strata, budget points, hand shapes and the winners along the front."""

import pytest

from minitron.model.architecture import Architecture, count_params
from search.outputs.records import TrialRecord, TrialStatus
from search.plan.candidates import feasible
from search.plan.front import Strata, budget_points, hand_shapes, seeded_shapes
from search.plan.space import load_space
from search.run.selection import front_winners


def test_strata_cut_the_interval_into_equal_parts():
    strata = Strata(50.0, 150.0, parts=10)
    assert [strata.of(x) for x in (50, 59.9, 60, 149.9, 150)] == [0, 0, 1, 9, 9]
    assert strata.of(10) == 0 and strata.of(1000) == 9, "outside values go to the end parts"


def test_budget_points_spread_evenly_and_include_both_ends():
    assert budget_points(50, 110, 3) == [50, 80, 110]
    assert budget_points(50, 110, 1) == [110]
    assert budget_points(70, 70, 4) == [70]


def test_hand_shapes_at_70m_are_the_spaces_own_hand_designs():
    """The generated width-only and depth-only shapes at 70M are the two the space lists by hand."""
    space = load_space("smollm2-135m")
    shapes = {k.name: k.arch for k in hand_shapes(space, [70_000_000])}
    known = {k.name: k.arch for k in space.known}
    assert shapes == {"width-only@70M": known["width-only-71M"], "depth-only@70M": known["depth-only-71M"]}


def test_seeded_shapes_of_a_range_are_feasible_and_near_their_points():
    space = load_space("smollm2-135m")
    low, high = 50_000_000, 110_000_000
    seeds = seeded_shapes(space, low, high, winners=3)
    pool = {c.arch for c in feasible(space, high, low)}
    assert seeds and all(k.arch in pool for k in seeds)
    assert len({k.arch for k in seeds}) == len(seeds), "no shape seeded twice"
    for k in seeds:
        if "@" in k.name:
            point = {"50M": 50e6, "80M": 80e6, "110M": 110e6}[k.name.split("@")[1]]
            assert abs(count_params(space.family, k.arch) - point) <= space.band * point
            if k.name.startswith("width-only"):
                assert k.arch.num_hidden_layers == space.teacher.num_hidden_layers
            else:
                assert (k.arch.hidden_size, k.arch.intermediate_size) == (576, 1536)
    assert any(k.name == "width-only-71M" for k in seeds), "the space's own shapes inside the range go first"


def _record(
    i: int, params: int, loss: float | None, status=TrialStatus.COMPLETED, latency=None
) -> TrialRecord:
    arch = Architecture(12 + i, 576, 1536, 9, 3, 64)
    return TrialRecord(f"t{i}", arch, params, status, probe_loss=loss, latency_ms=latency)


def test_winners_along_the_front_are_the_best_fit_at_each_budget_point():
    records = [
        _record(0, 48_000_000, 4.9),
        _record(1, 52_000_000, 4.8),
        _record(2, 79_000_000, 4.5),
        _record(3, 83_000_000, 4.3),  # fits 80M within its band (+5 %)
        _record(4, 108_000_000, 4.4),  # worse than a smaller one: never a winner
        _record(5, 100_000_000, 4.0, status=TrialStatus.STOPPED_EARLY),  # not probed to the end
        _record(6, 60_000_000, None, status=TrialStatus.FAILED),
    ]
    chosen = front_winners(records, "params", [50e6, 80e6, 110e6], band=0.05)
    assert [(r.trial_id, p) for r, p in chosen] == [("t1", 50e6), ("t3", 80e6)], (
        "the best that fits 110M is the 80M winner: listed once"
    )


def test_winners_along_a_latency_front():
    records = [
        _record(0, 50, 4.9, latency=10.0),
        _record(1, 60, 4.5, latency=12.0),
        _record(2, 70, 4.6, latency=15.0),
    ]
    chosen = front_winners(records, "latency_ms", [10.0, 15.0], band=0.05)
    assert [r.trial_id for r, _ in chosen] == ["t0", "t1"]
    with pytest.raises(AttributeError):
        front_winners(records, "flops", [1.0], band=0.05)

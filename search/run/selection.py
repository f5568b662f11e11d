"""Which probed candidates are retrained: the winners of a search.

One budget: the `top_k` best completed probes by probe loss. A budget range: the winners along the
measured front, one at each of `top_k` budget points spread evenly over the range (both ends
included): the completed probe with the lowest loss that fits the point (params ≤ point × (1 +
band), or latency ≤ point, the points then spread over the measured latencies). A candidate best at
two points is retrained once.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.outputs.records import TrialRecord, TrialStatus, rank
from search.plan.front import budget_points
from search.plan.settings import SearchSettings
from search.plan.spec import RunSpec


def choose_winners(ranking: list[TrialRecord], top_k: int) -> list[TrialRecord]:
    """The best `top_k` trials whose probe ran to its end."""
    return [r for r in ranking if r.status is TrialStatus.COMPLETED][:top_k]


def front_winners(
    records: Sequence[TrialRecord], key: str, points: Sequence[float], band: float
) -> list[tuple[TrialRecord, float]]:
    """The winner at each budget point, with the point, in the order of the points: the completed
    probe with the lowest loss whose `key` (`params` or `latency_ms`) fits the point. A candidate
    that wins at several points is listed once, at the first."""
    completed = [
        r for r in records if r.status is TrialStatus.COMPLETED and r.probe_loss is not None and _x(r, key)
    ]
    slack = 1 + band if key == "params" else 1.0
    chosen: list[tuple[TrialRecord, float]] = []
    for point in points:
        fits = [r for r in completed if (_x(r, key) or 0.0) <= point * slack]
        if not fits:
            continue
        best = min(fits, key=lambda r: (r.probe_loss, _x(r, key), r.trial_id))
        if all(best.trial_id != c.trial_id for c, _ in chosen):
            chosen.append((best, point))
    return chosen


def latency_points(records: Sequence[TrialRecord], count: int) -> list[float]:
    """Budget points in latency: spread over the completed candidates' measured latencies."""
    latencies = [
        r.latency_ms for r in records if r.status is TrialStatus.COMPLETED and r.latency_ms is not None
    ]
    if not latencies:
        return []
    return budget_points(min(latencies), max(latencies), count)


def _x(record: TrialRecord, key: str) -> float | None:
    value = getattr(record, key)
    return float(value) if value is not None else None


def winners_of(spec: RunSpec, records: Sequence[TrialRecord]) -> list[tuple[TrialRecord, float | None]]:
    """The winners, each with its budget point (None for one budget): the best `top_k` by probe
    loss for one budget; along the front, one per budget point, for a range."""
    settings = spec.settings
    if settings.budget_low is None:
        return [(r, None) for r in choose_winners(rank(list(records)), settings.plan.top_k)]
    return range_winners(settings, spec.space.band, records)


def range_winners(
    settings: SearchSettings, band: float, records: Sequence[TrialRecord]
) -> list[tuple[TrialRecord, float | None]]:
    """A range search's winners along its front: `top_k` budget points over the range (in
    parameters), or over the measured latencies with `--objective latency`."""
    assert settings.budget_low is not None, "one budget ranks its winners by probe loss"
    top_k, key = settings.plan.top_k, settings.plan.objective.key
    if not top_k:
        return []
    if key == "params":
        points = budget_points(settings.budget_low, settings.budget, top_k)
    else:
        points = latency_points(records, top_k)
    return list(front_winners(records, key, points, band))

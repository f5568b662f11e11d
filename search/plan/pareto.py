"""Pareto fronts of (size or latency, loss) points: the one rule the search's winners, its
scheduler and the report's figures share."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points when minimizing both coordinates, by first coordinate.

    A point is dominated when another is no worse in both coordinates and better in one, so
    identical points are all kept. Points with a non-finite coordinate are never on the front.
    Ties on the first coordinate are ordered by the second, then by index.
    """
    order = sorted(
        (i for i, (x, y) in enumerate(points) if math.isfinite(x) and math.isfinite(y)),
        key=lambda i: (points[i][0], points[i][1], i),
    )
    front: list[int] = []
    best: tuple[float, float] | None = None  # the first point (smallest x) reaching the lowest y so far
    for i in order:
        x, y = points[i]
        # Every earlier point has x' <= x; one with y' < y dominates, and one with y' == y does too
        # unless it is the same point (the first to reach the lowest y has the smallest x).
        if best is None or y < best[1]:
            best = (x, y)
            front.append(i)
        elif (x, y) == best:
            front.append(i)
    return front

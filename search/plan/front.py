"""Searching a budget range: strata that spread the trials over it, the hand-designed shapes seeded
at its budget points, and the winners chosen along the measured front.

A range `--budget 50M:110M` is searched as one two-objective problem (probe loss, and parameters
or latency). Three rules make the front it returns cover the range:
- *strata*: the feasible parameter interval is cut into `STRATA` equal parts (budget deciles);
  the searcher takes a suggestion only for a stratum that has had the fewest trials so far, so
  the trials spread over the whole range (as whittle bins sub-networks by parameter count);
- *hand shapes*: at every budget point the Minitron recipe's two hand designs (width-only: every
  layer kept, hidden and MLP sizes cut; depth-only: every width kept, layers dropped) are probed
  first, so the front starts from them and can only improve on them;
- *winners along the front*: `--top-k N` budget points spread evenly over the range (both ends
  included), at each the best candidate that fits it (chosen after the search by
  `search.run.selection`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minitron.budget import format_count
from minitron.model.architecture import Architecture, count_params
from search.plan.candidates import feasible_bounds
from search.plan.space import KnownArchitecture, SearchSpace

STRATA = 10
"""Equal parts of the feasible parameter interval that trials are spread over (deciles)."""


@dataclass(frozen=True)
class Strata:
    """The feasible parameter interval cut into equal parts."""

    low: float
    high: float
    parts: int = STRATA

    @classmethod
    def over(cls, space: SearchSpace, low: int, high: int) -> Strata:
        """The strata of the range `low`..`high`: its feasible interval (the bands included)."""
        return cls(*feasible_bounds(space, high, low))

    def of(self, params: float) -> int:
        """The part `params` falls in (0-based; the ends belong to the first and last part)."""
        width = (self.high - self.low) / self.parts or 1.0
        return min(max(int((params - self.low) // width), 0), self.parts - 1)


def budget_points(low: float, high: float, count: int) -> list[float]:
    """`count` budgets spread evenly from `low` to `high` (just `high` for one)."""
    if count <= 1 or high == low:
        return [float(high)]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def hand_shapes(space: SearchSpace, points: Sequence[float]) -> list[KnownArchitecture]:
    """Width-only and depth-only shapes of the space's grid nearest each budget point (within the
    band around it), named `width-only@80M`, `depth-only@80M`; a point the grid cannot reach in
    one of the two recipes gets none of that recipe."""
    teacher = space.teacher
    grid = space.grid()
    params = {a: count_params(space.family, a) for a in grid}
    same_heads = [
        a
        for a in grid
        if (a.num_attention_heads, a.num_key_value_heads)
        == (teacher.num_attention_heads, teacher.num_key_value_heads)
    ]
    recipes = {
        "width-only": [
            a for a in same_heads if a.num_hidden_layers == teacher.num_hidden_layers and a != teacher
        ],
        "depth-only": [
            a
            for a in same_heads
            if (a.hidden_size, a.intermediate_size) == (teacher.hidden_size, teacher.intermediate_size)
            and a.num_hidden_layers < teacher.num_hidden_layers
        ],
    }
    out: dict[Architecture, KnownArchitecture] = {}
    for point in points:
        for recipe, shapes in recipes.items():
            near = [
                (abs(params[a] - point), a) for a in shapes if abs(params[a] - point) <= space.band * point
            ]
            if near:
                arch = min(near, key=lambda pair: (pair[0], -pair[1].hidden_size))[1]
                out.setdefault(arch, KnownArchitecture(f"{recipe}@{format_count(round(point))}", arch))
    return list(out.values())


def seeded_shapes(space: SearchSpace, low: int, high: int, winners: int) -> list[KnownArchitecture]:
    """What a range search probes first: the space's own known shapes inside the range, then the
    hand shapes at the budget points of its winners (both ends at least)."""
    least, most = feasible_bounds(space, high, low)
    teacher_params = space.teacher_params
    own = [
        k
        for k in space.known
        if least <= count_params(space.family, k.arch) <= most
        and count_params(space.family, k.arch) < teacher_params
    ]
    taken = {k.arch for k in own}
    hand = [k for k in hand_shapes(space, budget_points(low, high, max(winners, 2))) if k.arch not in taken]
    return own + hand

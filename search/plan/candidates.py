"""Which architectures of a space fit a parameter budget."""

from __future__ import annotations

from dataclasses import dataclass

from minitron.budget import format_budget, format_count
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, count_params
from search.plan.space import SPACES_DIR, SearchSpace, load_space


@dataclass(frozen=True)
class Candidate:
    """A feasible architecture and its exact parameter count."""

    arch: Architecture
    params: int
    name: str = ""
    """The `known` name of this architecture in the space, if any (e.g. a published shape)."""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {**self.arch.as_key(), "params": self.params}
        if self.name:
            out["name"] = self.name
        return out


def reach(space: SearchSpace) -> tuple[int, int]:
    """Smallest and largest parameter counts the space can produce (below the teacher)."""
    sizes = [count_params(space.family, a) for a in _shapes(space)]
    sizes = [s for s in sizes if s < space.teacher_params] or sizes
    return min(sizes), max(sizes)


def feasible_bounds(space: SearchSpace, budget: int, low: int | None = None) -> tuple[float, float]:
    """The parameter counts a candidate may have: the space's band around `budget`, or around every
    budget of the range `low`..`budget` (their union: low·(1 − band) to budget·(1 + band))."""
    return (low if low is not None else budget) * (1 - space.band), budget * (1 + space.band)


def feasible(space: SearchSpace, budget: int, low: int | None = None) -> list[Candidate]:
    """Every architecture within the space's band around `budget` (or around every budget of the
    range `low`..`budget`), largest first.

    The candidates are the grid of choices plus the space's known architectures; anything at or
    above the teacher's size is excluded (pruning must shrink the model).
    """
    teacher_params = space.teacher_params
    if budget >= teacher_params:
        raise MinitronError(
            f"budget {format_count(budget)} is not below the teacher's {format_count(teacher_params)} "
            f"parameters ({teacher_params:,}); choose a smaller budget"
        )
    least, most = feasible_bounds(space, budget, low)
    names = {k.arch: k.name for k in space.known}
    out = []
    for arch in _shapes(space):
        params = count_params(space.family, arch)
        if least <= params <= most and params < teacher_params:
            out.append(Candidate(arch, params, names.get(arch, "")))
    if not out:
        smallest, largest = reach(space)
        raise MinitronError(
            f"no architecture of {space.path.name} lies within ±{space.band:.0%} of "
            f"{format_budget(low or budget, budget)}; "
            f"the space reaches {format_count(smallest)} to {format_count(largest)} parameters"
        )
    return sorted(out, key=lambda c: (-c.params, c.arch))


def _shapes(space: SearchSpace) -> list[Architecture]:
    grid = space.grid()
    on_grid = set(grid)
    return grid + [k.arch for k in space.known if k.arch not in on_grid]


#: A teacher is picked for a budget only if it is at least this much larger (1 / 0.8 = 1.25x):
#: cutting 8.03B to 8B is not compression, so `--budget 8B` goes to the 12B teacher.
AUTO_MAX_SHARE = 0.8


@dataclass(frozen=True)
class SpaceChoice:
    """The shipped space `--budget` chose when `--space` was not given, and why."""

    space: SearchSpace
    candidates: list[Candidate]
    reason: str

    def line(self, low: int, budget: int) -> str:
        others = ", ".join(p.stem for p in sorted(SPACES_DIR.glob("*.yaml")) if p.stem != self.space.name)
        return (
            f"[search] --budget {format_budget(low, budget)}: space {self.space.name} (teacher "
            f"{self.space.teacher_name}, {format_count(self.space.teacher_params)} parameters), "
            f"{self.reason}; "
            f"choose another with --space NAME or FILE (shipped: {others})"
        )


def space_for_budget(budget: int, low: int | None = None) -> SpaceChoice:
    """The shipped space of the smallest teacher with candidates at `budget` that is at least 1.25x
    the budget; failing that, the smallest teacher with any candidates at it. For a range
    `low`..`budget`, `budget` is its upper end."""
    spaces = sorted((load_space(p) for p in SPACES_DIR.glob("*.yaml")), key=lambda s: s.teacher_params)
    reachable = []
    for space in spaces:
        try:
            reachable.append((space, feasible(space, budget, low)))
        except MinitronError:
            continue
    for space, candidates in reachable:
        if budget <= AUTO_MAX_SHARE * space.teacher_params:
            return SpaceChoice(space, candidates, "the smallest shipped teacher at least 1.25x the budget")
    if reachable:
        space, candidates = reachable[0]
        return SpaceChoice(space, candidates, "the only shipped teacher size with candidates at this budget")
    spans = "; ".join(
        f"{s.name} {format_count(lo)} to {format_count(hi)}" for s in spaces for lo, hi in [reach(s)]
    )
    raise MinitronError(
        f"no shipped search space has candidates at {format_count(budget)} (they reach: {spans}); "
        "give --space FILE with a space for your teacher (see spaces/*.yaml)"
    )

"""Which architectures of a space fit a parameter budget."""

from __future__ import annotations

from dataclasses import dataclass

from minitron.budget import format_count
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, count_params
from search.space import SearchSpace


@dataclass(frozen=True)
class Candidate:
    """A feasible architecture and its exact parameter count."""

    arch: Architecture
    params: int
    name: str = ""
    """The `known` name of this architecture in the space, if any (e.g. a published shape)."""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {**self.arch.as_dict(), "params": self.params}
        if self.name:
            out["name"] = self.name
        return out


def reach(space: SearchSpace) -> tuple[int, int]:
    """Smallest and largest parameter counts the space can produce (below the teacher)."""
    sizes = [count_params(space.family, a) for a in _shapes(space)]
    sizes = [s for s in sizes if s < space.teacher_params] or sizes
    return min(sizes), max(sizes)


def feasible(space: SearchSpace, budget: int) -> list[Candidate]:
    """Every architecture within the space's band around `budget`, largest first.

    The candidates are the grid of choices plus the space's known architectures; anything at or
    above the teacher's size is excluded (pruning must shrink the model).
    """
    teacher_params = space.teacher_params
    if budget >= teacher_params:
        raise MinitronError(
            f"budget {format_count(budget)} is not below the teacher's {format_count(teacher_params)} "
            f"parameters ({teacher_params:,}); choose a smaller budget"
        )
    low, high = budget * (1 - space.band), budget * (1 + space.band)
    names = {k.arch: k.name for k in space.known}
    out = []
    for arch in _shapes(space):
        params = count_params(space.family, arch)
        if low <= params <= high and params < teacher_params:
            out.append(Candidate(arch, params, names.get(arch, "")))
    if not out:
        smallest, largest = reach(space)
        raise MinitronError(
            f"no architecture of {space.path.name} lies within ±{space.band:.0%} of {format_count(budget)}; "
            f"the space reaches {format_count(smallest)} to {format_count(largest)} parameters"
        )
    return sorted(out, key=lambda c: (-c.params, c.arch))


def _shapes(space: SearchSpace) -> list[Architecture]:
    grid = space.grid()
    on_grid = set(grid)
    return grid + [k.arch for k in space.known if k.arch not in on_grid]

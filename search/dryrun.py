"""The dry run: list the feasible candidates of a space at a budget, without loading weights."""

from __future__ import annotations

import json
from typing import Any

from minitron.budget import format_budget, format_count
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, Family
from minitron.model.memory import Memory
from search.candidates import Candidate, feasible_bounds
from search.space import SearchSpace


def check_teacher_matches(space: SearchSpace, teacher: str, config: Any) -> None:
    """Refuse a teacher whose config differs from the architecture the space was written for."""
    family, arch = Family.from_config(config), Architecture.from_mapping(config)
    if family != space.family or arch != space.teacher:
        raise MinitronError(
            f"teacher {teacher!r} is {family.model_type} {arch.short()} (vocab {family.vocab_size}), but "
            f"{space.path.name} describes {space.family.model_type} {space.teacher.short()} "
            f"(vocab {space.family.vocab_size}); give --space for this teacher"
        )


#: Per candidate: (probe memory, retraining memory, whether the probe fits a trial; None: unknown).
MemoryRows = list[tuple[Memory, Memory, bool | None]]


def render_json(candidates: list[Candidate], memory: MemoryRows) -> str:
    rows = [
        c.as_json() | {"probe_memory_bytes": probe.total, "retrain_memory_bytes": retrain.total, "fits": fits}
        for c, (probe, retrain, fits) in zip(candidates, memory, strict=True)
    ]
    return json.dumps(rows, indent=2)


def render_table(
    space: SearchSpace, teacher: str, bounds: tuple[int, int], candidates: list[Candidate], memory: MemoryRows
) -> str:
    """The candidates as a table; `bounds`: the budget (twice) or a budget range's ends."""
    total = space.teacher_params
    budget_low, budget = bounds
    low, high = feasible_bounds(space, budget, budget_low)
    header: tuple[str, ...] = ("layers", "hidden", "mlp", "q/kv heads", "head_dim", "params", "of teacher")
    header += ("probe GiB", "retrain GiB", "fits", "name")
    rows = [
        (
            str(c.arch.num_hidden_layers),
            str(c.arch.hidden_size),
            str(c.arch.intermediate_size),
            f"{c.arch.num_attention_heads}/{c.arch.num_key_value_heads}",
            str(c.arch.head_dim),
            f"{c.params:,}",
            f"{c.params / total:.1%}",
            f"{probe.gib():.1f}",
            f"{retrain.gib():.1f}",
            {True: "yes", False: "no", None: "?"}[fits],
            c.name,
        )
        for c, (probe, retrain, fits) in zip(candidates, memory, strict=True)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def fmt(cells: tuple[str, ...]) -> str:  # numbers right-aligned, the name column left-aligned
        padded = [cell.rjust(w) for cell, w in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    lines = [
        f"teacher  {teacher} ({space.family.model_type} {space.teacher.short()}, {total:,} parameters)",
        f"space    {space.path}",
        f"budget   {format_budget(budget_low, budget)} ±{space.band:.0%} ({format_count(int(low))} to "
        f"{format_count(int(high))}): {len(candidates)} feasible candidates, largest first",
        "",
        fmt(header),
        *(fmt(r) for r in rows),
    ]
    return "\n".join(lines)


def strata_line(space: SearchSpace, bounds: tuple[int, int], candidates: list[Candidate]) -> str:
    """For a budget range: the strata trials are spread over and how many candidates each holds."""
    from search.front import STRATA, Strata

    strata = Strata.over(space, *bounds)
    counts = [0] * STRATA
    for c in candidates:
        counts[strata.of(c.params)] += 1
    width = (strata.high - strata.low) / STRATA
    return (
        f"strata: trials are spread over {STRATA} parts of {format_count(int(strata.low))} to "
        f"{format_count(int(strata.high))} ({format_count(int(width))} each), holding "
        f"{', '.join(map(str, counts))} candidates"
    )

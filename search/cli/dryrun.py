"""The dry run: list the feasible candidates of a space at a budget, with their memory plan and the
probes' cost, without loading weights or writing anything."""

from __future__ import annotations

import json

from minitron.budget import format_budget, format_count
from minitron.model.memory import Memory
from search.plan.candidates import Candidate, feasible_bounds
from search.plan.request import SearchRequest
from search.plan.settings import SearchSettings
from search.plan.space import SearchSpace
from search.plan.spec import resolve


def dry_run(request: SearchRequest, as_json: bool = False) -> int:
    """Print the candidates (a table, or JSON with `as_json`), the strata of a range, the probes'
    plan and the memory plan of the run `request` would start."""
    from minitron.model.teacher import local_config
    from search.plan.memory_plan import fits, plan, summary_line
    from search.plan.space import check_teacher_matches

    spec = resolve(request, dry_run=True, quiet=as_json)
    settings, space, candidates = spec.settings, spec.space, list(spec.candidates)
    config = local_config(settings.teacher)
    if config is not None:
        check_teacher_matches(space, settings.teacher, config)
    plans = [plan(space, c, spec.memory) for c in candidates]
    memory = [(probe, retrain, fits(probe, spec.capacity)) for probe, retrain in plans]
    if as_json:
        print(render_json(candidates, memory))
    else:
        print(render_table(space, settings.teacher, settings.bounds, candidates, memory))
        if settings.is_range:
            print(strata_line(space, settings.bounds, candidates))
        print(probe_plan_line(settings))
        print(summary_line(plans, spec.memory, spec.capacity))
    return 0


def probe_plan_line(settings: SearchSettings) -> str:
    """What the run's probes would be and cost."""
    plan, retrain, tokens = settings.plan, settings.retrain.tokens, settings.tokens
    line = (
        f"probes: {plan.trials} trials of up to {format_count(tokens.probe_tokens)} tokens "
        f"({plan.scheduler}, {plan.rungs} rungs); they may spend {format_count(tokens.probe_budget)} "
        f"tokens, --overhead {plan.overhead:g} of {format_count(retrain * max(plan.top_k, 1))} "
        "retraining tokens"
    )
    if not plan.keeps_probe_states:
        return line + "; winners start again from their pruned weights (--fresh-winners)"
    winner = tokens.winner_tokens // max(plan.top_k, 1)
    line += (
        f"; each winner continues from its probe ({format_count(tokens.probe_tokens)} of its "
        f"{format_count(winner)} tokens), so only the other candidates' probes cost extra"
    )
    if plan.max_not_kept < 1:
        line += f": at most {plan.max_not_kept:.0%} of all tokens (--max-not-kept)"
    return line


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
            str(c.arch.num_hidden_layers) + (f" b{c.arch.layer_block}" if c.arch.layer_block else ""),
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
        f"{format_count(int(high))}): {len(candidates)} feasible candidates, largest first"
        + _layer_block_note(space, candidates),
        "",
        fmt(header),
        *(fmt(r) for r in rows),
    ]
    return "\n".join(lines)


def _layer_block_note(space: SearchSpace, candidates: list[Candidate]) -> str:
    """How many candidates the searched layer blocks add (`b1`: the block of 2nd least loss dropped)."""
    if space.layer_blocks < 2:
        return ""
    added = sum(1 for c in candidates if c.arch.layer_block)
    return (
        f"; {added} of them drop another of the {space.layer_blocks} contiguous blocks of least "
        f"measured loss (b1, b2, ...: the 2nd, 3rd, ... least; --layer-blocks)"
    )


def strata_line(space: SearchSpace, bounds: tuple[int, int], candidates: list[Candidate]) -> str:
    """For a budget range: the strata trials are spread over and how many candidates each holds."""
    from search.plan.front import STRATA, Strata

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

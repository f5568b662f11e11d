"""Reading a search summary for the report: candidates, winners, the Pareto front, formatting."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from minitron.budget import format_budget, format_count
from search.outputs.records import TrialStatus
from search.plan.pareto import pareto_front

#: Marker style per candidate status (plotly symbol, matplotlib marker, filled); others get an x.
_STATUS_STYLE = {
    TrialStatus.COMPLETED.value: ("circle", "o", True),
    TrialStatus.STOPPED_EARLY.value: ("circle-open", "o", False),
}
_OTHER_STYLE = ("x", "x", True)
_CANDIDATE_COLOR, _FRONT_COLOR, _WINNER_COLOR, _BAND_COLOR = "#4c78a8", "#e45756", "#f2b701", "#54a24b"
#: Hand-designed shapes (candidates with a `name`) and the winners' budget points.
_SHAPE_COLOR, _POINT_COLOR = "#9d4edd", "#555555"
_DASH = "—"


# ---------------------------------------------------------------------------------------------- data


def _finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing, not a number, or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _label(arch: Any) -> str:
    """Compact architecture label, e.g. `L24-h432-m1024-q9kv3-d64` (`?` for a missing size), with
    `-b1` where the candidate drops the block of 2nd least loss (`Architecture.short`)."""
    a = arch if isinstance(arch, Mapping) else {}

    def g(key: str) -> str:
        return "?" if a.get(key) is None else str(a[key])

    return (
        f"L{g('num_hidden_layers')}-h{g('hidden_size')}-m{g('intermediate_size')}"
        f"-q{g('num_attention_heads')}kv{g('num_key_value_heads')}-d{g('head_dim')}"
        + (f"-b{a['layer_block']}" if a.get("layer_block") else "")
    )


def _candidates(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(c) for c in summary.get("candidates") or [] if isinstance(c, Mapping)]


def _winner_ranks(summary: Mapping[str, Any]) -> dict[str, int | None]:
    """Trial id -> rank of every winner, from the winners list and the candidates' own flags."""
    ranks: dict[str, int | None] = {}
    for c in _candidates(summary):
        if c.get("winner"):
            ranks[str(c.get("trial_id"))] = c.get("rank")
    for w in summary.get("winners") or []:
        if not isinstance(w, Mapping):
            continue
        ranks[str(w.get("trial_id"))] = w.get("rank", ranks.get(str(w.get("trial_id"))))
    return ranks


def _winner_labels(
    won: list[dict[str, Any]], ranks: Mapping[str, int | None], x_key: str, cands: list[dict[str, Any]]
) -> list[str]:
    """`#rank` per plotted winner; winners that would overlap share one label (`#1 #2`)."""
    xs, ys = [c[x_key] for c in cands], [c["probe_loss"] for c in cands]
    x_span, y_span = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    clusters: list[tuple[float, float, list[int]]] = []  # first point of each cluster, its members
    for i, c in enumerate(won):
        x, y = c[x_key] / x_span, c["probe_loss"] / y_span
        near = [m for cx, cy, m in clusters if abs(cx - x) < 0.03 and abs(cy - y) < 0.05]
        if near:
            near[0].append(i)
        else:
            clusters.append((x, y, [i]))
    labels = [""] * len(won)
    for _, _, members in clusters:
        labels[members[0]] = " ".join(f"#{ranks[str(won[i].get('trial_id'))]}" for i in members)
    return labels


def _is_failed(c: Mapping[str, Any]) -> bool:
    return c.get("status") == TrialStatus.FAILED or bool(c.get("error"))


def _plotted(summary: Mapping[str, Any], x_key: str) -> list[dict[str, Any]]:
    """Candidates that have both `x_key` and a probe loss, as finite numbers."""
    return [
        c
        for c in _candidates(summary)
        if _finite(c.get(x_key)) is not None and _finite(c.get("probe_loss")) is not None
    ]


def _front(cands: list[dict[str, Any]], x_key: str = "params") -> list[dict[str, Any]]:
    """The candidates on the Pareto front of (`x_key`, probe loss), by increasing `x_key`."""
    points = [(float(c[x_key]), float(c["probe_loss"])) for c in cands]
    return [cands[i] for i in pareto_front(points)]


def _name(c: Mapping[str, Any]) -> str | None:
    """The hand-designed shape a candidate is (`width-only-71M`), or None for a searched one."""
    name = c.get("name")
    return (name.strip() or None) if isinstance(name, str) else None


def _spread_error(c: Mapping[str, Any], key: str = "latency") -> tuple[float, float] | None:
    """(below, above) the median latency for its fastest and slowest rounds, when both are known."""
    value = _finite(c.get(f"{key}_ms"))
    low, high = _finite(c.get(f"{key}_low_ms")), _finite(c.get(f"{key}_high_ms"))
    if value is None or low is None or high is None:
        return None
    return max(value - low, 0.0), max(high - value, 0.0)


def _objective(summary: Mapping[str, Any]) -> str:
    """The search's second objective: `latency` or (by default) `params`."""
    return "latency" if summary.get("objective") == "latency" else "params"


def _budget_range(summary: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(low, high) ends of a budget range; (None, budget) for one budget."""
    budget, low = _finite(summary.get("budget")), _finite(summary.get("budget_low"))
    if budget is None or low is None:
        return None, budget
    return min(low, budget), max(low, budget)


def _budget_text(summary: Mapping[str, Any]) -> str:
    """`50M–110M` for a range, `70M` for one budget (a dash when unknown)."""
    low, high = _budget_range(summary)
    if low is None or high is None:
        return _count(high)
    return format_budget(int(low), int(high))


def _band_label(summary: Mapping[str, Any]) -> str:
    """The shaded band's label: `budget 50M–110M` for a range, `budget ±5%` for one budget."""
    if _budget_range(summary)[0] is not None:
        return f"budget {_budget_text(summary)}"
    return f"budget ±{_finite(summary.get('band')) or 0:.0%}"


def _budget_points(summary: Mapping[str, Any]) -> list[tuple[Any, float]]:
    """(rank, budget point) of every winner that has one, by budget point."""
    points = [
        (w.get("rank"), point)
        for w in summary.get("winners") or []
        if isinstance(w, Mapping) and (point := _finite(w.get("budget_point"))) is not None
    ]
    return sorted(points, key=lambda p: p[1])


def _budget_point_text(value: Any, objective: str) -> str:
    """A budget point as a parameter count (`80M`) or, for the latency objective, in ms."""
    number = _finite(value)
    if number is None:
        return _DASH
    return f"{number:.2f} ms" if objective == "latency" else format_count(int(number))


def _teacher_point(summary: Mapping[str, Any], x_key: str) -> tuple[float | None, float | None]:
    teacher = summary.get("teacher") or {}
    return _finite(teacher.get(x_key)), _finite(teacher.get("zero_shot_loss"))


def _band(summary: Mapping[str, Any]) -> tuple[float, float] | None:
    """The feasible parameters: the budget ±band, or a range's ends widened by the band.

    None for one budget without a band (nothing to shade), or without a budget.
    """
    (low, high), band = _budget_range(summary), _finite(summary.get("band"))
    if not high:
        return None
    if low is None:
        return (high * (1 - band), high * (1 + band)) if band else None
    band = band or 0.0
    return low * (1 - band), high * (1 + band)


def _split_axis(xs: Sequence[float], teacher_x: float | None) -> bool:
    """Whether the teacher sits so far from the candidates that it gets its own narrow x panel.

    Candidates all lie within a few percent of the budget while the teacher is often twice as
    large; on one linear axis they would crowd into a sliver, so the axis is broken instead.
    """
    if teacher_x is None or not xs:
        return False
    low, high = min(xs), max(xs)
    span = max(high - low, 0.02 * max(abs(high), abs(low), 1e-9))
    return teacher_x > high + 1.5 * span or teacher_x < low - 1.5 * span


# ----------------------------------------------------------------------------------------- formats


def _e(value: Any) -> str:
    """HTML-escape any value from the summary (None becomes a dash)."""
    return _DASH if value is None else html.escape(str(value), quote=True)


def _count(value: Any) -> str:
    number = _finite(value)
    return _DASH if number is None else format_count(int(number))


def _num(value: Any, spec: str = ".3f") -> str:
    number = _finite(value)
    return _DASH if number is None else format(number, spec)


def _spread(value: Any, low: Any, high: Any, spec: str = ".2f", unit: str = "") -> str:
    """`12.34 (11.90–12.80)` (or `1.92× (1.85–1.97×)` with unit `×`): a median and its spread,
    the value alone when the spread is unknown, a dash without a value."""
    number = _finite(value)
    if number is None:
        return _DASH
    text = f"{number:{spec}}{unit}"
    lo, hi = _finite(low), _finite(high)
    if lo is not None and hi is not None:
        text += f" ({lo:{spec}}–{hi:{spec}}{unit})"
    return text


def _latency_text(c: Mapping[str, Any]) -> str:
    return _spread(c.get("latency_ms"), c.get("latency_low_ms"), c.get("latency_high_ms"))


def _speedup_text(c: Mapping[str, Any]) -> str:
    return _spread(c.get("speedup"), c.get("speedup_low"), c.get("speedup_high"), unit="×")


def _fraction(c: Mapping[str, Any], teacher_params: float | None) -> float | None:
    fraction, params = _finite(c.get("fraction")), _finite(c.get("params"))
    if fraction is None and params is not None and teacher_params:
        fraction = params / teacher_params
    return fraction


def _hover(c: Mapping[str, Any], winner_rank: int | str | None = "") -> str:
    # Plotly renders hover text as a small HTML subset, so summary text is escaped here too.
    name = _name(c)
    lines = [f"<b>hand shape {_e(name)}</b>"] if name else []
    lines += [
        f"<b>{_e(_label(c.get('architecture')))}</b>",
        f"trial {_e(c.get('trial_id'))} ({_e(c.get('status'))})",
        f"params {_count(c.get('params'))}, probe loss {_num(c.get('probe_loss'))}",
    ]
    if _finite(c.get("latency_ms")) is not None:
        rounds = _finite(c.get("latency_rounds"))
        over = f" over {int(rounds)} rounds" if rounds is not None else ""
        lines.append(f"latency {_latency_text(c)} ms{over}, speed-up {_speedup_text(c)}")
    if winner_rank != "":
        lines.append(f"winner #{_e(winner_rank)}, final loss {_num(c.get('final_loss'))}")
    return "<br>".join(lines)


def flat_settings(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (`plan.trials`), so the table reads like the settings tree."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            out.update(flat_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def cost_line(summary: Mapping[str, Any]) -> str:
    """What the search cost: probe tokens against the winners' retraining tokens."""
    cost = summary.get("cost") or {}
    spent, ratio, allowed = cost.get("probe_tokens"), cost.get("overhead"), cost.get("overhead_allowed")
    if not isinstance(spent, (int, float)) or not isinstance(ratio, (int, float)):
        return "search cost: not recorded"
    limit = f" (allowed {allowed:.0%})" if isinstance(allowed, (int, float)) else ""
    line = f"search cost: probes trained {int(spent):,} tokens, {ratio:.0%} of the retraining tokens{limit}"
    return line + not_kept_clause(cost)


def not_kept_clause(cost: Mapping[str, Any]) -> str:
    """`; ...` saying what share of all tokens went to candidates that were not kept (empty when
    not recorded: runs before winners continued from their probes, or no winner retrained)."""
    fraction, kept = cost.get("not_kept_fraction"), cost.get("probe_tokens_kept")
    if not isinstance(fraction, (int, float)):
        return ""
    allowed = cost.get("not_kept_allowed")
    limit = f" (allowed {allowed:.0%})" if isinstance(allowed, (int, float)) else ""
    return (
        f"; winners kept {int(kept or 0):,} of them (they continued from their probes), so "
        f"{int(cost.get('tokens_not_kept') or 0):,} tokens, {fraction:.1%} of all "
        f"{int(cost.get('tokens_all') or 0):,} trained, went to candidates that were not kept{limit}"
    )

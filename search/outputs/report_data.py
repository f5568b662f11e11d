"""Reading a search summary for the report: candidates, winners, the Pareto front, formatting.

Everything here reads the typed `Summary` and its records by attribute; any number may be missing
(None) or not finite, and any list empty.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from minitron.budget import format_budget, format_count
from minitron.model.architecture import ARCH_FIELDS, Architecture
from search.outputs.outcomes import TeacherRecord
from search.outputs.records import TrialRecord, TrialStatus
from search.outputs.summary import CandidateRow, Summary
from search.plan.pareto import pareto_front
from search.plan.settings import Objective

#: Marker style per candidate status (plotly symbol, matplotlib marker, filled); others get an x.
_STATUS_STYLE = {
    TrialStatus.COMPLETED: ("circle", "o", True),
    TrialStatus.STOPPED_EARLY: ("circle-open", "o", False),
}
_OTHER_STYLE = ("x", "x", True)
_CANDIDATE_COLOR, _FRONT_COLOR, _WINNER_COLOR, _BAND_COLOR = "#4c78a8", "#e45756", "#f2b701", "#54a24b"
#: Hand-designed shapes (candidates with a `name`) and the winners' budget points.
_SHAPE_COLOR, _POINT_COLOR = "#9d4edd", "#555555"
_DASH = "—"


class _Timed(Protocol):
    """A record with a median latency and the fastest and slowest rounds (a trial, the teacher)."""

    @property
    def latency_ms(self) -> float | None: ...

    @property
    def latency_low_ms(self) -> float | None: ...

    @property
    def latency_high_ms(self) -> float | None: ...


@dataclass(frozen=True)
class _Point:
    """A candidate placed in a figure: its row, its x (parameters or latency) and its probe loss."""

    row: CandidateRow
    x: float
    y: float

    @property
    def trial(self) -> TrialRecord:
        return self.row.trial


# ---------------------------------------------------------------------------------------------- data


def _finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing, not a number, or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _label(arch: Architecture) -> str:
    """Compact architecture label, e.g. `L24-h432-m1024-q9kv3-d64`, with `-b1` where the candidate
    drops the block of 2nd least loss (`Architecture.short`)."""
    return arch.short()


def _teacher_label(teacher: TeacherRecord) -> str:
    """The teacher's label as `_label` writes it, `?` for a size its record lacks."""
    sizes = teacher.architecture
    try:
        arch = Architecture.from_json(sizes)
    except (TypeError, ValueError):  # a record that lacks some (a hand-made or partial summary)
        known = [sizes.get(name) for name in ARCH_FIELDS]
        layers, hidden, mlp, heads, kv_heads, head_dim = ("?" if v is None else str(v) for v in known)
        return f"L{layers}-h{hidden}-m{mlp}-q{heads}kv{kv_heads}-d{head_dim}"
    return _label(arch)


def _x(record: TrialRecord | TeacherRecord, axis: Objective) -> float | None:
    """A record's value on a figure's x axis, as the record holds it (a parameter count stays an
    int): its parameters or its latency (`Objective.key`); None when missing or not finite."""
    value: float | None = getattr(record, axis.key)
    return value if _finite(value) is not None else None


def _winner_ranks(summary: Summary) -> dict[str, int | None]:
    """Trial id -> rank of every winner, from the candidates' own flags and the winners list."""
    ranks = {c.trial.trial_id: c.rank for c in summary.candidates if c.winner}
    return ranks | {w.trial_id: w.rank for w in summary.winners}


def _winner_labels(won: list[_Point], ranks: Mapping[str, int | None], cands: list[_Point]) -> list[str]:
    """`#rank` per plotted winner; winners that would overlap share one label (`#1 #2`)."""
    xs, ys = [c.x for c in cands], [c.y for c in cands]
    x_span, y_span = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    clusters: list[tuple[float, float, list[int]]] = []  # first point of each cluster, its members
    for i, c in enumerate(won):
        x, y = c.x / x_span, c.y / y_span
        near = [m for cx, cy, m in clusters if abs(cx - x) < 0.03 and abs(cy - y) < 0.05]
        if near:
            near[0].append(i)
        else:
            clusters.append((x, y, [i]))
    labels = [""] * len(won)
    for _, _, members in clusters:
        labels[members[0]] = " ".join(f"#{ranks[won[i].trial.trial_id]}" for i in members)
    return labels


def _is_failed(c: CandidateRow) -> bool:
    return c.trial.status is TrialStatus.FAILED or bool(c.trial.error)


def _plotted(summary: Summary, axis: Objective) -> list[_Point]:
    """Candidates that have both a value on `axis` and a probe loss, as finite numbers."""
    points = []
    for c in summary.candidates:
        x, y = _x(c.trial, axis), c.trial.probe_loss
        if x is not None and y is not None and math.isfinite(y):
            points.append(_Point(c, x, y))
    return points


def _front(cands: list[_Point]) -> list[_Point]:
    """The candidates on the Pareto front of (x, probe loss), by increasing x."""
    return [cands[i] for i in pareto_front([(c.x, c.y) for c in cands])]


def _name(trial: TrialRecord) -> str | None:
    """The hand-designed shape a candidate is (`width-only-71M`), or None for a searched one."""
    return (trial.name or "").strip() or None


def _style(trial: TrialRecord) -> tuple[str, str, bool]:
    """A candidate's marker (plotly symbol, matplotlib marker, filled) by its status."""
    return _STATUS_STYLE.get(trial.status, _OTHER_STYLE)


def _by_status(points: list[_Point]) -> list[tuple[TrialStatus, list[_Point]]]:
    """The points grouped by status, groups in the order of the statuses' names."""
    statuses = sorted({c.trial.status for c in points}, key=lambda s: s.value)
    return [(s, [c for c in points if c.trial.status is s]) for s in statuses]


def _spread_error(record: _Timed) -> tuple[float, float] | None:
    """(below, above) the median latency for its fastest and slowest rounds, when both are known."""
    value = _finite(record.latency_ms)
    low, high = _finite(record.latency_low_ms), _finite(record.latency_high_ms)
    if value is None or low is None or high is None:
        return None
    return max(value - low, 0.0), max(high - value, 0.0)


def _budget_range(summary: Summary) -> tuple[float | None, float | None]:
    """(low, high) ends of a budget range; (None, budget) for one budget."""
    budget, low = _finite(summary.budget), _finite(summary.budget_low)
    if budget is None or low is None:
        return None, budget
    return min(low, budget), max(low, budget)


def _budget_text(summary: Summary) -> str:
    """`50M–110M` for a range, `70M` for one budget (a dash when unknown)."""
    low, high = _budget_range(summary)
    if low is None or high is None:
        return _count(high)
    return format_budget(int(low), int(high))


def _band_label(summary: Summary) -> str:
    """The shaded band's label: `budget 50M–110M` for a range, `budget ±5%` for one budget."""
    if _budget_range(summary)[0] is not None:
        return f"budget {_budget_text(summary)}"
    return f"budget ±{_finite(summary.band) or 0:.0%}"


def _budget_points(summary: Summary) -> list[tuple[int, float]]:
    """(rank, budget point) of every winner that has one, by budget point."""
    points = [(w.rank, point) for w in summary.winners if (point := _finite(w.budget_point)) is not None]
    return sorted(points, key=lambda p: p[1])


def _budget_point_text(value: float | None, objective: Objective) -> str:
    """A budget point as a parameter count (`80M`) or, for the latency objective, in ms."""
    number = _finite(value)
    if number is None:
        return _DASH
    return f"{number:.2f} ms" if objective is Objective.LATENCY else format_count(int(number))


def _teacher_point(summary: Summary, axis: Objective) -> tuple[float | None, float | None]:
    return _finite(_x(summary.teacher, axis)), _finite(summary.teacher.zero_shot_loss)


def _band(summary: Summary) -> tuple[float, float] | None:
    """The feasible parameters: the budget ±band, or a range's ends widened by the band.

    None for one budget without a band (nothing to shade), or without a budget.
    """
    (low, high), band = _budget_range(summary), _finite(summary.band)
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


def _e(value: object) -> str:
    """HTML-escape any value from the summary (None becomes a dash)."""
    return _DASH if value is None else html.escape(str(value), quote=True)


def _count(value: float | None) -> str:
    number = _finite(value)
    return _DASH if number is None else format_count(int(number))


def _num(value: float | None, spec: str = ".3f") -> str:
    number = _finite(value)
    return _DASH if number is None else format(number, spec)


def _spread(
    value: float | None, low: float | None, high: float | None, spec: str = ".2f", unit: str = ""
) -> str:
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


def _latency_text(record: _Timed) -> str:
    return _spread(record.latency_ms, record.latency_low_ms, record.latency_high_ms)


def _speedup_text(trial: TrialRecord) -> str:
    return _spread(trial.speedup, trial.speedup_low, trial.speedup_high, unit="×")


def _fraction(c: CandidateRow, teacher_params: float | None) -> float | None:
    fraction, params = _finite(c.fraction), _finite(c.trial.params)
    if fraction is None and params is not None and teacher_params:
        fraction = params / teacher_params
    return fraction


def _hover(c: CandidateRow, winner_rank: int | str | None = "") -> str:
    # Plotly renders hover text as a small HTML subset, so summary text is escaped here too.
    trial = c.trial
    name = _name(trial)
    lines = [f"<b>hand shape {_e(name)}</b>"] if name else []
    lines += [
        f"<b>{_e(_label(trial.architecture))}</b>",
        f"trial {_e(trial.trial_id)} ({_e(trial.status.value)})",
        f"params {_count(trial.params)}, probe loss {_num(trial.probe_loss)}",
    ]
    if _finite(trial.latency_ms) is not None:
        rounds = _finite(trial.latency_rounds)
        over = f" over {int(rounds)} rounds" if rounds is not None else ""
        lines.append(f"latency {_latency_text(trial)} ms{over}, speed-up {_speedup_text(trial)}")
    if winner_rank != "":
        lines.append(f"winner #{_e(winner_rank)}, final loss {_num(c.final_loss)}")
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

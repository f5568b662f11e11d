"""The search run's report: `report.html` (interactive, self-contained) and `pareto.png` (static).

`write_report(run_dir, summary)` takes the run's summary (see `write_report` for the schema) and
writes both files atomically. The HTML page inlines plotly.js and references nothing outside
itself (no CDN, fonts, images or MathJax), so it opens offline and makes no network request. The
PNG is drawn with matplotlib's Agg canvas, so no display is needed. This module never imports Ray
or Optuna: the report can be rebuilt from a saved summary on any machine.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from minitron.budget import format_count

#: Marker style per candidate status (plotly symbol, matplotlib marker, filled); others get an x.
_STATUS_STYLE = {"completed": ("circle", "o", True), "stopped early": ("circle-open", "o", False)}
_OTHER_STYLE = ("x", "x", True)
_CANDIDATE_COLOR, _FRONT_COLOR, _WINNER_COLOR, _BAND_COLOR = "#4c78a8", "#e45756", "#f2b701", "#54a24b"
_DASH = "—"
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #555; margin: 0.2em 0; }
.caveat { background: #fff4ce; border: 1px solid #e0c200; padding: 0.6em 0.9em; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.winner td { background: #fff8dc; font-weight: 600; }
td code { white-space: nowrap; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 0.9em; }
.empty { color: #777; font-style: italic; }
"""


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


def write_report(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write `run_dir/report.html` and `run_dir/pareto.png` for a search run, each atomically.

    `summary` holds `name`, `budget`, `band`, `space`, `created`, an optional `limited` caveat,
    `teacher` (`name`, `params`, `architecture`, `zero_shot_loss`, `latency_ms`, `tokens_per_s`),
    `settings` (shown as a table), `candidates` (`trial_id`, `architecture`, `params`, `fraction`,
    `zero_shot_loss`, `probe_loss`, `final_loss`, `latency_ms`, `tokens_per_s`, `speedup`, `status`,
    `error`, `rank`, `winner`) and `winners` (`rank`, `trial_id`, `path`, `final_loss`,
    `architecture`, `params`). Any number may be None; any list may be empty.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(run_dir / "pareto.png", _pareto_png(summary))
    _write_atomic(run_dir / "report.html", _render_html(summary).encode("utf-8"))


# ---------------------------------------------------------------------------------------------- data


def _finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing, not a number, or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _label(arch: Any) -> str:
    """Compact architecture label, e.g. `L24-h432-m1024-q9kv3-d64` (`?` for a missing size)."""
    a = arch if isinstance(arch, Mapping) else {}

    def g(key: str) -> str:
        return "?" if a.get(key) is None else str(a[key])

    return (
        f"L{g('num_hidden_layers')}-h{g('hidden_size')}-m{g('intermediate_size')}"
        f"-q{g('num_attention_heads')}kv{g('num_key_value_heads')}-d{g('head_dim')}"
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
    return c.get("status") == "failed" or bool(c.get("error"))


def _plotted(summary: Mapping[str, Any], x_key: str) -> list[dict[str, Any]]:
    """Candidates that have both `x_key` and a probe loss, as finite numbers."""
    return [
        c
        for c in _candidates(summary)
        if _finite(c.get(x_key)) is not None and _finite(c.get("probe_loss")) is not None
    ]


def _front(cands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    points = [(float(c["params"]), float(c["probe_loss"])) for c in cands]
    return [cands[i] for i in pareto_front(points)]


def _teacher_point(summary: Mapping[str, Any], x_key: str) -> tuple[float | None, float | None]:
    teacher = summary.get("teacher") or {}
    return _finite(teacher.get(x_key)), _finite(teacher.get("zero_shot_loss"))


def _band(summary: Mapping[str, Any]) -> tuple[float, float] | None:
    """The budget band in parameters, when budget and band are known."""
    budget, band = _finite(summary.get("budget")), _finite(summary.get("band"))
    return (budget * (1 - band), budget * (1 + band)) if budget and band else None


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


def _fraction(c: Mapping[str, Any], teacher_params: float | None) -> float | None:
    fraction, params = _finite(c.get("fraction")), _finite(c.get("params"))
    if fraction is None and params is not None and teacher_params:
        fraction = params / teacher_params
    return fraction


def _hover(c: Mapping[str, Any], winner_rank: int | str | None = "") -> str:
    # Plotly renders hover text as a small HTML subset, so summary text is escaped here too.
    lines = [
        f"<b>{_e(_label(c.get('architecture')))}</b>",
        f"trial {_e(c.get('trial_id'))} ({_e(c.get('status'))})",
        f"params {_count(c.get('params'))}, probe loss {_num(c.get('probe_loss'))}",
    ]
    if _finite(c.get("latency_ms")) is not None:
        lines.append(
            f"latency {_num(c.get('latency_ms'), '.2f')} ms, speed-up {_num(c.get('speedup'), '.2f')}×"
        )
    if winner_rank != "":
        lines.append(f"winner #{_e(winner_rank)}, final loss {_num(c.get('final_loss'))}")
    return "<br>".join(lines)


# ------------------------------------------------------------------------------------------ plotly


def _plotly_figure(summary: Mapping[str, Any], x_key: str) -> go.Figure:
    """Scatter of `x_key` (params or latency_ms) vs probe loss, with winners and the teacher."""
    by_params = x_key == "params"
    cands = _plotted(summary, x_key)
    winners = _winner_ranks(summary)
    band = _band(summary) if by_params else None
    tx, ty = _teacher_point(summary, x_key)
    if by_params and ty is None:
        tx = None  # the teacher is placed by its loss; without one it is left out
    split = _split_axis([c[x_key] for c in cands] + list(band or ()), tx)
    fig = go.Figure()
    for status in sorted({str(c.get("status")) for c in cands}):
        group = [c for c in cands if str(c.get("status")) == status]
        symbol = _STATUS_STYLE.get(status, _OTHER_STYLE)[0]
        fig.add_scatter(
            x=[c[x_key] for c in group],
            y=[c["probe_loss"] for c in group],
            mode="markers",
            name=html.escape(status),
            marker={"symbol": symbol, "size": 9, "color": _CANDIDATE_COLOR, "line": {"width": 1.5}},
            text=[_hover(c) for c in group],
            hovertemplate="%{text}<extra></extra>",
        )
    if by_params and cands:
        front = _front(cands)
        fig.add_scatter(
            x=[c["params"] for c in front],
            y=[c["probe_loss"] for c in front],
            mode="lines+markers",
            line={"shape": "hv", "color": _FRONT_COLOR, "width": 2},
            marker={"color": _FRONT_COLOR, "size": 6},
            name="Pareto front",
            hoverinfo="skip",
        )
    won = [c for c in cands if str(c.get("trial_id")) in winners]
    if won:
        fig.add_scatter(
            x=[c[x_key] for c in won],
            y=[c["probe_loss"] for c in won],
            mode="markers+text",
            name="winners",
            marker={
                "symbol": "star",
                "size": 18,
                "color": _WINNER_COLOR,
                "line": {"width": 1, "color": "#333"},
            },
            text=[_e(label) for label in _winner_labels(won, winners, x_key, cands)],
            textposition="top center",
            hovertext=[_hover(c, winners[str(c.get("trial_id"))]) for c in won],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    teacher_axis = "x2" if split else "x"
    if tx is not None and ty is not None:
        teacher_name = _e((summary.get("teacher") or {}).get("name"))
        fig.add_scatter(
            x=[tx],
            y=[ty],
            xaxis=teacher_axis,
            mode="markers+text",
            name="teacher",
            marker={"symbol": "diamond", "size": 12, "color": "#222"},
            text=["teacher"],
            textposition="bottom center",
            hovertext=[f"teacher {teacher_name}<br>zero-shot loss {ty:.3f}"],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    elif tx is not None:  # a latency but no loss: a vertical line still places the teacher
        line = {"dash": "dot", "color": "#222"}
        fig.add_shape(type="line", xref=teacher_axis, yref="paper", x0=tx, x1=tx, y0=0, y1=1, line=line)
        fig.add_annotation(text="teacher", xref=teacher_axis, yref="paper", x=tx, y=1, showarrow=False)
    if band is not None:
        fig.add_vrect(
            x0=band[0],
            x1=band[1],
            fillcolor=_BAND_COLOR,
            opacity=0.1,
            line_width=0,
            annotation_text=f"budget ±{_finite(summary.get('band')) or 0:.0%}",
            annotation_position="top left",
        )
    if not cands:
        # Plotly sizes an axis without data to -1..6; show the band and teacher line where they are.
        xs = [*(band or ()), *([tx] if tx is not None and ty is None else [])]
        if xs:
            pad = 0.1 * (max(xs) - min(xs)) or 0.1 * abs(xs[0]) or 1.0
            fig.update_xaxes(range=[min(xs) - pad, max(xs) + pad])
        what = "parameters" if by_params else "a latency"
        fig.add_annotation(
            text=f"no candidate has {what} and a probe loss",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 16, "color": "#777"},
        )
    fig.update_layout(
        template="plotly_white",
        height=480,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        xaxis_title="parameters" if by_params else "latency (ms)",
        yaxis_title="probe loss (nats/token)",
        legend={"orientation": "h", "y": -0.18},
    )
    if by_params:
        fig.update_layout(xaxis_exponentformat="B")  # 70M, 4.5B rather than SI's 4.5G
    if split and tx is not None:
        # A broken x axis: the candidates get the wide panel, the teacher a narrow one beside it.
        pad = 0.04 * abs(tx) or 1.0
        tick = format_count(int(tx)) if by_params else f"{tx:.1f}"
        fig.update_layout(
            xaxis_domain=[0.0, 0.86],
            xaxis2={"domain": [0.9, 1.0], "anchor": "y", "range": [tx - pad, tx + pad]},
        )
        fig.update_layout(xaxis2_tickvals=[tx], xaxis2_ticktext=[tick], xaxis2_title="teacher")
    return fig


def _figure_html(fig: go.Figure, div_id: str, include_js: bool) -> str:
    config = {"displaylogo": False, "responsive": True}
    # The library is inlined once, with the first figure; MathJax is never loaded.
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=include_js,
            include_mathjax=False,
            div_id=div_id,
            config=config,
            default_height="480px",
        )
    )


# -------------------------------------------------------------------------------------------- html


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int], classes: Sequence[str]
) -> str:
    """An HTML table from already-escaped cells; `numeric` columns are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for row, cls in zip(rows, classes, strict=True):
        cells = "".join(
            f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ranking(summary: Mapping[str, Any]) -> str:
    cands, winners = _candidates(summary), _winner_ranks(summary)
    if not cands:
        return '<p class="empty">No candidates.</p>'
    teacher_params = _finite((summary.get("teacher") or {}).get("params"))

    def key(c: Mapping[str, Any]) -> tuple[int, float, float]:
        rank, loss = _finite(c.get("rank")), _finite(c.get("probe_loss"))
        group = 0 if rank is not None else 2 if _is_failed(c) else 1  # ranked, unranked, failed
        return group, rank if rank is not None else 0.0, loss if loss is not None else math.inf

    ordered = sorted(cands, key=key)
    header = ["rank", "trial", "architecture", "params", "of teacher", "zero-shot loss", "probe loss"]
    header += ["final loss", "latency (ms)", "speed-up", "status"]
    rows = []
    for c in ordered:
        fraction = _fraction(c, teacher_params)
        rows.append(
            [
                _e(c.get("rank")),
                _e(c.get("trial_id")),
                f"<code>{_e(_label(c.get('architecture')))}</code>",
                _count(c.get("params")),
                _DASH if fraction is None else f"{fraction:.1%}",
                _num(c.get("zero_shot_loss")),
                _num(c.get("probe_loss")),
                _num(c.get("final_loss")),
                _num(c.get("latency_ms"), ".2f"),
                _DASH if _finite(c.get("speedup")) is None else f"{_num(c.get('speedup'), '.2f')}×",
                _e(c.get("status")) + (" ★ winner" if str(c.get("trial_id")) in winners else ""),
            ]
        )
    classes = ["winner" if str(c.get("trial_id")) in winners else "" for c in ordered]
    return _table(header, rows, {0, 3, 4, 5, 6, 7, 8, 9}, classes)


def _winners(summary: Mapping[str, Any]) -> str:
    winners = [w for w in summary.get("winners") or [] if isinstance(w, Mapping)]
    if not winners:
        return '<p class="empty">No winners were retrained.</p>'
    winners.sort(key=lambda w: (_finite(w.get("rank")) is None, _finite(w.get("rank")) or 0.0))
    rows = [
        [
            _e(w.get("rank")),
            _e(w.get("trial_id")),
            f"<code>{_e(_label(w.get('architecture')))}</code>",
            _count(w.get("params")),
            _num(w.get("final_loss")),
            f"<code>{_e(w.get('path'))}</code>",
        ]
        for w in winners
    ]
    header = ["rank", "trial", "architecture", "params", "final loss", "checkpoint"]
    return _table(header, rows, {0, 3, 4}, [""] * len(rows))


def _failures(summary: Mapping[str, Any]) -> str:
    failed = [c for c in _candidates(summary) if _is_failed(c)]
    if not failed:
        return '<p class="empty">No trial failed.</p>'
    rows = [
        [
            _e(c.get("trial_id")),
            f"<code>{_e(_label(c.get('architecture')))}</code>",
            _e(c.get("status")),
            f"<pre>{_e(c.get('error') or '(no error message)')}</pre>",
        ]
        for c in failed
    ]
    return _table(["trial", "architecture", "status", "error"], rows, set(), [""] * len(rows))


def _settings(summary: Mapping[str, Any]) -> str:
    settings = summary.get("settings") or {}
    if not isinstance(settings, Mapping) or not settings:
        return '<p class="empty">No settings recorded.</p>'
    rows = [
        [f"<code>{_e(k)}</code>", _e(v if isinstance(v, str) else json.dumps(v, default=str))]
        for k, v in settings.items()
    ]
    return _table(["setting", "value"], rows, set(), [""] * len(rows))


def _render_html(summary: Mapping[str, Any]) -> str:
    teacher = summary.get("teacher") or {}
    name, budget, band = summary.get("name"), summary.get("budget"), _finite(summary.get("band"))
    band_text = "" if band is None else f" ±{band:.0%}"
    title = f"{_e(name)}: {_count(budget)} from {_e(teacher.get('name'))}"
    teacher_line = (
        f"teacher <b>{_e(teacher.get('name'))}</b> <code>{_e(_label(teacher.get('architecture')))}</code>, "
        f"{_count(teacher.get('params'))} parameters, zero-shot loss {_num(teacher.get('zero_shot_loss'))}, "
        f"latency {_num(teacher.get('latency_ms'), '.2f')} ms, "
        f"{_num(teacher.get('tokens_per_s'), ',.0f')} tokens/s"
    )
    n_cands = len(_candidates(summary))
    n_failed = sum(_is_failed(c) for c in _candidates(summary))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>Search {title}</h1>",
        f'<p class="meta">budget <b>{_count(budget)}</b>{band_text}'
        f" · space <code>{_e(summary.get('space'))}</code>"
        f" · created {_e(summary.get('created'))} · {n_cands} candidates, {n_failed} failed</p>",
        f'<p class="meta">{teacher_line}</p>',
    ]
    if summary.get("limited"):
        parts.append(f'<div class="caveat"><b>Note:</b> {_e(summary["limited"])}</div>')
    parts += [
        "<h2>Parameters vs probe loss</h2>",
        _figure_html(_plotly_figure(summary, "params"), "pareto-plot", include_js=True),
        "<h2>Latency vs probe loss</h2>",
        _figure_html(_plotly_figure(summary, "latency_ms"), "latency-plot", include_js=False),
        "<h2>Ranking</h2>",
        _ranking(summary),
        "<h2>Retrained winners</h2>",
        _winners(summary),
        "<h2>Failed trials</h2>",
        _failures(summary),
        "<h2>Settings</h2>",
        _settings(summary),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------- png


def _pareto_png(summary: Mapping[str, Any]) -> bytes:
    """The parameters-vs-probe-loss plot as PNG bytes (about 960 × 600 pixels)."""
    # A bare Figure on the Agg canvas, not pyplot: no display, no global backend switch, and no
    # figure kept alive in pyplot's registry when the search writes reports repeatedly.
    fig = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(fig)
    cands, winners, band = _plotted(summary, "params"), _winner_ranks(summary), _band(summary)
    tx, ty = _teacher_point(summary, "params")
    if ty is None:
        tx = None
    split = _split_axis([c["params"] for c in cands] + list(band or ()), tx)
    if split:  # a broken x axis, as in the HTML: candidates wide, the teacher in a narrow panel
        grid = fig.add_gridspec(1, 2, width_ratios=[7, 1], wspace=0.05)
        ax = fig.add_subplot(grid[0])
        teacher_ax = fig.add_subplot(grid[1], sharey=ax)
    else:
        ax = teacher_ax = fig.add_subplot()
    if band is not None:
        label = f"budget ±{_finite(summary.get('band')) or 0:.0%}"
        ax.axvspan(band[0], band[1], color=_BAND_COLOR, alpha=0.1, label=label)
    for status in sorted({str(c.get("status")) for c in cands}):
        group = [c for c in cands if str(c.get("status")) == status]
        _, marker, filled = _STATUS_STYLE.get(status, _OTHER_STYLE)
        ax.scatter(
            [c["params"] for c in group],
            [c["probe_loss"] for c in group],
            marker=marker,
            s=40,
            facecolors=_CANDIDATE_COLOR if filled else "none",
            edgecolors=_CANDIDATE_COLOR,
            label=status.replace("$", r"\$"),
            zorder=3,
        )
    if cands:
        front = _front(cands)
        ax.step(
            [c["params"] for c in front],
            [c["probe_loss"] for c in front],
            where="post",
            color=_FRONT_COLOR,
            marker=".",
            lw=2,
            label="Pareto front",
            zorder=2,
        )
    won = [c for c in cands if str(c.get("trial_id")) in winners]
    if won:
        ax.scatter(
            [c["params"] for c in won],
            [c["probe_loss"] for c in won],
            marker="*",
            s=260,
            color=_WINNER_COLOR,
            edgecolors="#333",
            label="winners",
            zorder=4,
        )
        for c, text in zip(won, _winner_labels(won, winners, "params", cands), strict=True):
            ax.annotate(
                text,
                (c["params"], c["probe_loss"]),
                textcoords="offset points",
                xytext=(0, 10),
                ha="center",
                fontsize=9,
                parse_math=False,
            )
    if tx is not None and ty is not None:
        teacher_ax.scatter([tx], [ty], marker="D", s=60, color="#222", label="teacher", zorder=4)
        teacher_ax.annotate(
            "teacher", (tx, ty), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=9
        )
    if not cands:
        ax.text(0.5, 0.5, "no candidate has a probe loss", transform=ax.transAxes, ha="center", color="#777")
    for axis in {ax, teacher_ax}:
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(int(v))))
        axis.grid(alpha=0.3)
    if split and tx is not None:
        pad = 0.04 * abs(tx) or 1.0
        teacher_ax.set_xlim(tx - pad, tx + pad)
        teacher_ax.set_xticks([tx])
        ax.spines["right"].set_visible(False)
        teacher_ax.spines["left"].set_visible(False)
        teacher_ax.tick_params(axis="y", left=False, labelleft=False)
        slash: dict[str, Any] = {
            "marker": [(-1, -1), (1, 1)],
            "markersize": 10,
            "linestyle": "none",
            "color": "k",
            "clip_on": False,
        }
        ax.plot([1, 1], [0, 1], transform=ax.transAxes, **slash)
        teacher_ax.plot([0, 0], [0, 1], transform=teacher_ax.transAxes, **slash)
    ax.set_xlabel("parameters")
    ax.set_ylabel("probe loss (nats/token)")
    title = f"{summary.get('name') or 'search'}: budget {_count(summary.get('budget'))}"
    ax.set_title(title, parse_math=False)
    handles, labels = ax.get_legend_handles_labels()
    if teacher_ax is not ax:
        more = teacher_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

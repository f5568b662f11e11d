"""The report's interactive figures: plotly, the library inlined into the page (nothing fetched)."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from minitron.budget import format_count
from search.outputs import report_data as common
from search.outputs.report_data import _Point
from search.outputs.summary import Summary
from search.plan.settings import Objective


def _plotly_figure(summary: Summary, axis: Objective) -> go.Figure:
    """Scatter of `axis` (parameters or latency) vs probe loss: candidates by status, the Pareto
    front on `axis`, hand-designed shapes, winners, the teacher; on parameters the feasible budget,
    and the winners' budget points on the axis of the search's objective."""
    by_params = axis is Objective.PARAMS
    cands = common._plotted(summary, axis)
    winners = common._winner_ranks(summary)
    band = common._band(summary) if by_params else None
    objective = summary.objective
    points = common._budget_points(summary) if axis is objective else []
    tx, ty = common._teacher_point(summary, axis)
    if by_params and ty is None:
        tx = None  # the teacher is placed by its loss; without one it is left out
    split = common._split_axis([c.x for c in cands] + list(band or ()) + [p for _, p in points], tx)
    fig = go.Figure()
    spread = [] if by_params else [(c, e) for c in cands if (e := common._spread_error(c.trial)) is not None]
    if spread:  # the bars alone, in a trace of their own: a point without a spread gets none
        fig.add_scatter(
            x=[c.x for c, _ in spread],
            y=[c.y for c, _ in spread],
            mode="markers",
            name="latency: fastest–slowest round",
            marker={"color": common._CANDIDATE_COLOR, "size": 1, "opacity": 0},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [e[1] for _, e in spread],
                "arrayminus": [e[0] for _, e in spread],
                "color": common._CANDIDATE_COLOR,
                "thickness": 1,
                "width": 3,
            },
            hoverinfo="skip",
        )
    searched = [c for c in cands if not common._name(c.trial)]
    for status, group in common._by_status(searched):
        symbol = common._style(group[0].trial)[0]
        fig.add_scatter(
            x=[c.x for c in group],
            y=[c.y for c in group],
            mode="markers",
            name=html.escape(status.value),
            marker={"symbol": symbol, "size": 9, "color": common._CANDIDATE_COLOR, "line": {"width": 1.5}},
            text=[common._hover(c.row) for c in group],
            hovertemplate="%{text}<extra></extra>",
        )
    if cands:
        front = common._front(cands)
        fig.add_scatter(
            x=[c.x for c in front],
            y=[c.y for c in front],
            mode="lines+markers",
            line={"shape": "hv", "color": common._FRONT_COLOR, "width": 2},
            marker={"color": common._FRONT_COLOR, "size": 6},
            name="Pareto front",
            hoverinfo="skip",
        )
    shapes = [c for c in cands if common._name(c.trial)]
    if shapes:
        _labelled_markers(
            fig,
            shapes,
            "hand-designed shapes",
            marker={
                "symbol": ["square" if common._style(c.trial)[2] else "square-open" for c in shapes],
                "size": 10,
                "color": common._SHAPE_COLOR,
                "line": {"width": 1.5, "color": common._SHAPE_COLOR},
            },
            text=[common._e(common._name(c.trial)) for c in shapes],
            hovertext=[common._hover(c.row) for c in shapes],
            textposition="bottom right",
            textfont={"size": 11, "color": common._SHAPE_COLOR},
        )
    won = [c for c in cands if c.trial.trial_id in winners]
    if won:
        _labelled_markers(
            fig,
            won,
            "winners",
            marker={
                "symbol": "star",
                "size": 18,
                "color": common._WINNER_COLOR,
                "line": {"width": 1, "color": "#333"},
            },
            text=[common._e(label) for label in common._winner_labels(won, winners, cands)],
            hovertext=[common._hover(c.row, winners[c.trial.trial_id]) for c in won],
            textposition="top center",
        )
    teacher_axis = "x2" if split else "x"
    if tx is not None and ty is not None:
        teacher = summary.teacher
        teacher_name = common._e(teacher.name)
        teacher_spread = None if by_params else common._spread_error(teacher)
        error_x = (
            {"type": "data", "symmetric": False, "array": [teacher_spread[1]]}
            | {"arrayminus": [teacher_spread[0]], "color": "#222", "thickness": 1.5, "width": 4}
            if teacher_spread is not None
            else None
        )
        latency = f"<br>latency {common._latency_text(teacher)} ms" if not by_params else ""
        fig.add_scatter(
            error_x=error_x,
            x=[tx],
            y=[ty],
            xaxis=teacher_axis,
            mode="markers+text",
            name="teacher",
            marker={"symbol": "diamond", "size": 12, "color": "#222"},
            text=["teacher"],
            textposition="bottom center",
            hovertext=[f"teacher {teacher_name}<br>zero-shot loss {ty:.3f}{latency}"],
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
            fillcolor=common._BAND_COLOR,
            opacity=0.1,
            line_width=0,
            annotation_text=common._e(common._band_label(summary)),
            annotation_position="top left",
        )
    for rank, point in points:
        fig.add_vline(
            x=point,
            line={"dash": "dot", "width": 1, "color": common._POINT_COLOR},
            annotation_text=f"{common._e(common._budget_point_text(point, objective))} (#{common._e(rank)})",
            annotation_position="bottom right",
            annotation_font={"size": 10, "color": common._POINT_COLOR},
        )
    if not cands:
        # Plotly sizes an axis without data to -1..6; show the band and teacher line where they are.
        xs = [*(band or ()), *(p for _, p in points), *([tx] if tx is not None and ty is None else [])]
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
        xaxis_title="parameters" if by_params else "latency (ms, median of rounds)",
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


def _labelled_markers(
    fig: go.Figure,
    points: list[_Point],
    name: str,
    *,
    marker: dict[str, Any],
    text: list[str],
    hovertext: list[str],
    **style: Any,
) -> None:
    """Named candidates (hand shapes, winners) as labelled markers over their probe loss."""
    fig.add_scatter(
        x=[c.x for c in points],
        y=[c.y for c in points],
        mode="markers+text",
        name=name,
        marker=marker,
        text=text,
        hovertext=hovertext,
        hovertemplate="%{hovertext}<extra></extra>",
        **style,
    )

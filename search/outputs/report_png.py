"""`pareto.png`: probe loss against parameters and against latency, side by side, drawn with
matplotlib's Agg canvas (no display)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from typing import Any, Literal

from minitron.data.assets import cache_dir

# matplotlib keeps a font cache in ~/.cache/matplotlib unless told otherwise; ours goes with our
# other caches, so a search writes nowhere but its run directory and the cache directory.
os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox, blended_transform_factory

from minitron.budget import format_count
from search.outputs import report_data as common
from search.outputs.outcomes import TeacherRecord
from search.outputs.summary import Summary
from search.plan.settings import Objective

#: A place a label may take: its anchor (None: where it points now), its offset from there in
#: points, its horizontal and vertical alignment.
_Place = tuple[
    tuple[float, float] | None,
    tuple[float, float],
    Literal["left", "center", "right"],
    Literal["bottom", "center", "top"],
]

#: Where a hand shape's name may go around its marker (offset points, alignment), in order of taste.
_NAME_PLACES: list[_Place] = [
    (None, (7, -4), "left", "top"),
    (None, (7, 4), "left", "bottom"),
    (None, (-7, -4), "right", "top"),
    (None, (-7, 4), "right", "bottom"),
    (None, (0, -9), "center", "top"),
    (None, (0, 9), "center", "bottom"),
]
#: Where a winner's `#rank` may go around its star, likewise.
_RANK_PLACES: list[_Place] = [
    (None, (0, 9), "center", "bottom"),
    (None, (0, -9), "center", "top"),
    (None, (10, 0), "left", "center"),
    (None, (-10, 0), "right", "center"),
]

# --------------------------------------------------------------------------------------------- png


def _pareto_png(summary: Summary) -> bytes:
    """Probe loss against parameters (left) and against latency (right) as PNG bytes.

    Each panel shows the candidates by status, its own Pareto front, the hand-designed shapes, the
    winners and the teacher; the parameters panel shades the feasible budget (one budget ±band, or
    a range), and the winners' budget points are dotted lines in the panel of the search's objective.
    """
    # A bare Figure on the Agg canvas, not pyplot: no display, no global backend switch, and no
    # figure kept alive in pyplot's registry when the search writes reports repeatedly.
    fig = Figure(figsize=(14, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(1, 2, wspace=0.12)
    objective = summary.objective
    panels: list[tuple[list[Axes], list[tuple[Annotation, list[_Place]]]]] = []
    for spec, axis in ((outer[0], Objective.PARAMS), (outer[1], Objective.LATENCY)):
        points = common._budget_points(summary) if axis is objective else []
        share = panels[0][0][0] if panels else None
        panels.append(_panel(fig, spec, summary, axis, points, share))
    title = f"{summary.name or 'search'}: budget {common._budget_text(summary)}"
    if objective is Objective.LATENCY:
        title += " · objective: latency"
    fig.suptitle(title, parse_math=False)
    _legend(fig, [axis for axes, _ in panels for axis in axes])
    for axes, movable in panels:
        _place_labels(fig, axes[0], movable)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def _panel(
    fig: Figure,
    spec: SubplotSpec,
    summary: Summary,
    axis: Objective,
    budget_points: Sequence[tuple[int, float]],
    share: Axes | None,
) -> tuple[list[Axes], list[tuple[Annotation, list[_Place]]]]:
    """One panel: probe loss against `axis` (parameters or latency).

    Returns its axes (the main one first, then the teacher's when the x axis is broken) and the
    labels that may still move to keep clear of each other, with the places each may take.
    """
    by_params = axis is Objective.PARAMS
    cands, ranks = common._plotted(summary, axis), common._winner_ranks(summary)
    band = common._band(summary) if by_params else None
    tx, ty = common._teacher_point(summary, axis)
    if by_params and ty is None:
        tx = None  # the teacher is placed by its loss; without one it is left out
    xs = [c.x for c in cands] + list(band or ()) + [p for _, p in budget_points]
    split = common._split_axis(xs, tx)
    if split:  # a broken x axis, as in the HTML: candidates wide, the teacher in a narrow panel
        sub = spec.subgridspec(1, 2, width_ratios=[7, 1], wspace=0.05)
        ax = fig.add_subplot(sub[0], sharey=share)
        teacher_ax = fig.add_subplot(sub[1], sharey=ax)
    else:
        ax = teacher_ax = fig.add_subplot(spec, sharey=share)
    fixed: list[tuple[Annotation, list[_Place]]] = []  # the band's and the budget points' labels
    names: list[tuple[Annotation, list[_Place]]] = []
    ranked: list[tuple[Annotation, list[_Place]]] = []
    top = blended_transform_factory(ax.transData, ax.transAxes)
    if band is not None:
        label = common._band_label(summary)
        ax.axvspan(band[0], band[1], color=common._BAND_COLOR, alpha=0.1, label=label, zorder=0)
        if common._budget_range(summary)[0] is not None:  # a range: name it in the plot too, in a corner
            corners: list[_Place] = [
                ((band[1], 1), (-4, -4), "right", "top"),  # large and bad: rarely a point there
                ((band[0], 0), (4, 4), "left", "bottom"),
                ((band[1], 0), (-4, 4), "right", "bottom"),
                ((band[0], 1), (4, -4), "left", "top"),
            ]
            text = ax.annotate(
                label,
                (band[1], 1),
                xycoords=top,
                textcoords="offset points",
                xytext=corners[0][1],
                fontsize=8,
                color="#2d6a2d",
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                parse_math=False,
            )
            fixed.append((text, corners))
    for rank, point in budget_points:
        ax.axvline(point, color=common._POINT_COLOR, ls=":", lw=1, zorder=1)
        ends: list[_Place] = [
            ((point, 0), (-2, 4), "right", "bottom"),
            ((point, 1), (-2, -4), "right", "top"),
            ((point, 0), (2, 4), "left", "bottom"),
            ((point, 1), (2, -4), "left", "top"),
        ]
        text = ax.annotate(
            f"{common._budget_point_text(point, axis)} (#{rank})",
            (point, 0),
            xycoords=top,
            textcoords="offset points",
            xytext=ends[0][1],
            rotation=90,
            fontsize=7,
            color=common._POINT_COLOR,
            parse_math=False,
        )
        fixed.append((text, ends))
    if budget_points:  # one legend entry for all the lines
        ax.plot([], [], color=common._POINT_COLOR, ls=":", lw=1, label="winners' budget points")
    if not by_params:
        spread = [(c, e) for c in cands if (e := common._spread_error(c.trial)) is not None]
        if spread:
            ax.errorbar(
                [c.x for c, _ in spread],
                [c.y for c, _ in spread],
                xerr=[[e[0] for _, e in spread], [e[1] for _, e in spread]],
                fmt="none",
                ecolor=common._CANDIDATE_COLOR,
                elinewidth=1,
                capsize=2.5,
                alpha=0.6,
                label="latency: fastest–slowest round",
                zorder=2,
            )
    searched = [c for c in cands if not common._name(c.trial)]
    for status, group in common._by_status(searched):
        _, marker, filled = common._style(group[0].trial)
        ax.scatter(
            [c.x for c in group],
            [c.y for c in group],
            marker=marker,
            s=40,
            facecolors=common._CANDIDATE_COLOR if filled else "none",
            edgecolors=common._CANDIDATE_COLOR,
            label=status.value,
            zorder=3,
        )
    if cands:
        front = common._front(cands)
        ax.step(
            [c.x for c in front],
            [c.y for c in front],
            where="post",
            color=common._FRONT_COLOR,
            marker=".",
            lw=2,
            alpha=0.85,
            label="Pareto front",
            zorder=2.5,
        )
    shapes = [c for c in cands if common._name(c.trial)]
    if shapes:
        filled_shape = [common._style(c.trial)[2] for c in shapes]
        ax.scatter(
            [c.x for c in shapes],
            [c.y for c in shapes],
            marker="s",
            s=48,
            facecolors=[common._SHAPE_COLOR if f else "none" for f in filled_shape],
            edgecolors=common._SHAPE_COLOR,
            linewidths=1.5,
            label="hand-designed shapes",
            zorder=3.5,
        )
        for c in shapes:
            text = ax.annotate(
                str(common._name(c.trial)),
                (c.x, c.y),
                textcoords="offset points",
                xytext=_NAME_PLACES[0][1],
                fontsize=7,
                color=common._SHAPE_COLOR,
                parse_math=False,
                zorder=5,
            )
            names.append((text, _NAME_PLACES))
    won = [c for c in cands if c.trial.trial_id in ranks]
    if won:
        ax.scatter(
            [c.x for c in won],
            [c.y for c in won],
            marker="*",
            s=260,
            color=common._WINNER_COLOR,
            edgecolors="#333",
            label="winners",
            zorder=4,
        )
        for c, label in zip(won, common._winner_labels(won, ranks, cands), strict=True):
            if label:
                text = ax.annotate(
                    label,
                    (c.x, c.y),
                    textcoords="offset points",
                    xytext=_RANK_PLACES[0][1],
                    fontsize=9,
                    parse_math=False,
                    zorder=5,
                )
                ranked.append((text, _RANK_PLACES))
    _teacher(summary.teacher, teacher_ax, axis, tx, ty)
    if not cands:
        what = "parameters" if by_params else "a latency"
        ax.text(
            0.5,
            0.8,  # above the teacher, alone in the middle
            f"no candidate has {what} and a probe loss",
            transform=ax.transAxes,
            ha="center",
            color="#777",
        )
    axes = [ax] if teacher_ax is ax else [ax, teacher_ax]
    for each in axes:
        if by_params:
            each.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(int(v))))
        each.grid(alpha=0.3)
    if split and tx is not None:
        pad = 0.04 * abs(tx) or 1.0
        teacher_ax.set_xlim(tx - pad, tx + pad)
        teacher_ax.set_xticks([tx], [format_count(int(tx)) if by_params else f"{tx:.1f}"])
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
    ax.set_xlabel("parameters" if by_params else "latency (ms, median of rounds)")
    if share is None:
        ax.set_ylabel("probe loss (nats/token)")
    ax.set_title("probe loss vs parameters" if by_params else "probe loss vs latency", fontsize=10)
    return axes, ranked + fixed + names  # the winners' labels choose their places first


def _teacher(teacher: TeacherRecord, ax: Axes, axis: Objective, tx: float | None, ty: float | None) -> None:
    """The teacher as a diamond (with its latency spread); a dotted line when it has no loss."""
    if tx is None:
        return
    if ty is None:  # a latency but no loss: a vertical line still places the teacher
        ax.axvline(tx, color="#222", ls=":", lw=1)
        ax.annotate(
            "teacher",
            (tx, 1),
            xycoords=blended_transform_factory(ax.transData, ax.transAxes),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=9,
        )
        return
    spread = common._spread_error(teacher) if axis is Objective.LATENCY else None
    if spread is not None:
        ax.errorbar([tx], [ty], xerr=[[spread[0]], [spread[1]]], fmt="none", ecolor="#222", capsize=2.5)
    ax.scatter([tx], [ty], marker="D", s=60, color="#222", label="teacher", zorder=4)
    ax.annotate("teacher", (tx, ty), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=9)


def _legend(fig: Figure, axes: Sequence[Axes]) -> None:
    """One legend for both panels, below them, each entry once."""
    entries: dict[str, Artist] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.02),
            ncol=math.ceil(len(entries) / math.ceil(len(entries) / 7)),  # rows of at most 7
            fontsize=8,
            frameon=False,
        )


def _place_labels(fig: Figure, ax: Axes, movable: Sequence[tuple[Annotation, Sequence[_Place]]]) -> None:
    """Put each label at the first of its places that overlaps no marker and no label placed so far
    and stays inside the axes (the first place when none does)."""
    if not movable:
        return
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    taken = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y, r in _markers(ax, fig.dpi)]
    texts = {id(t) for t, _ in movable}
    taken += [t.get_window_extent(renderer) for t in ax.texts if id(t) not in texts and t.get_text()]
    for text, places in movable:
        for i, (anchor, offset, ha, va) in enumerate([*places, places[0]]):
            if anchor is not None:
                text.xy = anchor
            text.xyann = offset
            text.set_horizontalalignment(ha)
            text.set_verticalalignment(va)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if i == len(places) or (inside and not any(box.overlaps(b) for b in taken)):
                break
        taken.append(text.get_window_extent(renderer))


def _markers(ax: Axes, dpi: float) -> list[tuple[float, float, float]]:
    """Every scatter marker of an axes as (x, y, radius) in display pixels."""
    out = []
    for coll in ax.collections:
        if not isinstance(coll, PathCollection):
            continue
        offsets = coll.get_offset_transform().transform(coll.get_offsets())
        sizes = list(coll.get_sizes()) or [36.0]
        for i, (x, y) in enumerate(offsets):
            out.append((float(x), float(y), (sizes[i % len(sizes)] ** 0.5) / 2 * dpi / 72))
    return out

"""`pareto.png`: the parameters-vs-probe-loss plot drawn with matplotlib's Agg canvas (no display)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

from minitron.data.assets import cache_dir

# matplotlib keeps a font cache in ~/.cache/matplotlib unless told otherwise; ours goes with our
# other caches, so a search writes nowhere but its run directory and the cache directory.
os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from minitron.budget import format_count
from search.report_data import (
    _BAND_COLOR,
    _CANDIDATE_COLOR,
    _FRONT_COLOR,
    _OTHER_STYLE,
    _STATUS_STYLE,
    _WINNER_COLOR,
    _band,
    _count,
    _finite,
    _front,
    _plotted,
    _split_axis,
    _teacher_point,
    _winner_labels,
    _winner_ranks,
)

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

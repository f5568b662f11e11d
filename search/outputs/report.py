"""The search run's report: `report.html` (interactive, self-contained) and `pareto.png` (static).

`write_report(run_dir, summary)` takes the run's `search.outputs.summary.Summary` and writes both files
atomically. The HTML page inlines plotly.js and references nothing outside
itself (no CDN, fonts, images or MathJax), so it opens offline and makes no network request. The
PNG is drawn with matplotlib's Agg canvas, so no display is needed. This module never imports Ray
or Optuna: the report can be rebuilt from a saved summary on any machine.
"""

from __future__ import annotations

from pathlib import Path

from minitron.atomic import write_bytes
from search.outputs.report_html import _render_html
from search.outputs.report_png import _pareto_png
from search.outputs.summary import Summary
from search.plan.pareto import pareto_front

__all__ = ["pareto_front", "write_report"]


def write_report(run_dir: Path, summary: Summary) -> None:
    """Write `run_dir/report.html` and `run_dir/pareto.png` for a search run, each atomically.

    The pages read the typed summary and its records by attribute; a report can be rebuilt from a
    saved `summary.json` with `Summary.load`. Any number may be missing; any list may be empty.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_bytes(run_dir / "pareto.png", _pareto_png(summary))
    write_bytes(run_dir / "report.html", _render_html(summary).encode("utf-8"))

"""The search run's report: `report.html` (interactive, self-contained) and `pareto.png` (static).

`write_report(run_dir, summary)` takes the run's summary (see `write_report` for the schema) and
writes both files atomically. The HTML page inlines plotly.js and references nothing outside
itself (no CDN, fonts, images or MathJax), so it opens offline and makes no network request. The
PNG is drawn with matplotlib's Agg canvas, so no display is needed. This module never imports Ray
or Optuna: the report can be rebuilt from a saved summary on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.report_data import pareto_front  # noqa: F401  (public API)
from search.report_html import _render_html
from search.report_png import _pareto_png
from search.rundir import write_bytes


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
    write_bytes(run_dir / "pareto.png", _pareto_png(summary))
    write_bytes(run_dir / "report.html", _render_html(summary).encode("utf-8"))

"""`report.html`: plotly figures (library inlined, nothing fetched) and HTML tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from minitron import codec
from search.outputs.outcomes import ModelScores
from search.outputs.records import TrialRecord
from search.outputs.report_data import (
    _DASH,
    _budget_point_text,
    _budget_text,
    _count,
    _e,
    _finite,
    _fraction,
    _is_failed,
    _label,
    _latency_text,
    _name,
    _num,
    _speedup_text,
    _teacher_label,
    _winner_ranks,
    flat_settings,
)
from search.outputs.report_plotly import _figure_html, _plotly_figure
from search.outputs.summary import CandidateRow, Summary
from search.plan.settings import Objective

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1200px; padding: 0 1em; color: #222; overflow-wrap: break-word; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #555; margin: 0.2em 0; }
.caveat { background: #fff4ce; border: 1px solid #e0c200; padding: 0.6em 0.9em; margin: 1em 0; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.winner td { background: #fff8dc; font-weight: 600; }
td code { white-space: nowrap; }
td code.path { white-space: normal; overflow-wrap: anywhere; word-break: break-word; }
.shape { color: #7b2cbf; font-size: 0.85em; white-space: nowrap; }
table.free td { overflow-wrap: anywhere; word-break: break-word; }
table.samples { width: 100%; table-layout: fixed; }
table.samples th:first-child { width: 11em; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; font-size: 0.9em; }
.empty { color: #777; font-style: italic; }
.sample { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
          font-family: ui-monospace, monospace; font-size: 0.85em; }
"""


# -------------------------------------------------------------------------------------------- html


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: set[int],
    classes: Sequence[str],
    kind: str = "",
) -> str:
    """An HTML table from already-escaped cells; `numeric` columns are right-aligned. It sits in a
    box of the page's width that scrolls sideways when the table is wider (many columns of numbers
    in a narrow window), so the page itself never is. `kind`: the table's class, `free` for cells of
    free text, which wrap anywhere rather than widen the table (`samples`: also equal columns)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for row, cls in zip(rows, classes, strict=True):
        cells = "".join(
            f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    table = f'<table class="{kind}">' if kind else "<table>"
    table += f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def _ranking(summary: Summary) -> str:
    cands, winners = summary.candidates, _winner_ranks(summary)
    if not cands:
        return '<p class="empty">No candidates.</p>'
    teacher_params = _finite(summary.teacher.params)

    def key(c: CandidateRow) -> tuple[int, float, float]:
        rank, loss = _finite(c.rank), _finite(c.trial.probe_loss)
        group = 0 if rank is not None else 2 if _is_failed(c) else 1  # ranked, unranked, failed
        return group, rank if rank is not None else 0.0, loss if loss is not None else math.inf

    ordered = sorted(cands, key=key)
    header = ["rank", "trial", "architecture", "params", "of teacher", "zero-shot loss", "probe loss"]
    header += ["probe tokens", "retrained: val / test loss", "latency (ms)", "speed-up", "status"]
    rows = []
    for c in ordered:
        t = c.trial
        fraction = _fraction(c, teacher_params)
        rows.append(
            [
                _e(c.rank),
                _e(t.trial_id),
                f"<code>{_e(_label(t.architecture))}</code>" + _shape_tag(t),
                _count(t.params),
                _DASH if fraction is None else f"{fraction:.1%}",
                _num(t.zero_shot_loss),
                _num(t.probe_loss),
                _count(t.probe_tokens),
                f"{_num(c.final_loss)} / {_num(c.test_loss)}" if c.winner else _DASH,
                _e(_latency_text(t)),
                _e(_speedup_text(t)),
                _e(t.status.value) + (" ★ winner" if t.trial_id in winners else ""),
            ]
        )
    classes = ["winner" if c.trial.trial_id in winners else "" for c in ordered]
    return _table(header, rows, {0, 3, 4, 5, 6, 7, 8, 9, 10}, classes)


def _shape_tag(trial: TrialRecord | None) -> str:
    """A hand-designed shape's name under its architecture ("" for a searched one)."""
    name = _name(trial) if trial is not None else None
    return f'<br><span class="shape" title="hand-designed shape">hand shape {_e(name)}</span>' if name else ""


def _winners(summary: Summary) -> str:
    if not summary.winners:
        return '<p class="empty">No winners were retrained.</p>'
    winners = sorted(summary.winners, key=lambda w: w.rank)
    shapes = {c.trial.trial_id: c.trial for c in summary.candidates if _name(c.trial)}
    with_points = any(_finite(w.budget_point) is not None for w in winners)
    objective = summary.objective
    rows = [
        [
            _e(w.rank),
            _e(w.trial_id),
            f"<code>{_e(_label(w.architecture))}</code>" + _shape_tag(shapes.get(w.trial_id)),
            _count(w.params),
            *([_budget_point_text(w.budget_point, objective)] if with_points else []),
            _num(w.result.final_loss),
            f"<b>{_num(w.result.test_loss)}</b>",
            f'<code class="path">{_e(w.result.path)}</code>',
        ]
        for w in winners
    ]
    header = ["rank", "trial", "architecture", "params"]
    header += ["budget point"] if with_points else []
    header += ["validation loss", "test loss", "checkpoint"]
    numeric = {0, 3, 4, 5, 6} if with_points else {0, 3, 4, 5}
    note = '<p class="meta">The test split was read only here: nothing in the search chose with it.'
    if with_points:
        note += (
            " A winner's budget point is the budget "
            + ("(latency)" if objective is Objective.LATENCY else "(parameters)")
            + " at which it is the best candidate on the front."
        )
    return _table(header, rows, numeric, [""] * len(rows)) + note + "</p>"


def _items(model: ModelScores | None, task: str) -> object:
    """Items lm-eval scored for `task` (its `n-samples`' `effective`), None when not recorded."""
    counts = model.n_samples.get(task) if model is not None else None
    return counts.get("effective") if isinstance(counts, dict) else None


def _benchmarks(summary: Summary) -> str:
    """Teacher vs winners on lm-eval tasks: headline metric in points, winners' change in points."""
    bench = summary.benchmarks
    if bench is None or not bench.tasks:
        return '<p class="empty">No benchmarks were run (<code>--eval none</code>).</p>'
    columns = [("teacher", "teacher")] + [(w.trial_id, f"winner #{_e(w.rank)}") for w in summary.winners]
    teacher = bench.models.get("teacher")
    teacher_scores = (teacher.scores if teacher is not None else None) or {}
    header = ["task", "metric", "items"] + [label for _, label in columns]
    rows = []
    for task in bench.tasks:
        row = [_e(task), _e(bench.metrics.get(task)), _e(_items(teacher, task))]
        for key, _ in columns:
            model = bench.models.get(key)
            if model is not None and model.error is not None:
                row.append(f'<span title="{_e(model.error)}">failed</span>')
                continue
            value = _finite(((model.scores if model is not None else None) or {}).get(task))
            if value is None:
                row.append(_DASH)
                continue
            cell = f"{100 * value:.1f}"
            base = _finite(teacher_scores.get(task))
            if key != "teacher" and base is not None:
                cell += f" ({100 * (value - base):+.1f})"
            row.append(cell)
        rows.append(row)
    note = f'<div class="caveat"><b>Limited run:</b> {_e(bench.limited)}.</div>' if bench.limited else ""
    shots = f"{_e(bench.num_fewshot or 0)}-shot"
    caption = (
        f'<p class="meta">lm-eval {shots}, accuracy in points; winners show their change against the '
        "teacher in parentheses. Full lm-eval results are in <code>summary.json</code>.</p>"
    )
    numeric = set(range(2, len(header)))
    return note + _table(header, rows, numeric, [""] * len(rows)) + caption


def _quality(summary: Summary) -> str:
    """Test loss per part of the mix, and each winner's retention of the teacher's benchmarks."""
    from minitron.eval.retention import HEADER, cells
    from search.outputs.quality import domain_table, retention_table

    parts = []
    header, rows = domain_table(summary)
    if rows:
        parts += [
            "<h2>Test loss per domain</h2>",
            _table(
                [_e(h) for h in header],
                [[_e(c) for c in r] for r in rows],
                set(range(1, len(header))),
                [""] * len(rows),
            ),
            '<p class="meta">Nats per token on each part\'s own test split (nothing chose with it); the '
            "part of weight 0 is kept out of training, calibration and ranking. Winners show their gap to "
            "the teacher in parentheses.</p>",
        ]
    retained = False
    for w in summary.winners:
        kept = retention_table(summary, w)
        if not kept:
            continue
        retained = True
        body = [[_e(c) for c in cells(r)] for r in kept]
        head = [_e(h) for h in HEADER[:4]] + [f"winner {_e(w.rank)} (95 % CI)", _e(HEADER[5])]
        parts += [
            f"<h2>Retention, winner {_e(w.rank)}</h2>",
            _table(head, body, set(range(1, 6)), [""] * len(body)),
        ]
    if retained:
        parts.append(
            '<p class="meta">Retention = (winner − chance) ÷ (teacher − chance); intervals are Wilson 95 % '
            "intervals over the items, the retention's from the winner's.</p>"
        )
    return "\n".join(parts)


def _samples(summary: Summary) -> str:
    """Greedy continuations of the fixed prompts, the teacher's beside each winner's."""
    samples = summary.samples
    if samples is None or not samples.prompts or "teacher" not in samples.continuations:
        return ""
    texts = samples.continuations
    winners = [w for w in summary.winners if w.trial_id in texts]
    head = ["prompt", "teacher"] + [f"winner {_e(w.rank)}" for w in winners]
    models = ["teacher"] + [w.trial_id for w in winners]
    rows = []
    for i, prompt in enumerate(samples.prompts):
        row = [prompt] + [texts[m][i] if i < len(texts[m]) else None for m in models]
        rows.append([f'<span class="sample">{_e(text)}</span>' for text in row])
    return "\n".join(
        [
            "<h2>What it writes</h2>",
            _table(head, rows, set(), [""] * len(rows), "free samples"),
            '<p class="meta">Greedy continuations of fixed prompts (no sampling: the text depends on '
            "the weights alone).</p>",
        ]
    )


def _failures(summary: Summary) -> str:
    failed = [c.trial for c in summary.candidates if _is_failed(c)]
    if not failed:
        return '<p class="empty">No trial failed.</p>'
    rows = [
        [
            _e(t.trial_id),
            f"<code>{_e(_label(t.architecture))}</code>",
            _e(t.status.value),
            f"<pre>{_e(t.error or '(no error message)')}</pre>",
        ]
        for t in failed
    ]
    return _table(["trial", "architecture", "status", "error"], rows, set(), [""] * len(rows), "free")


def _settings(summary: Summary) -> str:
    """The run's settings as `summary.json` holds them (the dashboard's URL beside them)."""
    if summary.settings is None and summary.dashboard is None:
        return '<p class="empty">No settings recorded.</p>'
    values = codec.encode(summary.settings) if summary.settings is not None else {}
    rows = [
        [f"<code>{_e(k)}</code>", _e(v if isinstance(v, str) else json.dumps(v, default=str))]
        for k, v in flat_settings({**values, "dashboard": summary.dashboard}).items()
    ]
    return _table(["setting", "value"], rows, set(), [""] * len(rows), "free")


def _render_html(summary: Summary) -> str:
    teacher = summary.teacher
    band = _finite(summary.band)
    band_text = "" if band is None else f" ±{band:.0%}"
    budget = _e(_budget_text(summary))
    second = "latency" if summary.objective is Objective.LATENCY else "parameters"
    title = f"{_e(summary.name)}: {budget} from {_e(teacher.name)}"
    where = f" ({_e(teacher.device)})" if teacher.device else ""
    teacher_line = (
        f"teacher <b>{_e(teacher.name)}</b> <code>{_e(_teacher_label(teacher))}</code>, "
        f"{_count(teacher.params)} parameters, validation loss {_num(teacher.zero_shot_loss)}, "
        f"test loss {_num(teacher.test_loss)}, "
        f"latency {_e(_latency_text(teacher))} ms{where}, "
        f"{_num(teacher.tokens_per_s, ',.0f')} tokens/s"
    )
    n_cands = len(summary.candidates)
    n_failed = sum(_is_failed(c) for c in summary.candidates)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>Search {title}</h1>",
        f'<p class="meta">budget <b>{budget}</b>{band_text}'
        f" · objectives probe loss and <b>{second}</b>"
        f" · space <code>{_e(summary.space)}</code>"
        f" · created {_e(summary.created)} · {n_cands} candidates, {n_failed} failed</p>",
        f'<p class="meta">{teacher_line}</p>',
        f'<p class="meta">{_e(summary.cost.line())}</p>',
    ]
    if summary.limited:
        parts.append(f'<div class="caveat"><b>Note:</b> {_e(summary.limited)}</div>')
    parts += [
        "<h2>Parameters vs probe loss</h2>",
        _figure_html(_plotly_figure(summary, Objective.PARAMS), "pareto-plot", include_js=True),
        "<h2>Latency vs probe loss</h2>",
        _figure_html(_plotly_figure(summary, Objective.LATENCY), "latency-plot", include_js=False),
        "<h2>Ranking</h2>",
        _ranking(summary),
        "<h2>Retrained winners</h2>",
        _winners(summary),
        "<h2>Benchmarks</h2>",
        _benchmarks(summary),
        _quality(summary),
        _samples(summary),
        "<h2>Failed trials</h2>",
        _failures(summary),
        "<h2>Settings</h2>",
        _settings(summary),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"

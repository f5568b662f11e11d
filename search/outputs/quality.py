"""The winners' quality where users judge it: per-domain test losses and benchmark retention.

Both tables are built here once as rows of plain strings and drawn by the report (HTML), the model
cards and the console (Markdown).
"""

from __future__ import annotations

from minitron.eval.retention import Retention, retention_rows
from search.outputs.summary import Summary, WinnerRow

OUT_OF_DOMAIN = "out of domain"


def domain_table(
    summary: Summary, winners: list[WinnerRow] | None = None
) -> tuple[list[str], list[list[str]]]:
    """(header, rows): test loss per part of the mix (and the mixture) for the teacher and each
    winner, with each winner's gap to the teacher; no rows for a run on one corpus."""
    winners = summary.winners if winners is None else winners
    teacher = summary.teacher.test_losses
    if not teacher:
        return [], []
    weights = _weights(summary)
    header = ["test split", "weight", "teacher"] + [f"winner {w.rank}" for w in winners]
    rows = []
    names = [("mixture", None)] + [(name, weights.get(name)) for name in teacher]
    for name, weight in names:
        base = summary.teacher.test_loss if name == "mixture" else teacher.get(name)
        weight_text = "—" if name == "mixture" else OUT_OF_DOMAIN if weight == 0 else f"{weight:g}"
        row = [name, weight_text, _loss(base)]
        for w in winners:
            value = w.result.test_loss if name == "mixture" else w.result.test_losses.get(name)
            gap = f" ({value - base:+.3f})" if value is not None and base is not None else ""
            row.append(_loss(value) + gap)
        rows.append(row)
    return header, rows


def retention_table(summary: Summary, winner: WinnerRow) -> list[Retention]:
    """The winner's chance-normalised retention of the teacher's benchmark scores."""
    bench = summary.benchmarks
    if bench is None:
        return []
    teacher, student = bench.scored("teacher"), bench.scored(winner.trial_id)
    if teacher is None or student is None:
        return []
    return retention_rows(teacher, student, bench.tasks)


def benchmark_table(summary: Summary, labels: dict[str, str] | None = None) -> str:
    """The teacher-vs-winners benchmark table (Markdown) of a summary, or "" without benchmarks.

    `labels` picks the columns (model key -> column title; default: the teacher and every winner).
    """
    from minitron.eval.tables import format_table

    bench = summary.benchmarks
    if bench is None:
        return ""
    if labels is None:
        labels = {"teacher": "teacher"} | {w.trial_id: f"winner {w.rank}" for w in summary.winners}
    columns = {label: scores for key, label in labels.items() if (scores := bench.scored(key)) is not None}
    return format_table(columns, bench.tasks, baseline="teacher") if columns else ""


def markdown(header: list[str], rows: list[list[str]], numbers: bool = True) -> str:
    """A markdown table; `numbers`: every column after the first right-aligned."""
    if not rows:
        return ""
    lines = ["| " + " | ".join(header) + " |", "|---|" + ("---:|" if numbers else "---|") * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _weights(summary: Summary) -> dict[str, float]:
    from minitron.data.mix import parse_data

    if summary.settings is None:
        return {}
    return {p.spec: p.weight for p in parse_data(summary.settings.data)}


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"

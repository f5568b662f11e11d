"""Benchmark scores as a Markdown table: one row per task, one column per model."""

from __future__ import annotations

from minitron.eval.benchmarks import TASKS, Scores


def format_table(
    columns: dict[str, Scores], tasks: tuple[str, ...] | None = None, baseline: str | None = None
) -> str:
    """A Markdown table: one row per task (its headline metric, in points), one column per model.

    With `baseline`, every other column also shows its change against that column in points.
    """
    if not columns:
        return ""
    first = next(iter(columns.values()))
    tasks = tasks or tuple(t for t in first.config.get("tasks", first.results) if t in TASKS)
    header = ["task", "metric", "items", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * len(columns)]
    for task in tasks:
        metric, _ = first.headline(task)
        items = first.n_samples.get(task, {}).get("effective")
        row = [task, metric, str(items) if items is not None else _group_items(first, task)]
        base = columns[baseline].headline(task)[1] if baseline in columns else None
        for name, scores in columns.items():
            value = scores.headline(task)[1]
            cell = "—" if value is None else f"{100 * value:.1f}"
            if value is not None and base is not None and name != baseline:
                cell += f" ({100 * (value - base):+.1f})"
            row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    if any(s.limited for s in columns.values()):
        limits = sorted({str(s.config.get("limit") or "chosen") for s in columns.values() if s.limited})
        notes.append(
            f"LIMITED RUN: at most {', '.join(limits)} items per task (per subject for mmlu); "
            "not comparable with full-set scores"
        )
    shots = sorted({str(s.config.get("num_fewshot") or 0) for s in columns.values()})
    notes.append(f"{'/'.join(shots)}-shot; accuracy in points (0-100)")
    return "\n".join(lines) + "\n\n" + "; ".join(notes) + "\n"


def _group_items(scores: Scores, task: str) -> str:
    total = sum(v.get("effective", 0) for k, v in scores.n_samples.items() if k.startswith(f"{task}_"))
    return str(total) if total else "?"

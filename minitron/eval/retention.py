"""How much of the teacher's benchmark skill a student keeps, with the noise of the item count.

Retention of a task is chance-normalised: (student − chance) ÷ (teacher − chance), so 100 % is the
teacher's score and 0 % is guessing (a plain ratio of accuracies would credit a student at chance
with half of a two-choice teacher's score). Every accuracy comes with a Wilson 95 % interval over
its item count (100 items: about ±10 points), and the retention's interval is the student's
interval mapped through the same formula (the teacher's score taken as the reference it is), so a
difference the items cannot resolve is not read as a change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minitron.eval.benchmarks import Scores

#: Accuracy of guessing, per task: the share of the right answer among the choices (ARC items have
#: 3-5 choices, most 4), and 0 for lambada's open next-word prediction.
CHANCE = {
    "hellaswag": 0.25,
    "piqa": 0.5,
    "winogrande": 0.5,
    "arc_easy": 0.25,
    "arc_challenge": 0.25,
    "mmlu": 0.25,
    "lambada_openai": 0.0,
}
Z95 = 1.959963984540054


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `p` observed over `n` items."""
    if n <= 0:
        return 0.0, 1.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass(frozen=True)
class Retention:
    """One task's scores and the student's retention of the teacher's."""

    task: str
    items: int
    chance: float
    teacher: float
    teacher_low: float
    teacher_high: float
    student: float
    student_low: float
    student_high: float
    retention: float | None
    """(student − chance) ÷ (teacher − chance); None when the teacher is at or below chance."""
    retention_low: float | None
    retention_high: float | None


def retention(task: str, teacher: float, student: float, items: int) -> Retention:
    chance = CHANCE.get(task, 0.0)
    t_low, t_high = wilson(teacher, items)
    s_low, s_high = wilson(student, items)
    span = teacher - chance
    if span <= 0:
        return Retention(
            task, items, chance, teacher, t_low, t_high, student, s_low, s_high, None, None, None
        )
    return Retention(
        task,
        items,
        chance,
        teacher,
        t_low,
        t_high,
        student,
        s_low,
        s_high,
        (student - chance) / span,
        (s_low - chance) / span,
        (s_high - chance) / span,
    )


def retention_rows(teacher: Scores, student: Scores, tasks: tuple[str, ...]) -> list[Retention]:
    """Retention of every task both scored with an item count (groups such as mmlu are skipped)."""
    rows = []
    for task in tasks:
        t, s = teacher.headline(task)[1], student.headline(task)[1]
        items = student.n_samples.get(task, {}).get("effective")
        if t is not None and s is not None and items:
            rows.append(retention(task, t, s, int(items)))
    return rows


def cells(r: Retention) -> list[str]:
    """One row of the retention table: task, items, chance, teacher, student, retention."""
    kept = "—"
    if r.retention is not None and r.retention_low is not None and r.retention_high is not None:
        kept = f"{100 * r.retention:.0f} % ({100 * r.retention_low:.0f} to {100 * r.retention_high:.0f})"
    return [
        r.task,
        str(r.items),
        f"{100 * r.chance:.0f}",
        f"{100 * r.teacher:.1f} ({100 * r.teacher_low:.1f}–{100 * r.teacher_high:.1f})",
        f"{100 * r.student:.1f} ({100 * r.student_low:.1f}–{100 * r.student_high:.1f})",
        kept,
    ]


HEADER = ["task", "items", "chance", "teacher (95 % CI)", "student (95 % CI)", "retention (95 % CI)"]


def format_retention(rows: list[Retention]) -> str:
    """A Markdown table of `retention_rows` (accuracies in points, retention in per cent)."""
    if not rows:
        return ""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"

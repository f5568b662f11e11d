"""Which budget `make search` should default to: finished demo runs at several budgets side by side.

    python bench/default_budget.py results/demo-70M results/demo-90M results/demo-100M

For each run (the default demo, `make search BUDGET=<B>`: same retraining tokens, benchmarks and
prompts) it prints the first winner's shape and share of the teacher, its test loss on the mixture
and out of domain, its chance-normalised retention of the teacher's score on each benchmark (with
the 95 % interval the items allow) and how many tasks keep at least half, the run's wall time and
stage times, and the first winner's greedy continuations of the report's prompts beside the
teacher's (to read: coherent text, or one word repeated?). The rule the default follows (issue 46):
the harshest cut whose first winner writes coherent continuations and keeps at least half the
teacher's chance-normalised score on most tasks, within today's run time.

Writes `results/bench/default_budget.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minitron.budget import format_count  # noqa: E402
from minitron.eval.retention import retention_rows  # noqa: E402
from search.outputs.quality import OUT_OF_DOMAIN  # noqa: E402
from search.outputs.summary import Summary  # noqa: E402

#: A task counts as kept when the winner keeps at least this share of the teacher's score above chance.
KEPT = 0.5


def row(run: Path) -> dict[str, Any]:
    """One run's first winner, as the table shows it."""
    summary = Summary.load(run / "summary.json")
    if not summary.winners or summary.winners[0].result.test_loss is None:
        raise SystemExit(f"{run}: no retrained first winner in summary.json")
    winner = summary.winners[0]
    teacher = summary.teacher
    settings = summary.settings
    weights = {}
    if settings is not None:
        from minitron.data.mix import parse_data

        weights = {p.spec: p.weight for p in parse_data(settings.data)}
    outside = [name for name, weight in weights.items() if weight == 0]
    bench = summary.benchmarks
    kept: dict[str, dict[str, float | None]] = {}
    if bench is not None:
        base, student = bench.scored("teacher"), bench.scored(winner.trial_id)
        if base is not None and student is not None:
            for r in retention_rows(base, student, bench.tasks):
                kept[r.task] = {
                    "teacher": r.teacher,
                    "student": r.student,
                    "retention": r.retention,
                    "low": r.retention_low,
                    "high": r.retention_high,
                }
    texts = summary.samples.continuations if summary.samples else {}
    return {
        "run": str(run),
        "budget": summary.budget,
        "architecture": winner.architecture.short(),
        "params": winner.params,
        "share": (winner.params or 0) / (teacher.params or 1),
        "test_loss": winner.result.test_loss,
        "teacher_test_loss": teacher.test_loss,
        "out_of_domain": {name: winner.result.test_losses.get(name) for name in outside},
        "teacher_out_of_domain": {name: teacher.test_losses.get(name) for name in outside},
        "retention": kept,
        "tasks_kept": sum(1 for r in kept.values() if (r["retention"] or 0) >= KEPT),
        # a task where the teacher is at or below chance has no retention: it is left out of the count
        "tasks": sum(1 for r in kept.values() if r["retention"] is not None),
        "minutes": (summary.seconds or 0) / 60,
        "stages": summary.stages,
        "machine": summary.machine,
        "retrain_tokens": settings.retrain.tokens if settings else None,
        "prompts": list(summary.samples.prompts) if summary.samples else [],
        "teacher_texts": texts.get("teacher", []),
        "winner_texts": texts.get(winner.trial_id, []),
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}"


def table(rows: list[dict[str, Any]]) -> str:
    tasks = sorted({t for r in rows for t in r["retention"]})
    head = [
        "budget",
        "first winner",
        "of teacher",
        "test loss",
        OUT_OF_DOMAIN,
        *tasks,
        "tasks ≥ 50 %",
        "minutes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in rows:
        ood = next(iter(r["out_of_domain"].values()), None)
        cells = [
            format_count(r["budget"] or 0),
            f"{r['architecture']} ({format_count(r['params'] or 0)})",
            f"{100 * r['share']:.0f} %",
            f"{r['test_loss']:.3f}",
            "—" if ood is None else f"{ood:.3f}",
            *(
                f"{_pct(k['retention'])} % ({_pct(k['low'])} to {_pct(k['high'])})"
                if (k := r["retention"].get(t)) and k["retention"] is not None
                else "— (teacher at chance)"
                if k
                else "—"
                for t in tasks
            ),
            f"{r['tasks_kept']} of {r['tasks']}",
            f"{r['minutes']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    first = rows[0]
    teacher_ood = next(iter(first["teacher_out_of_domain"].values()), None)
    lines.append(
        f"\nTeacher: test loss {first['teacher_test_loss']:.3f}"
        + (f", {teacher_ood:.3f} out of domain" if teacher_ood is not None else "")
        + "; retention: (winner − chance) ÷ (teacher − chance) per task, 95 % interval over the items;"
        + " a task where the teacher scores at or below chance has none and is not counted."
    )
    return "\n".join(lines)


def samples(rows: list[dict[str, Any]], width: int = 160) -> str:
    """Each prompt, the teacher's continuation and each run's first winner's, cut to `width`."""

    def cut(text: str) -> str:
        flat = " ".join(text.split())
        return flat if len(flat) <= width else flat[: width - 1] + "…"

    out = []
    for i, prompt in enumerate(rows[0]["prompts"]):
        out.append(f"\nprompt: {cut(prompt)}")
        if i < len(rows[0]["teacher_texts"]):
            out.append(f"  teacher: {cut(rows[0]['teacher_texts'][i])}")
        for r in rows:
            if i < len(r["winner_texts"]):
                out.append(f"  {format_count(r['budget'] or 0):>5}: {cut(r['winner_texts'][i])}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished demo run directories, any order")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "default_budget.json")
    args = parser.parse_args()
    rows = sorted((row(run) for run in args.runs), key=lambda r: r["budget"] or 0)
    print(table(rows))
    print(samples(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

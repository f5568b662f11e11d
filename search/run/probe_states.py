"""The probe states a run keeps (`probes/<architecture>/`): only those of candidates that may still
win, since each holds a student's weights and AdamW moments (12 bytes per parameter).

While the search runs, a finished probe's state is kept while it is among the `top_k` best
finished probes (one budget) or on the front of probe loss against the objective (a budget
range: every winner along the front is on it); the winners' retraining adopts theirs and the rest
are deleted before it (`keep_only`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from search.outputs.records import TrialRecord, TrialStatus
from search.plan.pareto import pareto_front


def contenders(records: Iterable[TrialRecord], top_k: int, objective: str | None) -> set[str]:
    """Labels of the finished probes that may still be winners: the `top_k` lowest probe losses,
    or with an `objective` (`params` or `latency_ms`, a range search) the front against it."""
    done = [r for r in records if r.status is TrialStatus.COMPLETED and r.probe_loss is not None]
    if objective is None:
        best = sorted(done, key=lambda r: (r.probe_loss or 0.0, r.trial_id))[:top_k]
        return {r.architecture.short() for r in best}
    measured = [r for r in done if getattr(r, objective) is not None]
    points = [(float(getattr(r, objective)), float(r.probe_loss or 0.0)) for r in measured]
    return {measured[i].architecture.short() for i in pareto_front(points)}


def drop_losers(folder: Path, records: Iterable[TrialRecord], keep: set[str]) -> None:
    """Delete the states of finished trials not in `keep` (never a folder a running probe writes)."""
    for record in records:
        label = record.architecture.short()
        if label not in keep:
            shutil.rmtree(folder / label, ignore_errors=True)


def keep_only(folder: Path, keep: set[str]) -> None:
    """Delete every state but those in `keep` (once no probe runs)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

"""What a finished run prints on the console: the cost, each winner's losses and path, the
benchmark and per-domain tables (the same tables the report and the model cards draw)."""

from __future__ import annotations

from pathlib import Path

from search.outputs.quality import benchmark_table, domain_table, markdown
from search.outputs.summary import Summary


def print_result(summary: Summary, report: Path) -> None:
    print(f"[search] finished in {(summary.seconds or 0) / 60:.1f} min; report {report}")
    cost = summary.cost
    if cost.overhead is not None and cost.probe_tokens is not None:
        allowed = f"{cost.overhead_allowed:.0%}" if cost.overhead_allowed is not None else "—"
        print(
            f"  probes spent {cost.probe_tokens:,} tokens, {cost.overhead:.0%} of the retraining "
            f"tokens (allowed: {allowed}){cost.not_kept_clause()}"
        )
    for w in summary.winners:
        test, val = w.result.test_loss, w.result.final_loss
        loss = (
            "failed"
            if val is None
            else f"test loss {test:.4f} (validation {val:.4f})"
            if test
            else f"validation loss {val:.4f}"
        )
        print(f"  winner {w.rank}: {w.architecture.short()} {w.params:,} params, {loss} -> {w.result.path}")
    table = benchmark_table(summary)
    if table:
        print(table)
    print(markdown(*domain_table(summary)))

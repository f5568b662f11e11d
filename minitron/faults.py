"""Fault injection for tests: kill the process at a named point, as a crash or Ctrl-C would.

Why: "a killed run resumes and re-does only the work in flight" is a claim about every stage, and
only a kill at a known point of each stage makes it testable. Nothing here acts unless the
environment asks for it.

    MINITRON_KILL_AT=search@2          # SIGKILL ourselves the 2nd time the point `search` is reached
    MINITRON_KILL_AT=importance        # ... the 1st time `importance` is reached
    MINITRON_KILL_SIGNAL=INT           # send SIGINT (Ctrl-C) or TERM instead of KILL

Points (where they sit): `importance` (width importance computed, depth not yet, nothing saved),
`targets` (teacher targets computed, not saved), `search` (a trial recorded in trials.jsonl),
`retrain` (a winner retrained), `benchmarks` (a model's benchmark scores written), `gguf` (a
winner's GGUF files written), `report` (summary.json written, report.html not yet).
"""

from __future__ import annotations

import os
import signal
import sys

POINTS = ("importance", "targets", "search", "retrain", "benchmarks", "gguf", "report")
_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    """Kill this process here when `MINITRON_KILL_AT` names this point (and this is its n-th visit)."""
    assert name in POINTS, name
    spec = os.environ.get("MINITRON_KILL_AT", "")
    if not spec:
        return
    _reached[name] = _reached.get(name, 0) + 1
    for item in spec.split(","):
        point, _, count = item.strip().partition("@")
        if point == name and _reached[name] == int(count or 1):
            how = os.environ.get("MINITRON_KILL_SIGNAL", "KILL").upper()
            print(f"[fault] killing the process at {name} (visit {_reached[name]}) with SIG{how}", flush=True)
            sys.stderr.flush()
            os.kill(os.getpid(), getattr(signal, f"SIG{how}"))

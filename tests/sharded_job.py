"""One winner's retraining for tests/test_sharded_retrain.py, in a fresh process with its own Ray.

    python -m tests.sharded_job SETUP OUT WORKERS RESTARTS

SETUP is the folder the test prepared (settings.json, the winner's architecture, the importance);
WORKERS 0 retrains in this process without Ray (the one-process reference), N ≥ 1 on N Ray Train
workers (gloo, one CPU each) allowed RESTARTS worker-group restarts. Prints `RESULT` and the
WinnerResult as JSON. A fresh process, so that Ray starts with this test's environment
(MINITRON_KILL_AFTER_STEP).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


def main() -> None:
    from minitron import codec
    from minitron.importance.scores import Importance
    from minitron.model.architecture import Architecture
    from search.plan.settings import SearchSettings
    from search.run.winner_job import WinnerJob, retrain_winner

    setup, out, workers, restarts = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    settings = SearchSettings.from_json(json.loads((setup / "settings.json").read_text()))
    if workers:
        settings = settings.with_resources(dataclasses.replace(settings.resources, retrain_workers=workers))
    arch = Architecture(**json.loads((setup / "arch.json").read_text()))
    importance = Importance.load(setup / "importance")
    job = WinnerJob(1, "t", arch, out, settings.teacher, settings)
    if workers == 0:
        result = retrain_winner(job, importance, None)
    else:
        import ray

        from search.run import train_workers
        from search.run.ray_runtime import start_ray

        start_ray(settings.resources)
        result = train_workers.retrain_sharded(
            job, ray.put(importance), ray.put(None), settings.resources, setup / f"ray-{Path(out).name}",
            restarts=restarts,
        )  # fmt: skip
    print("RESULT " + json.dumps(codec.encode(result)), flush=True)


if __name__ == "__main__":
    main()

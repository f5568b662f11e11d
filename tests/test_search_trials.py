"""`python search.py` on the tiny teacher when trials fail or are stopped: faults recorded or
retried, ASHA stopping probes early (which layers to drop is searched in tests/test_api.py's run).
In a file of its own so that a second test worker runs it beside `tests/test_search_cli.py` (whose
reference and kill/resume searches take the longest)."""

import json

from tests.test_search_cli import BUDGET, FAST, search


def test_trial_faults_are_recorded_or_retried_and_the_search_goes_on(tiny_space, tmp_path):
    """Trial 2 runs out of memory (recorded, not retried); trial 3's worker is killed once (Tune runs
    it again and it completes); trial 4's worker dies in every attempt (recorded as failed). With
    `--top-k 0` the search only ranks: nothing is retrained."""
    space, env = tiny_space
    faults = {"MINITRON_FAIL_TRIALS": "2:oom", "MINITRON_KILL_TRIAL_WORKERS": "3,4:always"}
    args = ["--space", str(space), "--budget", BUDGET, *FAST, "--trials", "4", "--top-k", "0"]
    result = search({**env, **faults}, *args, "--out", str(tmp_path), "--name", "run")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert len(records) == 4
    by_status = {s: [r for r in records if r["status"] == s] for s in ("completed", "failed")}
    assert len(by_status["completed"]) == 2 and len(by_status["failed"]) == 2
    oom = [r for r in by_status["failed"] if r["error"].startswith("OutOfMemoryError: injected")]
    assert len(oom) == 1 and oom[0]["retries"] == 0
    lost = next(r for r in by_status["failed"] if r is not oom[0])
    assert lost["retries"] == 2 and "died" in lost["error"].lower(), lost
    assert sorted(r["retries"] for r in by_status["completed"]) == [0, 1]
    starts = [
        json.loads(line)["architecture"] for line in (run / "probe_starts.jsonl").read_text().splitlines()
    ]
    assert sorted(starts.count(a) for a in set(starts)) == [1, 1, 2, 3]  # 1 + retries of each trial
    assert "running it again (retry 1)" in result.stdout
    html = (run / "report.html").read_text()
    assert "OutOfMemoryError" in html and lost["error"][:40] in html
    summary = json.loads((run / "summary.json").read_text())
    assert summary["winners"] == [] and not (run / "winners").exists()


def test_asha_stops_probes_early_and_ranks_completed_ones_first(tiny_space, tmp_path):
    space, env = tiny_space
    result = search(
        env,
        "--space",
        str(space),
        "--budget",
        BUDGET,
        *FAST,
        "--trials",
        "4",
        "--top-k",
        "1",
        "--probe-tokens",
        "4k",  # 3 steps, a validation after each: ASHA's first rung comes before the end
        "--overhead",
        "2.5",  # 10,000 probe tokens: room for four trials
        "--scheduler",
        "asha",
        "--sampler",
        "random",
        "--retrain-teacher",
        "cached",
        "--data",
        "wiki-en",  # the losses this test's seeded trials were laid out on (ASHA stops at least one)
        "--out",
        str(tmp_path),
        "--name",
        "run",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    winner = next((tmp_path / "run" / "winners").iterdir())
    provenance = json.loads((winner / "provenance.json").read_text())
    assert provenance["targets"]["k"] == 64, "the winner retrained on the cached teacher targets"
    trials = [json.loads(line) for line in (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 4
    assert {t["status"] for t in trials} <= {"completed", "stopped early"}
    assert all(t["probe_loss"] is not None for t in trials), "a stopped probe keeps its last loss"
    stopped = [t for t in trials if t["status"] == "stopped early"]
    completed = [t for t in trials if t["status"] == "completed"]
    assert completed, "the first probe always runs to the end"
    assert stopped, "with 4 seeded random trials ASHA stops some probes at its first rung"
    # Stopped probes trained on fewer tokens: they never outrank a completed one.
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    statuses = [c["status"] for c in summary["candidates"]]
    assert statuses == sorted(statuses, key=lambda s: s != "completed")
    assert all(t["probe_tokens"] < completed[0]["probe_tokens"] for t in stopped)
    assert summary["winners"][0]["trial_id"] == summary["candidates"][0]["trial_id"]
    # ASHA compares at the probe's own validations, in probe tokens: after step 1 and at the end
    assert {t["probe_tokens"] for t in trials} <= {1024, 3072}
    # --overhead 2.5 of 4,000 retraining tokens: the probes may spend 10,000 tokens, and never more (a
    # probe stops where its next rung would cross the budget; trials run one at a time here)
    assert summary["cost"]["probe_budget"] == 10000 and summary["cost"]["probe_tokens"] <= 10000

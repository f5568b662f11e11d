"""Kill a real search in the middle and resume it: does it end as an uninterrupted run would?

    python bench/kill_resume.py [--after 4] [--wait 30] [--name demo-kill] [-- SEARCH ARGS...]

Starts `search.py --budget 70M` (the default demo unless other search arguments follow `--`) in
its own process group, waits until `--after` trials are recorded plus `--wait` seconds (a probe is
then in flight), SIGKILLs the whole group as a crashed machine would, then runs
`search.py --resume`. Reports the times, the trials recorded (count, distinct architectures), the
probes started more than once (only the one in flight should be) and the winners. Prints a table,
writes JSON to results/bench/kill_resume.json. About half an hour on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minitron import codec
from search.outputs.records import ProbeStart, TrialLog
from search.outputs.rundir import RunDir
from search.outputs.summary import Summary
from search.plan.settings import CONFIG_SOURCE
from search.plan.spec import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", type=int, default=4, help="trials recorded before the kill")
    parser.add_argument("--wait", type=float, default=30, help="seconds after that, before the kill")
    parser.add_argument("--name", default="demo-kill", help="run directory name under results/")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "kill_resume.json")
    parser.add_argument("search_args", nargs="*", help="search.py arguments (after --)")
    args = parser.parse_args()
    run = ROOT / "results" / args.name
    if run.exists():
        sys.exit(f"error: {run} exists; choose another --name")
    search = [sys.executable, str(ROOT / "search.py")]
    first = [*search, "--budget", "70M", *args.search_args, "--name", args.name]
    started = time.time()
    with open(ROOT / "results" / f"{args.name}.killed.log", "w") as log:
        driver = subprocess.Popen(
            first, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        trials = run / "trials.jsonl"
        while driver.poll() is None and (
            not trials.exists() or len(trials.read_text().splitlines()) < args.after
        ):
            time.sleep(2)
        time.sleep(args.wait)
        if driver.poll() is not None:
            sys.exit("error: the search ended before it could be killed; lower --after")
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    killed = time.time()
    recorded_before = len(trials.read_text().splitlines())
    with open(ROOT / "results" / f"{args.name}.resumed.log", "w") as log:
        status = subprocess.call(
            [*search, "--resume", str(run)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    finished = time.time()

    records = list(TrialLog(trials).records.values())
    summary = Summary.load(run / "summary.json")
    starts = [start.architecture for start in ProbeStart.read_all(run / "probe_starts.jsonl")]
    config = codec.decode(RunConfig, RunDir(run).load_config(), CONFIG_SOURCE)
    result = {
        "command": " ".join(first[1:]),
        "killed_after_s": round(killed - started, 1),
        "trials_recorded_at_kill": recorded_before,
        "resume_status": status,
        "resume_s": round(finished - killed, 1),
        "trials_requested": config.settings.plan.trials,
        "trials_recorded": len(records),
        "distinct_architectures": len({r.architecture for r in records}),
        "report_candidates": len(summary.candidates),
        "probes_started_twice": sorted({a for a in starts if starts.count(a) > 1}),
        "winners": [
            {"architecture": codec.encode(w.architecture), "final_loss": w.result.final_loss}
            for w in summary.winners
        ],
    }
    print("| measure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    ok = (
        status == 0 and result["trials_recorded"] == result["report_candidates"] == result["trials_requested"]
    )
    return 0 if ok and result["distinct_architectures"] == result["trials_recorded"] else 1


if __name__ == "__main__":
    sys.exit(main())

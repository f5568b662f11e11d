"""`python search.py` end to end on a tiny teacher: local Ray, real Optuna, a few short trials."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM

from tests.conftest import ROOT

BUDGET = "3.55M"
FAST = [
    "--trials",
    "3",
    "--probe-tokens",
    "2k",
    "--retrain-tokens",
    "2k",
    "--calibration-samples",
    "8",
    "--eval-sequences",
    "4",
    "--top-k",
    "2",
    "--eval",
    "none",
]


@pytest.fixture(scope="module")
def tiny_space(tiny_world):
    """A space for the tiny 2-layer teacher: 24 feasible candidates at 3.55M."""
    root, env = tiny_world
    config = json.loads((root / "teacher" / "config.json").read_text())
    space = {
        "name": "tiny",
        "teacher": {
            "name": str(root / "teacher"),
            "model_type": "llama",
            "vocab_size": config["vocab_size"],
            "tie_word_embeddings": False,
            "num_hidden_layers": 2,
            "hidden_size": 48,
            "intermediate_size": 40,
            "num_attention_heads": 6,
            "num_key_value_heads": 2,
            "head_dim": 8,
        },
        "choices": {
            "num_hidden_layers": [1, 2],
            "hidden_size": [36, 48],
            "intermediate_size": [16, 24, 40],
            "num_attention_heads": [2, 4, 6],
            "num_key_value_heads": [1, 2],
        },
        "band": 0.05,
        "top_k": 2,
    }
    path = root / "tiny-space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path, env


def search(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "search.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1200,
        **kwargs,
    )


def test_search_end_to_end(tiny_space, tmp_path):
    space, env = tiny_space
    result = search(
        {**env, "MINITRON_FAIL_TRIALS": "2"},
        "--space",
        str(space),
        "--budget",
        BUDGET,
        *FAST,
        "--eval",
        "piqa,arc_challenge",
        "--eval-limit",
        "3",
        "--out",
        str(tmp_path),
        "--name",
        "run",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    for name in (
        "config.json",
        "trials.jsonl",
        "optuna.db",
        "summary.json",
        "report.html",
        "pareto.png",
        "importance/scores.safetensors",
        "targets/targets.safetensors",
        "tune",
    ):
        assert (run / name).exists(), name
    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 3
    failed = [t for t in trials if t["status"] == "failed"]
    assert len(failed) == 1 and "injected failure" in failed[0]["error"], "a failing trial is recorded"
    completed = [t for t in trials if t["status"] == "completed"]
    assert len(completed) == 2 and all(
        t["probe_loss"] and t["zero_shot_loss"] and t["latency_ms"] for t in completed
    )
    archs = [json.dumps(t["architecture"], sort_keys=True) for t in trials]
    assert len(set(archs)) == 3, "no architecture is probed twice"
    assert all(3_372_500 <= t["params"] <= 3_727_500 for t in trials), "every trial is inside the budget band"

    summary = json.loads((run / "summary.json").read_text())
    ranked = [c for c in summary["candidates"] if c["rank"] is not None]
    assert [c["probe_loss"] for c in ranked] == sorted(c["probe_loss"] for c in ranked)
    assert summary["candidates"][-1]["status"] == "failed"
    assert len(summary["winners"]) == 2
    for winner in summary["winners"]:
        model = AutoModelForCausalLM.from_pretrained(winner["path"])  # plain transformers loads it
        assert sum(p.numel() for p in model.parameters()) == winner["params"]
        assert os.path.join(winner["path"], "provenance.json")
        assert winner["final_loss"] is not None
    bench = summary["benchmarks"]
    assert bench["tasks"] == ["piqa", "arc_challenge"] and bench["limit"] == 3 and bench["limited"]
    assert set(bench["models"]) == {"teacher"} | {w["trial_id"] for w in summary["winners"]}
    for model in bench["models"].values():
        assert model["results"]["piqa"]["acc_norm,none"] in {0.0, 1 / 3, 2 / 3, 1.0}  # 3 items
        assert model["n-samples"]["arc_challenge"]["effective"] == 3
    assert (run / "evals" / "teacher.json").exists()
    for winner in summary["winners"]:
        assert set(winner["benchmarks"]) == {"piqa", "arc_challenge"}
        assert (Path(winner["path"]) / "benchmarks.json").exists()
    html = (run / "report.html").read_text()
    assert "injected failure" in html and summary["name"] in html
    assert "<h2>Benchmarks</h2>" in html and "Limited run" in html and "arc_challenge" in html
    assert "LIMITED RUN" in result.stdout, "the printed benchmark table says the run was limited"
    assert "[stage] importance done" in result.stdout and "trials done" in result.stdout


def test_killed_search_resumes_without_rerunning_completed_trials(tiny_space, tmp_path):
    space, env = tiny_space
    args = [
        str(ROOT / "search.py"),
        "--space",
        str(space),
        "--budget",
        BUDGET,
        *FAST,
        "--trials",
        "4",
        "--out",
        str(tmp_path),
        "--name",
        "run",
    ]
    driver = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    trials = tmp_path / "run" / "trials.jsonl"
    deadline = time.time() + 900
    while time.time() < deadline and driver.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= 2:
            break
        time.sleep(0.5)
    assert driver.poll() is None, "the search ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and everything it started, as kill -9 would
    driver.wait()
    done_before = {
        json.dumps(json.loads(line)["architecture"], sort_keys=True)
        for line in trials.read_text().splitlines()
        if json.loads(line)["status"] == "completed"
    }
    assert len(done_before) >= 2

    resumed = search(env, "--resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    records = [json.loads(line) for line in trials.read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    starts = [
        json.loads(line)["architecture"]
        for line in (tmp_path / "run" / "probe_starts.jsonl").read_text().splitlines()
    ]
    from minitron.architecture import Architecture

    for arch in done_before:
        label = Architecture(**json.loads(arch)).short()
        assert starts.count(label) == 1, f"{label} was probed again after it had completed"
    assert (tmp_path / "run" / "report.html").exists()
    assert len(json.loads((tmp_path / "run" / "summary.json").read_text())["winners"]) == 2


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
        "6",
        "--top-k",
        "1",
        "--probe-tokens",
        "8k",  # 8 steps, a validation every 2: ASHA's first rung comes before the end
        "--scheduler",
        "asha",
        "--sampler",
        "random",
        "--out",
        str(tmp_path),
        "--name",
        "run",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [json.loads(line) for line in (tmp_path / "run" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 6
    assert {t["status"] for t in trials} <= {"completed", "stopped early"}
    assert all(t["probe_loss"] is not None for t in trials), "a stopped probe keeps its last loss"
    stopped = [t for t in trials if t["status"] == "stopped early"]
    completed = [t for t in trials if t["status"] == "completed"]
    assert completed, "the first probe always runs to the end"
    assert stopped, "with 6 seeded random trials ASHA stops some probes at its first rung"
    # Stopped probes trained on fewer tokens: they never outrank a completed one.
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    statuses = [c["status"] for c in summary["candidates"]]
    assert statuses == sorted(statuses, key=lambda s: s != "completed")
    assert all(t["probe_tokens"] < completed[0]["probe_tokens"] for t in stopped)
    assert summary["winners"][0]["trial_id"] == summary["candidates"][0]["trial_id"]


def test_corpus_too_small_is_refused_before_anything_is_written(tiny_space, tmp_path):
    space, env = tiny_space
    corpus = tmp_path / "small.txt"
    corpus.write_text("A short document.\n\nAnother short one.\n")
    out = tmp_path / "runs"
    result = search(
        env, "--space", str(space), "--budget", BUDGET, *FAST, "--data", str(corpus), "--out", str(out)
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        "is too small: its calibration split needs 2,048 tokens (8 sequences of 256) and holds"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and not out.exists()


def test_full_disk_while_writing_the_summary_loses_nothing_and_resumes(tiny_space, tmp_path):
    space, env = tiny_space
    args = [
        "--space",
        str(space),
        "--budget",
        BUDGET,
        *FAST,
        "--trials",
        "2",
        "--out",
        str(tmp_path),
        "--name",
        "run",
    ]
    result = search({**env, "MINITRON_FULL_DISK": "summary.json"}, *args)
    run = tmp_path / "run"
    assert result.returncode == 2 and "no space left on device while writing" in result.stderr
    assert str(run / "summary.json") in result.stderr and "Traceback" not in result.stderr
    assert not (run / "summary.json").exists() and not list(run.glob(".summary.json*"))
    trials = (run / "trials.jsonl").read_text().splitlines()
    resumed = search(env, "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["candidates"]) == 2 and (run / "trials.jsonl").read_text().splitlines() == trials

"""`python search.py` end to end on a tiny teacher: local Ray, real Optuna, a few short trials."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM

from minitron.eval.samples import PROMPTS
from minitron.model.architecture import Architecture
from tests.conftest import ROOT

BUDGET = "3.55M"
FAST = [
    "--trials",
    "3",
    "--probe-tokens",
    "2k",
    "--retrain-tokens",
    "4k",  # 3 steps of 1,024 tokens: a winner continues from its 1-step probe, decays over the last
    "--calibration-samples",
    "8",
    "--eval-sequences",
    "4",
    "--test-sequences",  # 8 of the mixture, 4 of each part: the test losses are most of a winner's time
    "8",
    "--top-k",
    "2",
    "--eval",
    "none",
    "--overhead",
    "4",  # tiny retraining: let the probes cost more than it
    "--max-not-kept",
    "1",  # and let the candidates not kept cost more than the winners
    "--teacher-samples",  # the default mix, with few and short samples of the tiny teacher
    "8",
    "--sample-tokens",
    "24",
]


def search(env, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "search.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=1200,
    )


def private_cache(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with a cache of its own (importance, teacher scores) that shares the corpus, its tokens
    and the benchmark data with the test cache."""
    shared = Path(env["MINITRON_CACHE"])
    cache = folder / "cache"
    cache.mkdir(parents=True)
    for name in ("assets", "tokens", "benchmarks"):
        (cache / name).symlink_to((shared / name).resolve())
    return {**env, "MINITRON_CACHE": str(cache)}


def reference_args(space: Path, out: Path) -> list[str]:
    """The end-to-end search: 3 trials (the 2nd fails, see REFERENCE_ENV), 2 winners, 1 benchmark."""
    return [
        "--space",
        str(space),
        "--budget",
        BUDGET,
        *FAST,
        "--eval",
        "piqa",
        "--eval-limit",
        "3",
        "--out",
        str(out),
        "--name",
        "run",
    ]


REFERENCE_ENV = {"MINITRON_FAIL_TRIALS": "2"}


@dataclass
class Reference:
    result: subprocess.CompletedProcess[str]
    run: Path
    home: Path
    cwd: Path
    tmpdir: Path
    repo_before: str


def repo_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def reference(tiny_space, tmp_path_factory):
    """One uninterrupted search, run from an empty working directory with an empty home and temp
    folder, so that what it writes outside its run directory and cache can be seen."""
    space, env = tiny_space
    root = tmp_path_factory.mktemp("reference")
    home, cwd = root / "home", root / "cwd"
    for folder in (home, cwd):
        folder.mkdir()
    tmpdir = Path(tempfile.mkdtemp(dir="/tmp"))  # short: Ray puts sockets in it (107-byte limit)
    before = repo_status()
    env = {**private_cache(root, env), **REFERENCE_ENV, "HOME": str(home), "TMPDIR": str(tmpdir)}
    result = search(env, *reference_args(space, root / "runs"), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    yield Reference(result, root / "runs" / "run", home, cwd, tmpdir, before)
    shutil.rmtree(tmpdir, ignore_errors=True)


def outcome(run: Path) -> dict:
    """What a finished run found: every trial, the winners and their scores."""
    summary = json.loads((run / "summary.json").read_text())
    return {
        "candidates": sorted(
            (json.dumps(c["architecture"], sort_keys=True), c["status"], c["probe_loss"], c["error"])
            for c in summary["candidates"]
        ),
        "winners": [
            (w["architecture"], w["final_loss"], w["test_loss"], w.get("benchmarks"))
            for w in summary["winners"]
        ],
        "teacher": summary["benchmarks"]["models"]["teacher"]["results"],
    }


def test_search_end_to_end(reference):
    result, run = reference.result, reference.run
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
    # Speed-ups come from the latency stage: each candidate timed in turn with the teacher on one
    # worker (a trial's resources), median and range over the rounds.
    latency = json.loads((run / "latency.json").read_text())
    assert set(latency["candidates"]) == {_label(t["architecture"]) for t in completed}, (
        "every probed candidate was timed, the failed one not"
    )
    teacher = json.loads((run / "teacher.json").read_text())
    assert teacher["latency_low_ms"] <= teacher["latency_ms"] <= teacher["latency_high_ms"]
    assert teacher["device"] == latency["teacher"]["device"] and teacher["device"].startswith(
        ("AMD", "Intel", "x86")
    )
    # and its stages ran where the settings put them: the CPU here, in fp32 weights (tests/test_placement.py)
    assert (teacher["stage_device"], teacher["stage_dtype"]) == ("cpu", "float32")
    archs = [json.dumps(t["architecture"], sort_keys=True) for t in trials]
    assert len(set(archs)) == 3, "no architecture is probed twice"
    assert all(3_372_500 <= t["params"] <= 3_727_500 for t in trials), "every trial is inside the budget band"

    summary = json.loads((run / "summary.json").read_text())
    for c in summary["candidates"]:
        if c["status"] == "completed":
            assert c["latency_low_ms"] <= c["latency_ms"] <= c["latency_high_ms"] and c["latency_rounds"] == 5
            assert c["speedup_low"] <= c["speedup"] <= c["speedup_high"]
            assert c["speedup"] == latency["candidates"][_label(c["architecture"])]["speedup"]
    assert summary["settings"]["dashboard"].startswith("http://127.0.0.1:"), "the dashboard stays local"
    ranked = [c for c in summary["candidates"] if c["rank"] is not None]
    assert [c["probe_loss"] for c in ranked] == sorted(c["probe_loss"] for c in ranked)
    assert summary["candidates"][-1]["status"] == "failed"
    assert len(summary["winners"]) == 2
    for winner in summary["winners"]:
        model = AutoModelForCausalLM.from_pretrained(winner["path"])  # plain transformers loads it
        assert sum(p.numel() for p in model.parameters()) == winner["params"]
        assert (Path(winner["path"]) / "provenance.json").exists()
        assert winner["final_loss"] is not None and winner["test_loss"] is not None
        provenance = json.loads((Path(winner["path"]) / "provenance.json").read_text())
        assert provenance["targets"] is None, "winners retrain with the teacher online (the default)"
        assert provenance["test_loss"] == winner["test_loss"] and provenance["test_tokens"] == 255 * 8
        # it continued from its probe: the probe's step is the first of its 3
        trial = next(t for t in trials if t["trial_id"] == winner["trial_id"])
        assert provenance["not_continued_because"] is None
        assert provenance["continued_from"]["step"] == 1 and provenance["resumed_at_step"] == 1
        assert provenance["continued_from"]["tokens"] == trial["probe_tokens"] == 1024
        assert winner["probe_tokens_kept"] == 1024 and winner["tokens_trained"] == 3072
        assert provenance["history"][0]["step"] == 1, "the probe's validations open its history"
    assert not any((run / "probes").iterdir()), "no probe state is left once its winner is retrained"
    assert summary["teacher"]["test_loss"] is not None
    # the default mix: every part's own test loss, the out-of-domain speeches among them
    parts = set(summary["teacher"]["test_losses"])
    assert {"wiki-en", "narrative-en", "code-py", "speeches-en"} <= parts
    assert all(set(w["test_losses"]) == parts for w in summary["winners"])
    # what the search cost: every trial's probe tokens against both winners' retraining tokens
    cost = summary["cost"]
    assert cost["probe_tokens"] == sum(t["probe_tokens"] or 0 for t in trials) > 0
    assert cost["retrain_tokens"] == sum(w["tokens_trained"] for w in summary["winners"])
    assert cost["overhead"] == pytest.approx(cost["probe_tokens"] / cost["retrain_tokens"])
    assert (
        cost["overhead_allowed"] == 4.0 and "search cost: probes trained" in (run / "report.html").read_text()
    )
    # the winners kept their probes' tokens: only the failed trial's (none) and losers' are extra
    assert cost["probe_tokens_kept"] == 2 * 1024
    assert cost["tokens_all"] == cost["probe_tokens"] + cost["retrain_tokens"] - cost["probe_tokens_kept"]
    assert cost["tokens_not_kept"] == cost["probe_tokens"] - 2 * 1024
    assert cost["not_kept_fraction"] == pytest.approx(cost["tokens_not_kept"] / cost["tokens_all"])
    assert "went to candidates that were not kept" in (run / "report.html").read_text()
    bench = summary["benchmarks"]
    assert bench["tasks"] == ["piqa"] and bench["limit"] == 3 and bench["limited"]
    assert summary["limited"] == bench["limited"], "the report's caveat says the benchmarks were limited"
    assert set(bench["models"]) == {"teacher"} | {w["trial_id"] for w in summary["winners"]}
    for model in bench["models"].values():
        assert model["results"]["piqa"]["acc_norm,none"] in {0.0, 1 / 3, 2 / 3, 1.0}  # 3 items
        assert model["n-samples"]["piqa"]["effective"] == 3
    assert (run / "evals" / "teacher.json").exists()
    for winner in summary["winners"]:
        assert set(winner["benchmarks"]) == {"piqa"}
        assert (Path(winner["path"]) / "benchmarks.json").exists()
    html = (run / "report.html").read_text()
    assert "injected failure" in html and summary["name"] in html
    assert "<h2>Benchmarks</h2>" in html and "Limited run" in html and "piqa" in html
    assert "LIMITED RUN" in result.stdout, "the printed benchmark table says the run was limited"
    assert "[stage] importance done" in result.stdout and "trials done" in result.stdout
    # a time budget before the work, the ETA after each stage, and both beside the timings
    assert "[time] estimated" in result.stdout and "left (estimates x" in result.stdout
    # a trial takes 2 CPUs (the default): on a 2-CPU machine the winners would queue, so they share
    # one teacher pass per step (their weights are those of one after the other: test_distill_cli)
    one_place = (os.cpu_count() or 1) // 2 < 2
    assert ("in lock-step" in result.stdout) == one_place
    assert set(summary["estimated_stages"]) == set(summary["stages"]) - {"teacher"}
    assert all(seconds >= 0 for seconds in summary["estimated_stages"].values())
    assert (
        summary["machine"].startswith(("AMD", "Intel", "x86", "aarch", "arm"))
        or "threads" in summary["machine"]
    )


def _label(arch: dict) -> str:
    """An architecture's label, as `Architecture.short()` writes it."""
    return Architecture(**arch).short()


def test_a_logged_run_has_no_progress_bars_and_keeps_tensorboard_logs(reference):
    result, run = reference.result, reference.run
    log = result.stdout + result.stderr
    assert "\r" not in log and "it/s" not in log and "batch/s" not in log, "no progress bar in a log file"
    assert len(log.splitlines()) < 150, "a short search writes a short log"
    events = list((run / "tune").glob("probe_trial_*/events.out.tfevents.*"))
    assert len(events) == 3, "Ray Tune's TensorBoard logs are in the run directory, one per trial"
    assert json.loads((run / "stages.json").read_text()).keys() >= {
        "importance",
        "search",
        "latency",
        "report",
    }


def test_every_winner_has_a_model_card(reference):
    summary = json.loads((reference.run / "summary.json").read_text())
    for winner in summary["winners"]:
        card = (Path(winner["path"]) / "README.md").read_text()
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
        assert meta["license"] == "other", "a local teacher without a card has no license we can inherit"
        assert "base_model" not in meta, "a local teacher has no hub id"
        assert meta["datasets"] == ["mix"]
        assert "| speeches-en | out of domain |" in card, "per-domain test losses in the card"
        assert f"winner {winner['rank']} of search run" in card and "## Benchmarks" in card
        assert "| piqa | acc_norm | 3 |" in card and "this model" in card
        assert f"validation loss {winner['final_loss']:.4f}, test loss {winner['test_loss']:.4f}" in card
        # the winner stays at the peak rate while its probe runs (1 step of 3), then decays
        retrain = json.loads((reference.run / "config.json").read_text())["settings"]["retrain"]
        decay = f"then a cosine decay over the last {retrain['decay_fraction']:.0%} of steps"
        assert retrain["decay_fraction"] < 1 and decay in card
        assert "its first 1,024 tokens are its probe's" in card
        assert "Search cost: probes trained" in card and "went to candidates that were not kept" in card
        # GGUF files for llama.cpp beside the checkpoint (the default --gguf f16,q8_0), in the card
        folder = Path(winner["path"])
        files = sorted(p.name for p in folder.glob("*.gguf"))
        assert (
            files == [f"{folder.name}.F16.gguf", f"{folder.name}.Q8_0.gguf"] and "GGUF for llama.cpp" in card
        )
        assert all(f"`{name}`" in card for name in files) and not list(folder.glob(".*partial"))
        # what it writes, beside the teacher's text (greedy continuations of fixed prompts)
        assert "What it writes" in card and "| prompt | teacher | this model |" in card
    samples = summary["samples"]
    assert samples["prompts"] == list(PROMPTS)
    assert set(samples["continuations"]) == {"teacher"} | {w["trial_id"] for w in summary["winners"]}
    assert all(len(texts) == len(PROMPTS) for texts in samples["continuations"].values())
    assert "<h2>What it writes</h2>" in (reference.run / "report.html").read_text()


def test_nothing_is_written_outside_the_run_directory_and_the_cache(reference):
    assert list(reference.cwd.iterdir()) == [], "the working directory stays empty"
    left = [
        p
        for p in reference.tmpdir.rglob("*")
        if p.is_file() and p.relative_to(reference.tmpdir).parts[0] != "ray"
    ]
    assert left == [], "no temporary file is left behind (Ray keeps its session folder there)"
    written = sorted(str(p.relative_to(reference.home)) for p in reference.home.rglob("*") if p.is_file())
    assert all(p.startswith(".ray/") for p in written), f"only Ray's own token may land in $HOME: {written}"
    assert repo_status() == reference.repo_before, "nothing is written into the project"


def texts_by_model(run: Path) -> dict[str, list[str]]:
    """`samples.json`'s continuations keyed by architecture (trial ids differ from run to run)."""
    winners = json.loads((run / "summary.json").read_text())["winners"]
    names = {w["trial_id"]: json.dumps(w["architecture"], sort_keys=True) for w in winners}
    texts = json.loads((run / "samples.json").read_text())["continuations"]
    assert set(texts) == {"teacher", *names}, "the teacher and every winner wrote"
    return {names.get(key, key): value for key, value in texts.items()}


def driver(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run search.py in its own process group and, once it has ended (or was killed by a fault hook),
    kill whatever it left behind, as a crashed machine would."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "search.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C as a terminal sends it: a background shell job starts with SIGINT ignored, which
        # Python (and so the fault hook's SIGINT) would honour.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out, err = process.communicate(timeout=1200)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_driver_killed_at_every_stage_resumes_to_the_same_results(reference, tiny_space, tmp_path):
    """Kill the driver once in every stage (SIGKILL, and Ctrl-C once), each time resuming the run:
    it ends with what the uninterrupted reference run found, re-doing only the work in flight."""
    space, env = tiny_space
    env = {**private_cache(tmp_path, env), **REFERENCE_ENV}
    run = tmp_path / "runs" / "run"
    cache = Path(env["MINITRON_CACHE"])

    def killed_at(point: str, *args: str, signal_name: str = "KILL") -> subprocess.CompletedProcess[str]:
        result = driver({**env, "MINITRON_KILL_AT": point, "MINITRON_KILL_SIGNAL": signal_name}, *args)
        assert f"[fault] killing the process at {point.split('@')[0]}" in result.stdout, result.stderr[-3000:]
        if signal_name == "KILL":
            assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
        return result

    # Importance: computed but not saved when killed; nothing pretends to be finished.
    killed_at("importance", *reference_args(space, tmp_path / "runs"))
    assert (run / "config.json").exists() and not (run / "importance").exists()
    assert not list(cache.glob("importance/*/importance.json"))
    # Teacher targets: the importance is kept, the targets are not.
    killed_at("targets", "--resume", str(run))
    assert list(cache.glob("importance/*/importance.json")) and not (run / "targets").exists()
    # The run keeps the importance its trials use: resumed without the cache, it reads its own copy.
    shutil.rmtree(cache / "importance")
    # Search, Ctrl-C after the first trial: a clean stop that says how to resume (Tune's own
    # handler would end the search early and let the pipeline go on with one trial).
    stopped = killed_at("search@1", "--resume", str(run), signal_name="INT")
    assert "[stage] importance ... (done earlier: reading it back)" in stopped.stdout
    assert not (cache / "importance").exists(), "the resumed run did not recompute importance"
    assert stopped.returncode == 130 and f"--resume {run}" in stopped.stderr.splitlines()[-1]
    assert "Traceback" not in stopped.stderr and not (run / "winners").exists()
    # Search, SIGKILL after the second trial was recorded.
    killed_at("search@1", "--resume", str(run))
    trials = (run / "trials.jsonl").read_text().splitlines()
    assert len(trials) == 2
    # Retraining: killed once the first winner is finished (resumed with a resource flag, which
    # --resume accepts: it changes where the run goes on, not what it computes). Where the two
    # winners queue for one place (a 2-CPU machine), they train in lock-step and finish together.
    resumed = killed_at("retrain", "--resume", str(run), "--concurrency", "1")
    assert "with its saved settings (resources from --concurrency)" in resumed.stdout
    finished = [p.parent for p in (run / "winners").glob("*/provenance.json")]
    together = "in lock-step" in resumed.stdout
    assert len(finished) == (2 if together else 1) and not (run / "summary.json").exists()
    first_winner = (finished[0] / "model.safetensors").stat().st_mtime_ns
    # Benchmarks: killed after the teacher and one winner were scored.
    killed_at("benchmarks@2", "--resume", str(run))
    assert (run / "evals" / "teacher.json").exists()
    assert len(list((run / "winners").glob("*/benchmarks.json"))) == 1
    # GGUF files: killed once the first winner's are written; no text samples yet.
    killed_at("gguf", "--resume", str(run))
    first_gguf = {p: p.stat().st_mtime_ns for p in (run / "winners").glob("*/*.gguf")}
    assert len(first_gguf) == 2 and not (run / "samples.json").exists()
    # A full disk while writing summary.json: one line, nothing half-written; --resume goes on.
    full = driver({**env, "MINITRON_FULL_DISK": "summary.json"}, "--resume", str(run))
    assert full.returncode == 2 and "no space left on device while writing" in full.stderr
    assert str(run / "summary.json") in full.stderr and "Traceback" not in full.stderr
    assert not (run / "summary.json").exists() and not list(run.glob(".summary.json*"))
    assert "[stage] search ... (done earlier: reading it back)" in full.stdout
    # Report: killed between summary.json and report.html.
    killed_at("report", "--resume", str(run))
    assert (run / "summary.json").exists() and not (run / "report.html").exists()

    final = driver(env, "--resume", str(run))
    assert final.returncode == 0, final.stderr[-3000:]
    assert "[ray]" not in final.stdout, "finished stages are read back without starting Ray"
    assert (run / "report.html").exists()
    assert outcome(run) == outcome(reference.run)
    records = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert len(records) == 3 and len({json.dumps(r["architecture"]) for r in records}) == 3
    starts = [
        json.loads(line)["architecture"] for line in (run / "probe_starts.jsonl").read_text().splitlines()
    ]
    assert len(starts) == len(set(starts)), f"a finished probe was started again: {starts}"
    assert (finished[0] / "model.safetensors").stat().st_mtime_ns == first_winner, (
        "winner 1 was retrained again"
    )
    assert final.stdout.count("[benchmarks] scoring") == 0, "scores that were written are not computed again"
    assert len(list((run / "winners").glob("*/*.gguf"))) == 4
    assert {p: p.stat().st_mtime_ns for p in first_gguf} == first_gguf, "GGUF files were written again"
    # greedy text is a function of the weights: the same as the uninterrupted run's, model by model
    assert texts_by_model(run) == texts_by_model(reference.run)

"""lm-eval on the offline benchmark copies: every task runs with the network unreachable, results
keep lm-eval's names, limited runs say so, and missing or corrupted data are clear errors."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest

from minitron.data.benchdata import BENCHMARKS, benchmark_dir, benchmark_root
from minitron.errors import MinitronError
from minitron.eval.benchmarks import ALL_TASKS, EvalConfig, Scores, check_tasks, evaluate
from minitron.eval.tables import format_table
from tests.conftest import run_module


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection or resolve a name fails the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, teacher):
    """A 2-layer model with SmolLM2's tokenizer, saved as a Hugging Face checkpoint."""
    from tests.tiny import tiny_model

    root = tmp_path_factory.mktemp("tiny-eval")
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=2)
    model.save_pretrained(root)
    teacher.tokenizer.save_pretrained(root)
    return root, model


def test_every_task_runs_offline_on_a_tiny_model(tiny_checkpoint, teacher, no_network):
    _, model = tiny_checkpoint
    scores = evaluate(
        model, teacher.tokenizer, EvalConfig(tasks=ALL_TASKS, limit=2, dtype="float32"), offline=True
    )
    for task in ALL_TASKS:
        metric, value = scores.headline(task)
        assert value is not None and 0.0 <= value <= 1.0, (task, scores.results.get(task))
        assert f"{metric}_stderr,none" in scores.results[task]
    for task in ("hellaswag", "piqa", "winogrande", "arc_easy", "arc_challenge", "lambada_openai"):
        assert scores.n_samples[task] == {"original": scores.n_samples[task]["original"], "effective": 2}
    # the full split sizes are the real ones (validation for all but LAMBADA's test set)
    originals = {
        t: scores.n_samples[t]["original"] for t in ("hellaswag", "piqa", "winogrande", "lambada_openai")
    }
    assert originals == {"hellaswag": 10042, "piqa": 1838, "winogrande": 1267, "lambada_openai": 5153}
    assert scores.n_samples["arc_challenge"]["original"] == 299
    mmlu_subjects = [t for t in scores.n_samples if t.startswith("mmlu_")]
    assert len(mmlu_subjects) == 57, "MMLU is lm-eval's 57-subject group"
    assert "perplexity,none" in scores.results["lambada_openai"]
    assert scores.limited and scores.config["limit"] == 2


def test_bootstrap_stderrs_fork_no_pool(tiny_checkpoint, teacher, monkeypatch):
    """lm-eval's bootstrap (LAMBADA's perplexity) runs in this process: a forked pool of one child per
    host CPU can hang on a lock a torch or Ray thread held at the fork (it hung a CI run for an hour)."""
    import multiprocessing

    def refuse(*args, **kwargs):
        raise AssertionError("lm-eval started a multiprocessing pool")

    monkeypatch.setattr(multiprocessing, "Pool", refuse)
    monkeypatch.delenv("DISABLE_MULTIPROC", raising=False)
    _, model = tiny_checkpoint
    cfg = EvalConfig(tasks=("lambada_openai",), limit=2, dtype="float32")
    scores = evaluate(model, teacher.tokenizer, cfg, offline=True)
    assert scores.results["lambada_openai"]["perplexity_stderr,none"] > 0
    assert "DISABLE_MULTIPROC" not in os.environ, "the switch is restored afterwards"


def test_scores_are_lm_evals_own(tiny_checkpoint, teacher):
    """The redirected tasks are lm-eval's definitions: the ARC prompt and choices as lm-eval builds them."""
    from minitron.eval.benchmarks import build_tasks

    (arc,) = build_tasks(("arc_easy",), offline=True)
    doc = arc.validation_docs()[0]
    assert arc.doc_to_text(doc).startswith("Question: ") and arc.doc_to_text(doc).endswith("\nAnswer:")
    assert arc.doc_to_choice(doc) == doc["choices"]["text"]
    assert arc.config.test_split is None, "ARC is scored on the validation split our copy holds"


def test_cli_writes_lm_eval_results_json(tiny_checkpoint, tmp_path):
    root, _ = tiny_checkpoint
    out = tmp_path / "scores.json"
    result = run_module(
        "minitron", "evaluate", str(root), "--tasks", "piqa,winogrande", "--limit", "3", "--output", str(out)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| piqa | acc_norm | 3 |" in result.stdout
    assert "LIMITED RUN: at most 3 items per task" in result.stdout
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"piqa", "winogrande"}
    assert 0.0 <= data["results"]["winogrande"]["acc,none"] <= 1.0
    assert data["n-samples"]["piqa"]["effective"] == 3
    assert data["minitron"]["limit"] == 3 and data["minitron"]["model"] == str(root)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "hellaswag,squad"], "unknown evaluation task 'squad'"),
        (["--limit", "0"], "--limit must be a positive number"),
        (["--num-fewshot", "-1"], "--num-fewshot must be 0 or more"),
    ],
)
def test_cli_rejects_bad_options(tiny_checkpoint, args, message):
    root, _ = tiny_checkpoint
    result = run_module("minitron", "evaluate", str(root), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_benchmark_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MINITRON_CACHE", str(tmp_path))
    with pytest.raises(MinitronError, match=r"not in the cache.*python -m minitron fetch"):
        benchmark_dir("piqa", offline=True)


def test_corrupted_benchmark_data_is_refused(tiny_checkpoint, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    copy = cache / benchmark_root().relative_to(benchmark_root().parents[1]) / "piqa"
    shutil.copytree(benchmark_dir("piqa", offline=True), copy)
    data = copy / "default" / "validation.arrow"
    data.write_bytes(data.read_bytes()[:-100])  # truncated
    monkeypatch.setenv("MINITRON_CACHE", str(cache))
    with pytest.raises(MinitronError, match="fails its sha256 check"):
        benchmark_dir("piqa", offline=True)
    root, _ = tiny_checkpoint
    result = run_module("minitron", "evaluate", str(root), "--tasks", "piqa", "--limit", "2", env=_env(cache))
    assert result.returncode == 2 and "fails its sha256 check" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _env(cache):
    import os

    return {**os.environ, "MINITRON_CACHE": str(cache)}


def test_every_benchmark_copy_matches_its_pinned_digest():
    for name in BENCHMARKS:
        assert benchmark_dir(name, offline=True).is_dir()


def test_task_names_are_checked():
    assert check_tasks(["piqa", "piqa", "mmlu"]) == ("piqa", "mmlu")
    with pytest.raises(MinitronError, match="choose from hellaswag"):
        check_tasks(["arc"])
    with pytest.raises(MinitronError, match="no evaluation task"):
        check_tasks([])


def test_table_shows_change_against_baseline_and_limits():
    def scores(piqa: float, limit: int | None) -> Scores:
        return Scores(
            results={"piqa": {"acc_norm,none": piqa, "acc,none": 0.5}},
            n_samples={"piqa": {"original": 1838, "effective": 100}},
            config={"tasks": ["piqa"], "limit": limit},
        )

    table = format_table({"teacher": scores(0.669, 100), "winner 1": scores(0.612, 100)}, baseline="teacher")
    assert "| piqa | acc_norm | 100 | 66.9 | 61.2 (-5.7) |" in table
    assert "LIMITED RUN: at most 100 items" in table
    full = format_table({"teacher": scores(0.669, None)})
    assert "LIMITED" not in full and "0-shot" in full


def test_scores_round_trip(tmp_path):
    original = Scores(
        results={"piqa": {"acc,none": 0.5}}, n_samples={"piqa": {"effective": 2}}, config={"limit": 2}
    )
    original.save(tmp_path / "s.json")
    again = Scores.load(tmp_path / "s.json")
    assert again.results == original.results and again.limited


def test_cached_scores_are_reused_per_weights(tiny_checkpoint, tmp_path, monkeypatch):
    from minitron.eval.benchmarks import evaluate_path

    root, _ = tiny_checkpoint
    cache = tmp_path / "cache"
    (cache / "benchmarks").parent.mkdir(parents=True)
    (cache / "benchmarks").symlink_to(benchmark_root().parent)
    monkeypatch.setenv("MINITRON_CACHE", str(cache))
    cfg = EvalConfig(tasks=("piqa",), limit=2)
    first = evaluate_path(str(root), cfg, cache=True)
    again = evaluate_path(str(root), cfg, cache=True)
    assert "cached" not in first.config and again.config["cached"].startswith(str(cache / "evals"))
    assert again.results == json.loads(json.dumps(first.results))
    other = evaluate_path(str(root), EvalConfig(tasks=("piqa",), limit=3), cache=True)
    assert "cached" not in other.config, "other settings are another cache entry"

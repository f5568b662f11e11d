"""The dry run, through the real command line."""

import dataclasses
import json

import pytest

from search.cli.main import main
from search.plan.candidates import feasible
from search.plan.space import load_space
from tests.conftest import run_cli

HF_FIELDS = {
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
}


def test_default_dry_run_lists_the_feasible_candidates(tmp_path):
    result = run_cli("--budget", "70M", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = feasible(load_space("smollm2-135m"), 70_000_000)
    assert f"{len(expected)} feasible candidates" in result.stdout
    assert "134,515,008 parameters" in result.stdout
    assert (
        f"{expected[0].params:,}" in result.stdout
        and f"{expected[-1].params / 134_515_008:.1%}" in result.stdout
    )
    assert list(tmp_path.iterdir()) == [], "a dry run writes nothing"


def test_llama_dry_run_json_holds_both_published_minitron_4b_shapes():
    result = run_cli("--space", "spaces/llama-3.1-8b.yaml", "--budget", "4.5B", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    plan = {"probe_memory_bytes", "retrain_memory_bytes", "fits"}
    assert rows and all(
        HF_FIELDS | {"params"} | plan <= set(row) <= HF_FIELDS | {"params", "name"} | plan for row in rows
    )
    shapes = {tuple(row[k] for k in sorted(HF_FIELDS)): row["params"] for row in rows}
    width = dict(
        num_hidden_layers=32,
        hidden_size=3072,
        intermediate_size=9216,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
    )
    depth = dict(width, num_hidden_layers=16, hidden_size=4096, intermediate_size=14336)
    assert shapes[tuple(width[k] for k in sorted(HF_FIELDS))] == 4_512_746_496
    assert shapes[tuple(depth[k] for k in sorted(HF_FIELDS))] == 4_540_469_248
    assert all(4_275_000_000 <= p <= 4_725_000_000 for p in shapes.values())


def test_the_memory_plan_says_which_minitron_4b_probes_fit_which_gpu(in_process, tmp_path):
    """AdamW with fp32 weights holds 18 bytes per parameter: a 4.5B probe needs over 80 GB, more
    than an 80 GB GPU has, and fits a 141 GB one. (Over 80 GiB too where bf16 autocast is on, which
    plans a bf16 copy of the weights; in fp32, on a CPU without native bf16, 77 GiB.)"""
    published = {(32, 3072, 9216), (16, 4096, 14336)}
    for memory, fits in ((80, False), (141, True)):
        result = in_process(
            main, "--budget", "4.5B", "--dry-run", "--json", "--trial-memory", str(memory), cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        shapes = {(r["num_hidden_layers"], r["hidden_size"], r["intermediate_size"]): r for r in rows}
        for shape in published:
            row = shapes[shape]
            assert row["probe_memory_bytes"] > 80 * 10**9 and row["fits"] is fits, (memory, row)
            assert row["retrain_memory_bytes"] >= row["probe_memory_bytes"]
    table = in_process(main, "--budget", "4.5B", "--dry-run", "--trial-memory", "80", cwd=tmp_path)
    assert "probe GiB  retrain GiB  fits" in table.stdout
    assert "a trial has 80.0 GiB (--trial-memory), 85% of it planned: 0 of" in table.stdout


def test_the_plan_of_a_retraining_on_several_workers_is_per_worker(in_process, tmp_path):
    """`--retrain-workers 8` on GPUs (planned for an 80 GB one): one worker's share of a sharded
    retraining with the teacher online in bf16, far below one process's; planning for other
    machines does not check this machine's CPUs and GPUs."""
    args = ("--budget", "4.5B", "--dry-run", "--json", "--trial-memory", "80", "--gpus-per-trial", "1",
            "--retrain-teacher", "online", "--retrain-tokens", "1B")  # fmt: skip
    rows = {}
    for workers in ("1", "8"):
        result = in_process(main, *args, "--retrain-workers", workers, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        rows[workers] = {r["name"]: r for r in json.loads(result.stdout) if r.get("name")}
    width = "Llama-3.1-Minitron-4B-Width"
    assert (
        rows["8"][width]["retrain_memory_bytes"]
        < 0.85 * 80 * 2**30
        < rows["1"][width]["retrain_memory_bytes"]
    )
    assert rows["8"][width]["probe_memory_bytes"] == rows["1"][width]["probe_memory_bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget=-3M", "--dry-run"], "budget '-3M' must be a positive parameter count"),
        (["--budget=3X", "--dry-run"], "is not a parameter count"),
        (["--budget", "70M", "--json"], "--json goes with --dry-run"),
        (["--budget", "70M", "--dry-run", "--eval-limit", "0"], "--eval-limit must be a positive number"),
        (["--budget", "70M", "--dry-run", "--eval-limit", "ten"], "--eval-limit must be a positive number"),
        (["--budget", "70M", "--dry-run", "--eval-fewshot", "-2"], "--eval-fewshot must be 0 or more"),
        (["--budget", "70M", "--dry-run", "--depth-accuracy-items", "0"], "--depth-accuracy-items must be"),
        (["--budget", "70M", "--dry-run", "--probe-tokens", "0"], "--probe-tokens '0' must be a positive"),
        (["--budget", "70M", "--dry-run", "--trial-memory", "0"], "--trial-memory must be a positive number"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message, in_process):
    result = in_process(main, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_teacher_that_does_not_match_the_space_is_refused(tmp_path):
    checkpoint = tmp_path / "other"
    checkpoint.mkdir()
    config = dict(
        model_type="llama",
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    )
    (checkpoint / "config.json").write_text(json.dumps(config))
    result = run_cli("--budget", "70M", "--dry-run", "--teacher", str(checkpoint))
    assert result.returncode == 2
    assert "describes llama L30-h576-m1536-q9kv3-d64" in result.stderr and "give --space" in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--budget", "7X", "--dry-run", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "MinitronError: budget '7X' is not a parameter count" in result.stderr


def test_help_documents_every_option():
    from search.cli.options import build_parser

    parser = build_parser()
    result = run_cli("--help")
    assert result.returncode == 0
    for action in parser._actions:
        for option in action.option_strings:
            assert option in result.stdout
        assert action.help, f"{action.option_strings} has no help text"


def test_dry_run_of_4b_without_a_space_lists_the_llama_candidates_offline(tmp_path):
    """`--budget 4B` alone picks the Llama-3.1-8B space, says so (on stderr beside --json), needs no
    weights and writes nothing."""
    result = run_cli("--budget", "4B", "--dry-run", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "space llama-3.1-8b (teacher meta-llama/Llama-3.1-8B, 8.03B parameters)" in result.stderr
    expected = [c.as_json() for c in feasible(load_space("llama-3.1-8b"), 4_000_000_000)]
    rows = json.loads(result.stdout)
    assert [{k: row[k] for k in want} for row, want in zip(rows, expected, strict=True)] == expected
    assert list(tmp_path.iterdir()) == []


def test_the_step_shape_is_planned_as_given_on_cpus_and_chosen_from_memory_on_gpus(in_process, tmp_path):
    """On the CPU the step is the laptop's 4 x 256 unless given; with a GPU per trial the defaults
    are 4096-token sequences, 256k-token steps and the largest micro-batch the plan fits."""
    from search import api

    cpu = api.plan(budget="70M")
    probe = cpu.settings.probe
    assert (cpu.settings.seq_len, probe.batch_size, probe.micro_batch) == (256, 4, None)
    given = in_process(main, "--budget", "70M", "--dry-run", "--seq-len", "512", "--global-batch", "8",
                       "--micro-batch", "1", "--retrain-tokens", "1M", cwd=tmp_path)  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert "probes batch 8 x 512, retraining batch 8 x 512 in micro-batches of 1" in given.stdout
    gpu = api.plan(budget="2B", space="llama-3.1-8b", gpus_per_trial=1, trial_memory=80, retrain_tokens="1B",
                   retrain_teacher="cached")  # fmt: skip
    settings = gpu.settings
    assert (settings.seq_len, settings.retrain.batch_size) == (4096, 64)
    micro = settings.retrain.micro_batch
    assert micro is not None and 64 % micro == 0 and settings.probe.micro_batch == micro
    # the largest: the next larger divisor of 64 would not fit the largest candidate
    from search.plan.memory_plan import USABLE, plan

    largest = gpu.candidates[0]
    double = dataclasses.replace(gpu.memory, micro_batch=micro * 2)
    assert max(m.total for m in plan(gpu.space, largest, double)) > USABLE * 80 * 2**30
    assert max(m.total for m in plan(gpu.space, largest, gpu.memory)) <= USABLE * 80 * 2**30

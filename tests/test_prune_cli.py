"""`python -m minitron prune` end to end on a tiny 2-layer teacher with the real tokenizer and corpus."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from minitron.commands.prune import main
from minitron.model.architecture import Architecture, Family, count_params
from tests.conftest import run_module

ARCH = "num_hidden_layers=1,hidden_size=24,intermediate_size=16,num_attention_heads=2,num_key_value_heads=1"
#: One corpus: the default `mix` would draw the tiny teacher's own samples first.
DATA = ["--data", "wiki-en"]


@pytest.fixture(scope="module")
def setup(tiny_world):
    root, env = tiny_world
    out = root / "prune-cli"
    out.mkdir()
    (out / "teacher").symlink_to(root / "teacher")
    return out, env


def prune_cli(env, *args):
    return run_module("minitron", "prune", *args, env=env)


def test_prune_cli_writes_a_loadable_checkpoint(setup, in_process):
    root, env = setup
    args = [
        "--teacher",
        str(root / "teacher"),
        "--arch",
        ARCH,
        "--calibration-samples",
        "4",
        "--seq-len",
        "32",
        "--eval-sequences",
        "4",
        *DATA,
    ]
    result = prune_cli(env, *args, "--out", str(root / "out"))
    assert result.returncode == 0, result.stderr
    arch = Architecture(1, 24, 16, 2, 1, 8)
    params = count_params(
        Family.from_config(AutoModelForCausalLM.from_pretrained(root / "teacher").config), arch
    )
    assert f"{params:,} parameters" in result.stdout and "zero-shot validation loss" in result.stdout
    assert "[importance] width scores computed" in result.stdout  # computed the first time

    model = AutoModelForCausalLM.from_pretrained(root / "out")
    tokenizer = AutoTokenizer.from_pretrained(root / "out")
    assert Architecture.from_mapping(model.config) == arch
    assert sum(p.numel() for p in model.parameters()) == params
    record = json.loads((root / "out" / "pruning.json").read_text())
    assert record["params"] == params and record["architecture"] == arch.as_dict()
    assert len(record["selection"]["layers"]) == 1 and record["zero_shot_validation"]["tokens"] == 4 * 31
    with torch.no_grad():
        out = model(**tokenizer("The cat", return_tensors="pt")).logits
    assert torch.isfinite(out).all()

    again = in_process(main, *args, "--out", str(root / "out"), env=env)
    assert again.returncode == 2 and "already exists and is not empty; pass --overwrite" in again.stderr
    again = prune_cli(env, *args, "--out", str(root / "out"), "--overwrite")
    assert again.returncode == 0, again.stderr
    assert "[importance] width scores read from the cache" in again.stdout, "importance comes from the cache"
    assert sorted(p.name for p in root.iterdir()) == ["out", "teacher"], "no staging leftovers"


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("num_hidden_layers=1", "--arch is missing hidden_size"),
        (
            "num_hidden_layers=1,hidden_size=96,intermediate_size=16,num_attention_heads=2",
            "exceeds the teacher's 48",
        ),
        ("depth=1", "unknown field(s) depth"),
    ],
)
def test_prune_cli_bad_arch(setup, arch, message, in_process):
    root, env = setup
    result = in_process(
        main,
        "--teacher",
        str(root / "teacher"),
        "--arch",
        arch,
        "--out",
        str(root / "bad"),
        "--calibration-samples",
        "4",
        "--seq-len",
        "32",
        "--eval-sequences",
        "0",
        *DATA,
        env=env,
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (root / "bad").exists()


def test_prune_cli_block_drops_the_next_measured_block(setup, in_process):
    root, env = setup
    args = ["--teacher", str(root / "teacher"), "--arch", ARCH, "--calibration-samples", "4"]
    args += ["--seq-len", "32", "--eval-sequences", "0", *DATA]
    first = in_process(main, *args, "--out", str(root / "block0"), env=env)
    assert first.returncode == 0, first.stderr
    second = in_process(main, *args, "--out", str(root / "block1"), "--block", "1", env=env)
    assert second.returncode == 0, second.stderr
    records = [json.loads((root / f"block{n}" / "pruning.json").read_text()) for n in (0, 1)]
    measured = records[0]["measured_blocks"]
    assert [m["layers"] for m in measured] in ([[0, 0], [1, 1]], [[1, 1], [0, 0]])
    assert measured[0]["loss_increase"] <= measured[1]["loss_increase"]
    assert records[1]["block"] == 1 and records[1]["measured_blocks"] == measured
    # the student keeps the one layer that the least-loss block (rank 0) drops
    assert records[0]["selection"]["layers"] == measured[1]["layers"][:1]
    assert records[1]["selection"]["layers"] == measured[0]["layers"][:1]
    for extra, message in [
        (["--block", "2"], "only 2 contiguous blocks of 1 layer have a measured removal loss"),
        (["--block", "1", "--depth", "last"], "--block 1 needs --depth block"),
        (["--block", "-1"], "--block must be 0 or more"),
    ]:
        bad = in_process(main, *args, "--out", str(root / "bad-block"), *extra, env=env)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
        assert not (root / "bad-block").exists() or not any((root / "bad-block").iterdir())

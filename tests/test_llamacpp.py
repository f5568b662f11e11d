"""llama.cpp as a runtime. Without llama-cpp-python (an optional extra that compiles llama.cpp;
`make test` does not install it) only the parts that need no llama.cpp run here: runtime names,
candidates written from memory as GGUF, timing in turn. With it installed, the exported files are
also run in llama.cpp and checked against PyTorch."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from gguf import GGUFReader

from minitron.errors import MinitronError
from minitron.export.gguf_file import export_gguf, export_model, teacher_tokenizer_keys
from minitron.export.llamacpp import LatencyRuntime, available
from minitron.model.speed import compare_in_turn
from tests.tiny import tiny_model

needs_llama_cpp = pytest.mark.skipif(not available(), reason="llama-cpp-python is not installed")


def test_runtime_names():
    assert LatencyRuntime.parse("pytorch").quant is None
    assert LatencyRuntime.parse("llama.cpp").quant == "q8_0"
    assert LatencyRuntime.parse("LLaMA.cpp:Q4_0") == LatencyRuntime("q4_0")
    assert str(LatencyRuntime("q4_0")) == "llama.cpp:q4_0" and str(LatencyRuntime()) == "pytorch"
    for bad in ("onnx", "pytorch:q8_0", "llama.cpp:q3_k", "llama.cpp:"):
        if bad == "llama.cpp:":
            assert LatencyRuntime.parse(bad).quant == "q8_0"
            continue
        with pytest.raises(MinitronError):
            LatencyRuntime.parse(bad)


def test_a_build_with_amx_kernels_is_refused_in_one_line(monkeypatch):
    """Those kernels crashed on every quantized file here; the refusal says how to rebuild."""
    import types

    from minitron.export.llamacpp import require

    fake = types.SimpleNamespace(llama_print_system_info=lambda: b"CPU : AVX2 = 1 | AMX_INT8 = 1 | ")
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    monkeypatch.delenv("MINITRON_LLAMA_CPP_AMX", raising=False)
    with pytest.raises(MinitronError, match=r"AMX kernels.*-DGGML_NATIVE=OFF"):
        require()
    monkeypatch.setenv("MINITRON_LLAMA_CPP_AMX", "1")
    assert require() is fake
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MinitronError, match=r"^llama\.cpp is not installed here: pip install"):
        require()


def test_timing_in_turn_takes_the_median_ratio():
    reference, model = iter([1.0, 2.0, 2.0, 4.0]), iter([1.0, 1.0, 1.0, 1.0, 2.0])
    compared = compare_in_turn(lambda: next(reference), lambda: next(model), rounds=4, warm=True)
    # the model's warm-up takes its first value; then pairs (1,1), (2,1), (2,1), (4,2)
    assert compared.speedup == pytest.approx(2.0)
    assert (compared.speedup_low, compared.speedup_high) == (pytest.approx(1.0), pytest.approx(2.0))
    assert compared.reference.median_ms == pytest.approx(2000.0)


def _checkpoint(folder, teacher, **overrides):
    model = tiny_model(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=32, vocab_size=len(teacher.tokenizer), **overrides,
    )  # fmt: skip
    model.save_pretrained(folder)
    teacher.tokenizer.save_pretrained(folder)
    (folder / "provenance.json").write_text(json.dumps({"teacher": "smollm2-135m"}))
    return model


def test_a_model_in_memory_is_written_as_its_checkpoint_would_be(tmp_path, teacher):
    """What the latency stage times is the file `export` would write for the same weights."""
    model = _checkpoint(tmp_path / "ckpt", teacher)
    (saved,) = export_gguf(tmp_path / "ckpt", ["q8_0"])
    keys = teacher_tokenizer_keys("smollm2-135m", str(tmp_path / "ckpt"), model.config.vocab_size)
    memory = export_model(model, tmp_path / "memory.Q8_0.gguf", "q8_0", keys, {})
    ours, theirs = GGUFReader(memory.path), GGUFReader(saved.path)
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    for a, b in zip(ours.tensors, theirs.tensors, strict=True):
        assert a.tensor_type == b.tensor_type and np.array_equal(a.data, b.data), a.name
    assert ours.fields["tokenizer.ggml.tokens"].data == theirs.fields["tokenizer.ggml.tokens"].data


@needs_llama_cpp
def test_llama_cpp_runs_the_file_at_pytorchs_loss(tmp_path, teacher, wiki_tokens):
    """The teacher's f16 file in llama.cpp: its loss on test windows is PyTorch's for the same
    f16-rounded weights (llama.cpp computes in its own kernels and order: 0.01 nats of slack), it
    continues a prompt greedily as PyTorch does, and its latency is positive."""
    from minitron.data.tokens import pack
    from minitron.eval.loss import validation_loss
    from minitron.export.llamacpp import LlamaCpp, measure_speed
    from minitron.model.teacher import checkpoint_folder

    (f16,) = export_gguf(checkpoint_folder("smollm2-135m"), ["f16"], out=tmp_path)
    windows = pack(wiki_tokens.test, 128, 4)
    with LlamaCpp(f16.path, n_ctx=128, threads=2, logits=True) as runner:
        theirs = runner.loss(windows.numpy())
        prompt = teacher.tokenizer("The capital of France is").input_ids
        generated = runner.greedy(prompt, 8)
    model = teacher.model
    with torch.no_grad():
        rounded = {k: v.half().float() if v.ndim == 2 else v for k, v in model.state_dict().items()}
    copy = type(model)(model.config)
    copy.load_state_dict(rounded)
    ours = validation_loss(copy.eval(), windows, progress=False).loss
    assert abs(theirs - ours) < 0.01, (theirs, ours)
    with torch.no_grad():
        expected = copy.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False)[0, len(prompt) :]
    assert generated.tokens[:4] == expected[:4].tolist()
    with LlamaCpp(f16.path, n_ctx=128, threads=2) as runner:
        speed = measure_speed(runner, 128, repeats=2)
    assert speed.latency_ms > 0 and speed.device.startswith("llama.cpp")


@needs_llama_cpp
def test_a_search_times_its_candidates_in_llama_cpp(tiny_space, tmp_path):
    """`--latency-runtime llama.cpp:q8_0` end to end on the tiny teacher: the trials' latencies (the
    objective of a range) and the latency stage's speed-ups come from llama.cpp, and say so."""
    import subprocess

    from tests.conftest import ROOT
    from tests.test_search_cli import BUDGET, FAST, private_cache

    space, env = tiny_space
    args = [sys.executable, str(ROOT / "search.py"), "--space", str(space), "--budget", BUDGET, *FAST]
    args += ["--gguf", "none", "--latency-runtime", "llama.cpp:q8_0", "--out", str(tmp_path), "--name", "run"]
    result = subprocess.run(
        args, env=private_cache(tmp_path, env), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert (
        json.loads((run / "config.json").read_text())["settings"]["plan"]["latency_runtime"]
        == "llama.cpp:q8_0"
    )
    latency = json.loads((run / "latency.json").read_text())
    assert latency["teacher"]["device"].startswith("llama.cpp") and "Q8_0" in latency["teacher"]["device"]
    assert latency["candidates"] and all(c["latency_ms"] > 0 for c in latency["candidates"].values())
    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert all(t["device"].startswith("llama.cpp") for t in trials if t.get("latency_ms"))
    assert "llama.cpp" in (run / "report.html").read_text()


@needs_llama_cpp
def test_llama3_rotary_scaling_runs_in_llama_cpp_as_in_transformers(tmp_path, teacher, monkeypatch):
    """A Llama-3.1-style scaled rotary (as in the cluster's Llama-3.1-8B winners), written as f32:
    llama.cpp's loss on 128-token windows is transformers'; without `rope_freqs.weight` it is not."""
    from minitron.eval.loss import validation_loss
    from minitron.export import gguf_layout
    from minitron.export.llamacpp import LlamaCpp
    from tests.test_export_gguf import LLAMA3_ROPE

    model = _checkpoint(tmp_path / "ckpt", teacher, rope_parameters=LLAMA3_ROPE)
    windows = torch.randint(0, model.config.vocab_size, (2, 128), generator=torch.Generator().manual_seed(0))
    ours = validation_loss(model.eval(), windows, progress=False).loss

    def in_llama_cpp(folder):
        (f32,) = export_gguf(tmp_path / "ckpt", ["f32"], out=folder)
        with LlamaCpp(f32.path, n_ctx=128, threads=2, logits=True) as runner:
            return runner.loss(windows.numpy())

    assert abs(in_llama_cpp(tmp_path / "scaled") - ours) < 1e-3
    monkeypatch.setattr(gguf_layout, "rope_freq_factors", lambda config: None)
    assert abs(in_llama_cpp(tmp_path / "unscaled") - ours) > 1e-2, "the scaling must matter here"

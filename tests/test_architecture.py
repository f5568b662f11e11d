"""Parameter counting must equal what transformers actually builds."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, Family, build_config, count_params

LLAMA_31_8B = {
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": False,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    "bos_token_id": 128000,
    "eos_token_id": 128001,
}
MISTRAL_NEMO_12B = {
    "model_type": "mistral",
    "vocab_size": 131072,
    "hidden_size": 5120,
    "intermediate_size": 14336,
    "num_hidden_layers": 40,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": False,
    "max_position_embeddings": 1024000,
    "rms_norm_eps": 1e-5,
    "rope_theta": 1000000.0,
    "sliding_window": None,
}


def tiny(model_type: str, **overrides) -> dict:
    """A 2-layer decoder config of the given family."""
    base = {
        "model_type": model_type,
        "vocab_size": 101,
        "hidden_size": 48,
        "intermediate_size": 80,
        "num_hidden_layers": 2,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "tie_word_embeddings": False,
    }
    return {**base, **overrides}


def numel(config: dict, meta: bool = False) -> int:
    values = dict(config)
    cfg = AutoConfig.for_model(values.pop("model_type"), **values)
    if meta:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
    else:
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def counted(config: dict) -> int:
    return count_params(Family.from_config(config), Architecture.from_mapping(config))


@pytest.mark.parametrize(
    "config",
    [
        tiny("llama"),
        tiny("llama", tie_word_embeddings=True),
        tiny("llama", num_key_value_heads=6),  # MHA
        tiny("llama", num_key_value_heads=1),  # MQA
        tiny("llama", attention_bias=True),
        tiny("llama", mlp_bias=True),
        tiny("llama", attention_bias=True, mlp_bias=True, tie_word_embeddings=True),
        tiny("llama", head_dim=16),  # attention width (96) differs from hidden (48)
        tiny("mistral"),
        tiny("mistral", tie_word_embeddings=True),
        tiny("qwen2"),  # q/k/v biases, no o bias
        tiny("qwen2", tie_word_embeddings=True),
    ],
    ids=lambda c: (
        "-".join(f"{k}={v}" for k, v in c.items() if k not in tiny("llama") or tiny("llama")[k] != v)
        or "llama"
    ),
)
def test_count_equals_numel(config):
    assert counted(config) == numel(config)


@pytest.mark.parametrize(
    ("config", "published"),
    [(LLAMA_31_8B, 8_030_261_248), (MISTRAL_NEMO_12B, 12_247_782_400)],
    ids=["llama-3.1-8b", "mistral-nemo-12b"],
)
def test_count_equals_numel_on_meta_for_large_teachers(config, published):
    assert counted(config) == numel(config, meta=True) == published


def test_published_minitron_shapes():
    family = Family.from_config(LLAMA_31_8B)
    width = Architecture(32, 3072, 9216, 32, 8, 128)
    depth = Architecture(16, 4096, 14336, 32, 8, 128)
    assert count_params(family, width) == 4_512_746_496  # "≈4.51B"
    assert count_params(family, depth) == 4_540_469_248  # "≈4.54B"
    nemo = Architecture(40, 4096, 11520, 32, 8, 128)
    assert count_params(Family.from_config(MISTRAL_NEMO_12B), nemo) == 8_414_105_600


def test_build_config_keeps_family_and_changes_sizes():
    arch = Architecture(16, 3072, 9216, 24, 8, 128)
    config = build_config({**LLAMA_31_8B, "quantization_config": {"quant_method": "gguf"}}, arch)
    assert Architecture.from_mapping(config) == arch
    assert config.rope_parameters["rope_type"] == "llama3"
    assert config.vocab_size == 128256 and not config.tie_word_embeddings
    assert getattr(config, "quantization_config", None) is None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == count_params(Family.from_config(LLAMA_31_8B), arch)


def test_build_config_rejects_unbuildable_and_unsupported():
    with pytest.raises(MinitronError, match="multiple of num_attention_heads"):
        build_config(LLAMA_31_8B, Architecture(32, 3000, 9216, 32, 8, 128))
    with pytest.raises(MinitronError, match="multiple of num_key_value_heads"):
        build_config(LLAMA_31_8B, Architecture(32, 3072, 9216, 24, 16, 128))
    with pytest.raises(MinitronError, match="not supported; supported: llama, mistral, qwen2"):
        build_config({**LLAMA_31_8B, "model_type": "gpt2"}, Architecture(32, 3072, 9216, 32, 8, 128))


def test_problems_mirror_transformers():
    """Whatever `problems()` accepts, LlamaConfig accepts; what LlamaConfig rejects, it flags."""
    for hidden, heads in [(576, 9), (576, 7), (512, 6), (384, 6)]:
        arch = Architecture(2, hidden, 64, heads, heads, 64)
        try:
            AutoConfig.for_model("llama", **arch.as_dict())
            accepted = True
        except Exception:
            accepted = False
        assert accepted == (not arch.problems()), (hidden, heads)


def test_pruning_problems():
    teacher = Architecture(30, 576, 1536, 9, 3, 64)
    assert Architecture(20, 384, 1024, 6, 3, 64).pruning_problems(teacher) == []
    assert Architecture(20, 384, 1024, 3, 1, 64).pruning_problems(teacher) == []
    assert "exceeds the teacher's 576" in " ".join(
        Architecture(20, 640, 1024, 6, 3, 64).pruning_problems(teacher)
    )
    # 6 query heads on 1 KV head = 6 per group, but each teacher group only has 3
    assert "per group" in " ".join(Architecture(20, 384, 1024, 6, 1, 64).pruning_problems(teacher))


def test_config_without_a_size_is_a_clear_error():
    with pytest.raises(MinitronError, match="the model config has no intermediate_size"):
        Architecture.from_mapping({k: v for k, v in LLAMA_31_8B.items() if k != "intermediate_size"})
    assert Architecture.from_mapping({**LLAMA_31_8B, "head_dim": None}).head_dim == 128  # HF's default

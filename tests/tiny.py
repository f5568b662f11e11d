"""Tiny decoder models built from configs (no downloads), with every weight randomized so that a
slicing mistake shows up in the logits."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM

BASE = {
    "vocab_size": 97,
    "hidden_size": 48,
    "intermediate_size": 40,
    "num_hidden_layers": 5,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "tie_word_embeddings": False,
    "max_position_embeddings": 64,
}

FAMILIES = {
    "llama": {"model_type": "llama"},
    "llama-tied": {"model_type": "llama", "tie_word_embeddings": True},
    "llama-bias": {"model_type": "llama", "attention_bias": True, "mlp_bias": True},
    "mistral": {"model_type": "mistral"},
    "qwen2": {"model_type": "qwen2"},
}


def tiny_model(family: str = "llama", seed: int = 0, **overrides):
    values = {**BASE, **FAMILIES[family], **overrides}
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.3 * torch.randn_like(param))
            else:
                param.normal_(0, 0.2)
    return model.eval()


def tiny_batches(n: int = 8, length: int = 16, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, BASE["vocab_size"], (n, length), generator=generator)

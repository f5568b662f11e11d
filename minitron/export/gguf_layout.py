"""How a Hugging Face `LlamaForCausalLM` (or a Mistral without sliding windows, which llama.cpp takes
as a Llama) maps onto llama.cpp's GGUF: tensor names, the rotary layout of the query and key rows,
the architecture's metadata, and what llama.cpp can hold.

Why the permutation: Hugging Face's Llama rotates the two halves of each head (`rotate_half`),
llama.cpp rotates interleaved pairs. llama.cpp's converter therefore reorders the rows of `q_proj`
and `k_proj` within each head so that both compute the same attention, and transformers' GGUF
reader undoes exactly that reordering when it loads a GGUF; we write what llama.cpp's converter
writes. Names and keys are llama.cpp's for its `llama` architecture (the constants of the `gguf`
package), including `attention.key_length`, which pruned models need: their `head_dim` is
rarely `hidden_size / num_attention_heads` once the hidden size is cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from minitron.errors import MinitronError

#: Hugging Face names (after `model.layers.{i}.`) and llama.cpp names (after `blk.{i}.`).
LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def _rope(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("rope_parameters") or config.get("rope_scaling") or {}


def _rope_type(config: Mapping[str, Any]) -> str:
    rope = _rope(config)
    return str(rope.get("rope_type", rope.get("type", "default")))


def rope_freq_factors(config: Mapping[str, Any]) -> np.ndarray | None:
    """Llama 3.1's rotary scaling (`rope_type: llama3`) as llama.cpp holds it: one divisor per
    rotary frequency (`rope_freqs.weight`, head_dim / 2 values); None for unscaled rotaries.

    Hugging Face scales each inverse frequency f by 1/factor where its wavelength 2π/f exceeds
    original_max_position_embeddings / low_freq_factor, keeps it below
    original_max_position_embeddings / high_freq_factor, and blends the two in between
    (`smooth`); llama.cpp divides each frequency by the factor stored here, so the factor is the
    reciprocal of that blend."""
    if _rope_type(config) != "llama3":
        return None
    rope, dim = _rope(config), head_dim(config)
    freqs = 1.0 / _rope_theta(config) ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    factor = float(rope["factor"])
    low, high = float(rope["low_freq_factor"]), float(rope["high_freq_factor"])
    original = float(rope["original_max_position_embeddings"])
    wavelen = 2 * np.pi / freqs
    smooth = (original / wavelen - low) / (high - low)
    blend = 1.0 / ((1 - smooth) / factor + smooth)
    out = np.where(wavelen < original / high, 1.0, np.where(wavelen > original / low, factor, blend))
    return out.astype(np.float32)


def _rope_theta(config: Mapping[str, Any]) -> float:
    rope = config.get("rope_parameters") or {}
    return float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))


def check_exportable(config: Mapping[str, Any]) -> None:
    """One line saying why llama.cpp's `llama` architecture cannot hold this model, if it cannot."""
    problems = []
    if config.get("model_type") not in ("llama", "mistral"):
        problems.append(f"model_type is {config.get('model_type')!r}, not 'llama' or 'mistral'")
    if config.get("sliding_window"):  # llama.cpp's converter takes Mistral as a Llama without it
        problems.append("it uses sliding-window attention")
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act is {config.get('hidden_act')!r}, not 'silu'")
    if config.get("attention_bias") or config.get("mlp_bias"):
        problems.append("it has attention or MLP biases")
    if _rope_type(config) not in ("default", "llama3"):
        problems.append(f"its rotary scaling {_rope_type(config)!r} is not exported yet")
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    if head_dim % 2:
        problems.append(f"head_dim {head_dim} is odd")
    if problems:
        raise MinitronError(f"cannot export to GGUF for llama.cpp: {'; '.join(problems)}")


def head_dim(config: Mapping[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `llama.*` keys llama.cpp reads (typed by `gguf_file`: counts UINT32, the rest FLOAT32)."""
    dim = head_dim(config)
    return {
        "llama.context_length": int(config["max_position_embeddings"]),
        "llama.embedding_length": int(config["hidden_size"]),
        "llama.block_count": int(config["num_hidden_layers"]),
        "llama.feed_forward_length": int(config["intermediate_size"]),
        "llama.attention.head_count": int(config["num_attention_heads"]),
        "llama.attention.head_count_kv": int(config["num_key_value_heads"]),
        "llama.attention.key_length": dim,
        "llama.attention.value_length": dim,
        "llama.rope.dimension_count": dim,
        "llama.vocab_size": int(config["vocab_size"]),
        "llama.rope.freq_base": _rope_theta(config),
        "llama.attention.layer_norm_rms_epsilon": float(config["rms_norm_eps"]),
    }


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q or k projection from halves-per-head order (HF) to interleaved pairs (llama.cpp)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def tensors(state: Mapping[str, Any], config: Mapping[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """(llama.cpp name, float32 array) for every weight, q and k rows permuted; `lm_head` only when
    the embeddings are untied. Refuses a state dict with tensors it does not know."""
    layers = int(config["num_hidden_layers"])
    known = set(GLOBAL_TENSORS) | {f"model.layers.{i}.{k}" for i in range(layers) for k in LAYER_TENSORS}
    unknown = sorted(set(state) - known)
    if unknown:
        raise MinitronError(f"cannot export to GGUF: unexpected tensor(s) {', '.join(unknown[:3])}")
    for hf, name in GLOBAL_TENSORS.items():
        if hf == "lm_head.weight" and (config.get("tie_word_embeddings") or hf not in state):
            continue
        yield name, _array(state[hf])
    factors = rope_freq_factors(config)
    if factors is not None:
        yield "rope_freqs.weight", factors
    for i in range(layers):
        for part, name in LAYER_TENSORS.items():
            array = _array(state[f"model.layers.{i}.{part}"])
            if part == "self_attn.q_proj.weight":
                array = permute_rotary(array, int(config["num_attention_heads"]))
            elif part == "self_attn.k_proj.weight":
                array = permute_rotary(array, int(config["num_key_value_heads"]))
            yield f"blk.{i}.{name}", array


def _array(tensor: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor (bf16 included) or an array."""
    if hasattr(tensor, "detach"):
        return tensor.detach().float().cpu().numpy()
    return np.asarray(tensor, dtype=np.float32)

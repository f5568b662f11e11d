"""Model surgery: cut a selection of units out of a model, as a fresh Hugging Face model.

    cut(model, arch, selection) -> PreTrainedModel

The result is built from a new config (`build_config`) and loaded with sliced copies of the
model's weights; the source is never modified. Every tensor is sliced by the `Selection`:
embeddings and LM head (tied or untied) and every norm by hidden channel; q/k/v by kept heads (and
biases); o_proj by hidden channel × kept heads; gate/up/down by neuron × channel; dropped layers
are skipped and the rest renumbered. Which units to keep is decided elsewhere
(`minitron.importance.selection`); `layer_view` is the weight-sharing special case that only drops
layers, for evaluating removals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, build_config


@dataclass(frozen=True)
class Selection:
    """Indices (into the source model) of everything a pruned model keeps."""

    layers: tuple[int, ...]
    """Kept decoder layers, ascending."""
    channels: torch.Tensor
    """Kept hidden channels, ascending."""
    heads: tuple[torch.Tensor, ...]
    """Per kept layer: kept query heads, ascending."""
    kv_heads: tuple[torch.Tensor, ...]
    """Per kept layer: kept KV heads, ascending."""
    neurons: tuple[torch.Tensor, ...]
    """Per kept layer: kept MLP neurons, ascending."""

    def summary(self) -> dict[str, object]:
        """A JSON-friendly record for provenance files."""
        return {
            "layers": list(self.layers),
            "channels": self.channels.tolist(),
            "heads": [h.tolist() for h in self.heads],
            "kv_heads": [h.tolist() for h in self.kv_heads],
        }


def full_selection(source: Architecture, layers: tuple[int, ...]) -> Selection:
    """Keep every unit of the given layers (depth-only pruning)."""
    return Selection(
        layers=layers,
        channels=torch.arange(source.hidden_size),
        heads=tuple(torch.arange(source.num_attention_heads) for _ in layers),
        kv_heads=tuple(torch.arange(source.num_key_value_heads) for _ in layers),
        neurons=tuple(torch.arange(source.intermediate_size) for _ in layers),
    )


_LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
#: The norms of a decoder layer: one weight per hidden channel.
_NORMS = ("input_layernorm", "post_attention_layernorm")
#: Every projection of a decoder layer: (what its outputs are, what its inputs are). A weight is cut
#: to (kept outputs, kept inputs), a bias to the kept outputs.
_PROJECTIONS = {
    "self_attn.q_proj": ("q", "channel"),
    "self_attn.k_proj": ("kv", "channel"),
    "self_attn.v_proj": ("kv", "channel"),
    "self_attn.o_proj": ("channel", "q"),
    "mlp.gate_proj": ("mlp", "channel"),
    "mlp.up_proj": ("mlp", "channel"),
    "mlp.down_proj": ("channel", "mlp"),
}


def _expand(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Row indices of whole heads: head h covers rows h*head_dim ... (h+1)*head_dim − 1."""
    return (heads[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


def keeps_everything(index: torch.Tensor, size: int) -> bool:
    """Whether `index` is 0, 1, ..., size - 1: nothing along that dimension is cut."""
    return index.numel() == size and bool((index == torch.arange(size)).all())


def _take(tensor: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """`tensor` restricted to `index` along `dim`; the tensor itself when nothing is cut (no copy)."""
    if keeps_everything(index, tensor.shape[dim]):
        return tensor
    return tensor.index_select(dim, index.to(tensor.device))


#: Reads one tensor of the source by name, restricted to the given rows (all rows for None).
ReadRows = Callable[[str, "torch.Tensor | None"], torch.Tensor]


def slice_state_dict(
    state: dict[str, torch.Tensor], selection: Selection, head_dim: int
) -> dict[str, torch.Tensor]:
    """The teacher's tensors cut down to `selection`, keyed for the pruned model.

    Uncut tensors are returned as they are (so a depth-only view shares the teacher's memory);
    cut ones are fresh copies.
    """

    def read_rows(key: str, rows: torch.Tensor | None) -> torch.Tensor:
        return state[key] if rows is None else _take(state[key], 0, rows)

    return slice_tensors(list(state), read_rows, selection, head_dim)


def slice_tensors(
    keys: list[str], read_rows: ReadRows, selection: Selection, head_dim: int
) -> dict[str, torch.Tensor]:
    """`slice_state_dict` over any source of tensors: a state dict in memory, or a checkpoint on
    disk read a slice at a time (`minitron.model.lazy`), so the source need never be held whole."""
    ch = selection.channels
    new_index = {old: new for new, old in enumerate(selection.layers)}
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        match = _LAYER_KEY.match(key)
        if match is None:
            if key in ("model.embed_tokens.weight", "lm_head.weight"):
                out[key] = _take(read_rows(key, None), 1, ch)
            elif key == "model.norm.weight":
                out[key] = read_rows(key, ch)
            else:
                raise MinitronError(f"cannot prune unexpected tensor {key}")
            continue
        old, name = int(match.group(1)), match.group(2)
        if old not in new_index:
            continue
        i = new_index[old]
        kept = {
            "channel": ch,
            "q": _expand(selection.heads[i], head_dim),
            "kv": _expand(selection.kv_heads[i], head_dim),
            "mlp": selection.neurons[i],
        }
        module, _, kind = name.rpartition(".")
        if module in _NORMS and kind == "weight":
            rows, columns = kept["channel"], None
        elif module in _PROJECTIONS and kind in ("weight", "bias"):
            out_units, in_units = _PROJECTIONS[module]
            rows, columns = kept[out_units], kept[in_units] if kind == "weight" else None
        else:
            raise MinitronError(f"cannot prune unexpected tensor {key}")
        cut = read_rows(key, rows)
        out[f"model.layers.{i}.{name}"] = cut if columns is None else _take(cut, 1, columns)
    return out


def build_model(
    config: Any, state: dict[str, torch.Tensor], dtype: torch.dtype, device: torch.device, share: bool = False
) -> Any:
    """A fresh causal LM from `config`, loaded with `state` (copied, or shared when `share`).

    Weights are allocated uninitialized on the target device (random init would be wasted), so
    buffers such as RoPE frequencies are computed by the model's own constructor.
    """
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    with no_init_weights(), torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()  # skipped with the initialization, as in from_pretrained, which ties after it too
    model.load_state_dict(state, strict=True, assign=share)
    return model.eval()


def cut(teacher: Any, arch: Architecture, selection: Selection, share: bool = False) -> Any:
    """A fresh model of `arch` holding the `selection` of `teacher`'s weights (copies unless `share`)."""
    param = next(teacher.parameters())
    with torch.no_grad():
        state = slice_state_dict(teacher.state_dict(), selection, arch.head_dim)
        config = build_config(teacher.config, arch, layers=selection.layers)
        return build_model(config, state, param.dtype, param.device, share=share)


def layer_view(model: Any, layers: tuple[int, ...]) -> Any:
    """`model` restricted to `layers`, sharing its weights (for evaluation only)."""
    source = Architecture.from_mapping(model.config)
    arch = Architecture(**{**source.as_dict(), "num_hidden_layers": len(layers)})
    return cut(model, arch, full_selection(source, layers), share=True)

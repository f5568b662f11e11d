"""Baseline unit rankings to compare activation importance against (used by `bench/`).

Both return an `Importance` with the same depth scores as a reference, so only width choices differ:
- `random_importance`: uniformly random scores (a random subset of units);
- `magnitude_importance`: weight norms (the head's `o_proj` columns, the neuron's `down_proj`
  column, the channel's embedding column) — the classic data-free criterion.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from minitron.importance.scores import Importance
from minitron.importance.width import decoder_layers


def random_importance(reference: Importance, seed: int) -> Importance:
    generator = torch.Generator().manual_seed(seed)

    def scores(like: torch.Tensor) -> torch.Tensor:
        return torch.rand(like.shape, generator=generator)

    return dataclasses.replace(
        reference,
        heads=scores(reference.heads),
        neurons=scores(reference.neurons),
        channels=scores(reference.channels),
        meta={**reference.meta, "baseline": f"random(seed={seed})"},
    )


@torch.no_grad()
def magnitude_importance(model: Any, reference: Importance) -> Importance:
    arch = reference.architecture
    heads, neurons = [], []
    for layer in decoder_layers(model):
        o = layer.self_attn.o_proj.weight.float()  # [hidden, heads * head_dim]
        heads.append(o.reshape(o.shape[0], arch.num_attention_heads, arch.head_dim).norm(dim=(0, 2)).cpu())
        neurons.append(layer.mlp.down_proj.weight.float().norm(dim=0).cpu())
    channels = model.model.embed_tokens.weight.float().norm(dim=0).cpu()
    return dataclasses.replace(
        reference,
        heads=torch.stack(heads),
        neurons=torch.stack(neurons),
        channels=channels,
        meta={**reference.meta, "baseline": "weight magnitude"},
    )

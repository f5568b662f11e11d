"""Activation-based importance of every prunable unit of a teacher (Minitron, arXiv 2407.14679 §2.2).

One calibration pass (forward only, hooks that observe and never change anything) scores
- attention heads: per token, the L2 norm of the head's slice of the `o_proj` input;
- MLP neurons: per token, |input of `down_proj`| (the gated activation);
- embedding channels: per token, |output| of every RMSNorm (`input_layernorm`,
  `post_attention_layernorm`, final `norm`), summed over the norms;
- layers: Block Importance, 1 − mean cosine(layer input, layer output).

Per-token scores are reduced over the sequence, then over the batch (default: L2 over the batch of
the per-sequence mean, the paper's best in its Table 11), always in fp32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from minitron.importance.scores import Importance, ImportanceConfig
from minitron.model.architecture import Architecture, check_model_type
from minitron.progress import Progress
from minitron.runtime import precision, use_bf16


class _Reducer:
    """Streams per-token scores [batch, seq, units] into one score per unit."""

    def __init__(self, cfg: ImportanceConfig) -> None:
        self.cfg = cfg
        self.sum: torch.Tensor | None = None
        self.sq: torch.Tensor | None = None
        self.count = 0

    def add(self, per_token: torch.Tensor) -> None:
        x = per_token.float()
        if self.cfg.seq_reduction == "mean":
            per_seq = x.mean(dim=1)
        elif self.cfg.seq_reduction == "l2":
            per_seq = x.norm(dim=1)
        else:
            per_seq = x.var(dim=1, unbiased=False)
        s, q = per_seq.sum(0), per_seq.pow(2).sum(0)
        self.sum = s if self.sum is None else self.sum + s
        self.sq = q if self.sq is None else self.sq + q
        self.count += per_seq.shape[0]

    def result(self) -> torch.Tensor:
        assert self.sum is not None and self.sq is not None, "no calibration batch was seen"
        if self.cfg.batch_reduction == "l2":
            return self.sq.sqrt()
        mean = self.sum / self.count
        if self.cfg.batch_reduction == "mean":
            return mean
        return (self.sq / self.count - mean.pow(2)).clamp_min(0)


def decoder_layers(model: Any) -> Any:
    """The decoder blocks of a supported causal LM (`model.model.layers`)."""
    return model.model.layers


@torch.no_grad()
def estimate_width_importance(
    model: Any, sequences: torch.Tensor, cfg: ImportanceConfig, progress: bool = True
) -> Importance:
    """Head, neuron, channel and Block Importance scores from one forward pass over `sequences`."""
    check_model_type(model.config.model_type)
    arch = Architecture.from_mapping(model.config)
    layers = decoder_layers(model)
    heads = [_Reducer(cfg) for _ in layers]
    neurons = [_Reducer(cfg) for _ in layers]
    channels = [_Reducer(cfg) for _ in range(2 * len(layers) + 1)]
    cosines = [torch.zeros((), dtype=torch.float64) for _ in layers]
    tokens = [0]

    def on_o_proj(i: int) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            x = args[0]
            per_head = x.float().reshape(*x.shape[:-1], arch.num_attention_heads, arch.head_dim).norm(dim=-1)
            heads[i].add(per_head)  # observe only: returning None leaves the input untouched

        return hook

    def on_down_proj(i: int) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            neurons[i].add(args[0].float().abs())

        return hook

    def on_norm(j: int) -> Callable[..., None]:
        def hook(_module: Any, _args: Any, output: torch.Tensor) -> None:
            channels[j].add(output.float().abs())

        return hook

    def on_layer(i: int) -> Callable[..., None]:
        def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            inputs = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(inputs.float(), out.float(), dim=-1)
            cosines[i] += cos.double().sum().cpu()
            if i == 0:
                tokens[0] += cos.numel()

        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(on_o_proj(i)))
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(on_down_proj(i)))
        handles.append(layer.input_layernorm.register_forward_hook(on_norm(2 * i)))
        handles.append(layer.post_attention_layernorm.register_forward_hook(on_norm(2 * i + 1)))
        handles.append(layer.register_forward_hook(on_layer(i), with_kwargs=True))
    handles.append(model.model.norm.register_forward_hook(on_norm(2 * len(layers))))

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    starts = range(0, len(sequences), cfg.batch_size)
    try:
        with Progress("importance (calibration)", len(starts), unit="batch", enabled=progress) as bar:
            for start in starts:
                batch = sequences[start : start + cfg.batch_size]
                with precision(device, use_bf16(device, cfg.bf16)):
                    # the decoder alone: no score needs the logits, and the LM head is a fifth of the
                    # teacher's FLOPs (49k-token vocabulary)
                    model.model(input_ids=batch.to(device), use_cache=False)
                bar.update(1, tokens=batch.numel())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    return Importance(
        architecture=arch,
        heads=torch.stack([r.result() for r in heads]).cpu(),
        neurons=torch.stack([r.result() for r in neurons]).cpu(),
        channels=torch.stack([r.result() for r in channels]).sum(0).cpu(),
        block_importance=(1 - torch.stack(cosines) / max(tokens[0], 1)).float(),
        meta={"calibration": dataclasses.asdict(cfg), "calibration_sequences": len(sequences)},
    )

"""Activation-based importance of every prunable unit of a teacher (Minitron, arXiv 2407.14679 §2.2).

One calibration pass (forward only, hooks that observe and never change anything) scores
- attention heads: per token, the L2 norm of the head's slice of the `o_proj` input;
- MLP neurons: per token, |input of `down_proj`| (the gated activation);
- embedding channels: per token, |output| of every RMSNorm (`input_layernorm`,
  `post_attention_layernorm`, final `norm`), summed over the norms;
- layers: Block Importance, 1 − mean cosine(layer input, layer output).

Per-token scores are reduced over the sequence, then over the batch (default: L2 over the batch of
the per-sequence mean, the paper's best in its Table 11), always in fp32. Depth scores that need
extra forward passes (loss when layers are removed) live in `minitron/depth.py`; both end up in one
`Importance` value that saves to a folder (safetensors + JSON) and reloads exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from minitron.architecture import Architecture, check_model_type
from minitron.assets import publish, staging_dir
from minitron.distill.core import precision, use_bf16
from minitron.errors import MinitronError

Reduction = Literal["mean", "l2", "var"]
_FORMAT = 1


@dataclass(frozen=True)
class ImportanceConfig:
    """How importance is estimated. Part of the cache key: change a field, get new scores."""

    num_samples: int = 128
    """Calibration sequences for width scores (Minitron used 1024; 128 × 256 tokens fits a laptop)."""
    seq_len: int = 256
    """Tokens per packed calibration sequence."""
    batch_size: int = 4
    """Sequences per forward pass."""
    seq_reduction: Reduction = "mean"
    """How per-token scores are reduced over a sequence."""
    batch_reduction: Reduction = "l2"
    """How per-sequence scores are reduced over the calibration set."""
    depth_samples: int = 4
    """Calibration sequences for the layer-removal losses of `minitron/depth.py`."""
    bf16: bool | None = None
    """bf16 autocast for the forward passes (scores still accumulate in fp32); None: the device's
    default, as for distillation (on where bf16 is native)."""

    def __post_init__(self) -> None:
        for name in ("seq_reduction", "batch_reduction"):
            if getattr(self, name) not in ("mean", "l2", "var"):
                raise MinitronError(f"{name} must be mean, l2 or var, not {getattr(self, name)!r}")
        for name in ("num_samples", "seq_len", "batch_size", "depth_samples"):
            if getattr(self, name) < 1:
                raise MinitronError(f"{name} must be positive")


@dataclass
class Importance:
    """Scores for every prunable unit of one teacher; higher means more important."""

    architecture: Architecture
    """The teacher's architecture the scores refer to."""
    heads: torch.Tensor
    """[layers, query heads]."""
    neurons: torch.Tensor
    """[layers, intermediate_size]."""
    channels: torch.Tensor
    """[hidden_size], summed over all norms."""
    block_importance: torch.Tensor
    """[layers]: 1 − mean cosine(input, output); higher = the layer changes more."""
    layer_loss: torch.Tensor | None = None
    """[layers]: calibration LM loss with that layer alone removed, minus the full model's."""
    block_loss: dict[int, torch.Tensor] = field(default_factory=dict)
    """k → [layers − k + 1]: loss increase when layers start..start+k−1 are removed."""
    block_accuracy: dict[int, torch.Tensor] = field(default_factory=dict)
    """k → [layers − k + 1]: Winogrande accuracy (limited subset) with layers start..start+k−1
    removed (see `minitron.depth_accuracy`); only when depth is chosen by accuracy."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Teacher identity, calibration settings, base loss, versions."""

    def kv_groups(self) -> torch.Tensor:
        """[layers, KV heads]: each group scored by the sum of its query heads' scores."""
        layers, kv = self.architecture.num_hidden_layers, self.architecture.num_key_value_heads
        return self.heads.reshape(layers, kv, -1).sum(-1)

    def save(self, folder: Path) -> None:
        """Write `scores.safetensors` + `importance.json` into `folder`, atomically."""
        tensors = {
            "heads": self.heads,
            "neurons": self.neurons,
            "channels": self.channels,
            "block_importance": self.block_importance,
        }
        if self.layer_loss is not None:
            tensors["layer_loss"] = self.layer_loss
        tensors.update({f"block_loss.{k}": v for k, v in self.block_loss.items()})
        tensors.update({f"block_accuracy.{k}": v for k, v in self.block_accuracy.items()})
        meta = {"format": _FORMAT, "architecture": self.architecture.as_dict(), **self.meta}
        with staging_dir(folder) as tmp:
            save_file(
                {k: v.contiguous().float().cpu() for k, v in tensors.items()}, str(tmp / "scores.safetensors")
            )
            (tmp / "importance.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
            publish(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> Importance:
        try:
            meta = json.loads((folder / "importance.json").read_text())
            tensors = load_file(str(folder / "scores.safetensors"))
        except (OSError, ValueError) as err:
            raise MinitronError(f"cannot read importance from {folder}: {err}") from None
        if meta.pop("format", None) != _FORMAT:
            raise MinitronError(f"importance in {folder} has an old format; delete it to recompute")
        arch = Architecture(**meta.pop("architecture"))
        blocks = {int(k.split(".", 1)[1]): v for k, v in tensors.items() if k.startswith("block_loss.")}
        accuracy = {int(k.split(".", 1)[1]): v for k, v in tensors.items() if k.startswith("block_accuracy.")}
        return cls(
            architecture=arch,
            heads=tensors["heads"],
            neurons=tensors["neurons"],
            channels=tensors["channels"],
            block_importance=tensors["block_importance"],
            layer_loss=tensors.get("layer_loss"),
            block_loss=dict(sorted(blocks.items())),
            block_accuracy=dict(sorted(accuracy.items())),
            meta=meta,
        )


def model_fingerprint(model: Any) -> str:
    """A cheap content hash of a model: its config plus, per tensor, shape and fp64 sums.

    Any real change of weights changes it; hashing every byte of an 8B model would take minutes.
    """
    digest = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            t = tensor.detach().double()
            digest.update(
                f"{name}:{tuple(t.shape)}:{t.sum().item():.10e}:{t.abs().sum().item():.10e}".encode()
            )
    return digest.hexdigest()


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
    try:
        for start in tqdm(
            range(0, len(sequences), cfg.batch_size),
            desc="importance (calibration)",
            disable=not progress,
            unit="batch",
        ):
            with precision(device, use_bf16(device, cfg.bf16)):
                model(input_ids=sequences[start : start + cfg.batch_size].to(device), use_cache=False)
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

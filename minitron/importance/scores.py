"""The importance of every prunable unit of a teacher, as one value that saves and reloads exactly.

Width scores come from one calibration pass (`minitron.importance.width`), depth scores from
layer-removal losses (`depth`) or accuracies (`depth_accuracy`); `cache.importance_for` computes
what is missing and keeps the result per teacher and calibration set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from minitron.atomic import publish, staging_dir
from minitron.data.tokens import SEQ_LEN
from minitron.errors import MinitronError
from minitron.model.architecture import Architecture

Reduction = Literal["mean", "l2", "var"]
_FORMAT = 1


@dataclass(frozen=True)
class ImportanceConfig:
    """How importance is estimated. Part of the cache key: change a field, get new scores."""

    num_samples: int = 128
    """Calibration sequences for width scores (Minitron used 1024; 128 × 256 tokens fits a laptop)."""
    seq_len: int = SEQ_LEN
    """Tokens per packed calibration sequence."""
    batch_size: int = 4
    """Sequences per forward pass."""
    seq_reduction: Reduction = "mean"
    """How per-token scores are reduced over a sequence."""
    batch_reduction: Reduction = "l2"
    """How per-sequence scores are reduced over the calibration set."""
    depth_samples: int = 4
    """Calibration sequences for the layer-removal losses of `minitron.importance.depth` (the chosen
    blocks of the default search were the same on 4 as on 8 sequences; 2 moved one)."""
    depth_shortlist: int = 4
    """Starts evaluated per block size k > 1: those of least angular distance between the block's
    input and output (0: every start; see `minitron.importance.depth`)."""
    bf16: bool | None = None
    """bf16 autocast for the forward passes (scores still accumulate in fp32); None: the device's
    default, as for distillation (on where bf16 is native, see `minitron.runtime`)."""

    def __post_init__(self) -> None:
        for name in ("seq_reduction", "batch_reduction"):
            if getattr(self, name) not in ("mean", "l2", "var"):
                raise MinitronError(f"{name} must be mean, l2 or var, not {getattr(self, name)!r}")
        for name in ("num_samples", "seq_len", "batch_size", "depth_samples"):
            if getattr(self, name) < 1:
                raise MinitronError(f"{name} must be positive")
        if self.depth_shortlist < 0:
            raise MinitronError("depth_shortlist must be 0 (every start) or positive")


def missing_depth(block_sizes: Iterable[int], total: int, importance: Importance | None = None) -> list[int]:
    """The block sizes k, in order, whose removal losses `importance` (None: nothing yet) lacks for a
    teacher of `total` layers: k = 1 is the per-layer losses; k >= total is never estimated (no layer
    would be left)."""
    layers = importance is not None and importance.layer_loss is not None
    blocks = importance.block_loss if importance is not None else {}
    return [
        k for k in sorted(set(block_sizes)) if (k == 1 and not layers) or (1 < k < total and k not in blocks)
    ]


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
        tensors = {name: getattr(self, name) for name in ("heads", "neurons", "channels", "block_importance")}
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

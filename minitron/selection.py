"""Which units of the teacher a pruned architecture keeps, decided from importance scores.

Kept units are the top-scoring ones, returned in their original order (sorted indices), so the
pruned model's weights are sub-matrices of the teacher's. Width decisions are per layer for heads
and neurons, global for embedding channels. Depth is decided by one of:

- `block` (default): drop the contiguous block of k layers whose removal raises the calibration
  loss least (Minitron's later paper, arXiv 2408.11796, found contiguous blocks beat per-layer picks);
- `block_accuracy`: drop the contiguous block of k layers whose removal costs the least Winogrande
  accuracy (a limited subset; the same paper's later finding, see `minitron.depth_accuracy`);
- `layer_loss`: drop the k layers whose individual removal raises the loss least;
- `block_importance`: drop the k layers with the lowest Block Importance (1 − cosine);
- `last`: drop the last k layers (a baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minitron.architecture import DEPTH_METHODS, Architecture
from minitron.errors import MinitronError
from minitron.importance import Importance

__all__ = ["DEPTH_METHODS", "Selection", "choose_layers", "full_selection", "select", "top_sorted"]


@dataclass(frozen=True)
class Selection:
    """Indices (into the teacher) of everything a pruned model keeps."""

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


def top_sorted(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in ascending index order (ties go to the lower index)."""
    order = torch.argsort(-scores.float(), stable=True)
    return order[:k].sort().values


def full_selection(teacher: Architecture, layers: tuple[int, ...]) -> Selection:
    """Keep every unit of the given layers (depth-only pruning)."""
    return Selection(
        layers=layers,
        channels=torch.arange(teacher.hidden_size),
        heads=tuple(torch.arange(teacher.num_attention_heads) for _ in layers),
        kv_heads=tuple(torch.arange(teacher.num_key_value_heads) for _ in layers),
        neurons=tuple(torch.arange(teacher.intermediate_size) for _ in layers),
    )


def choose_layers(importance: Importance, keep: int, method: str = "block") -> tuple[int, ...]:
    """The teacher layers to keep when the student has `keep` layers."""
    total = importance.architecture.num_hidden_layers
    drop = total - keep
    if method not in DEPTH_METHODS:
        raise MinitronError(f"depth method {method!r} is unknown; choose one of {', '.join(DEPTH_METHODS)}")
    if not 0 < keep <= total:
        raise MinitronError(f"cannot keep {keep} of the teacher's {total} layers")
    if drop == 0:
        return tuple(range(total))
    if method == "last":
        dropped = set(range(keep, total))
    elif method == "block":
        losses = importance.block_loss.get(drop) if drop > 1 else importance.layer_loss
        if losses is None:
            raise _missing(
                "per-layer losses" if drop == 1 else f"contiguous-block losses for dropping {drop} layers",
                drop,
            )
        start = int(torch.argmin(losses))  # first (lowest) start wins ties
        dropped = set(range(start, start + drop))
    elif method == "block_accuracy":
        accuracy = importance.block_accuracy.get(drop)
        if accuracy is None:
            raise _missing(f"Winogrande accuracies for dropping {drop} layers", drop, accuracy=True)
        start = int(torch.argmax(accuracy))  # first (lowest) start wins ties
        dropped = set(range(start, start + drop))
    elif method == "layer_loss":
        if importance.layer_loss is None:
            raise _missing("per-layer losses", 1)
        dropped = set(top_sorted(-importance.layer_loss, drop).tolist())
    else:
        dropped = set(top_sorted(-importance.block_importance, drop).tolist())
    return tuple(i for i in range(total) if i not in dropped)


def _missing(what: str, k: int, accuracy: bool = False) -> MinitronError:
    extra = ", depth_accuracy_items=N" if accuracy else ""
    return MinitronError(
        f"importance has no {what}; estimate them with "
        f"minitron.calibrate.importance_for(..., block_sizes=[{k}]{extra})"
    )


def check_prunable(teacher: Architecture, arch: Architecture) -> None:
    """Raise a clear error unless `arch` can be cut out of `teacher`."""
    problems = arch.problems() + arch.pruning_problems(teacher)
    if arch.head_dim != teacher.head_dim:
        problems.append(f"head_dim must stay {teacher.head_dim} (pruning head_dim is not supported)")
    if problems:
        raise MinitronError(f"cannot cut {arch.short()} from {teacher.short()}: {'; '.join(problems)}")


def select(importance: Importance, arch: Architecture, depth: str = "block") -> Selection:
    """Decide every kept unit for `arch` from the teacher's importance."""
    teacher = importance.architecture
    check_prunable(teacher, arch)

    layers = choose_layers(importance, arch.num_hidden_layers, depth)
    group, new_group = teacher.heads_per_group, arch.heads_per_group
    group_scores = importance.kv_groups()
    heads, kv_heads, neurons = [], [], []
    for layer in layers:
        kept_groups = top_sorted(group_scores[layer], arch.num_key_value_heads)
        per_head = importance.heads[layer].reshape(teacher.num_key_value_heads, group)
        kept_heads = [g * group + top_sorted(per_head[g], new_group) for g in kept_groups.tolist()]
        heads.append(torch.cat(kept_heads))
        kv_heads.append(kept_groups)
        neurons.append(top_sorted(importance.neurons[layer], arch.intermediate_size))
    return Selection(
        layers=layers,
        channels=top_sorted(importance.channels, arch.hidden_size),
        heads=tuple(heads),
        kv_heads=tuple(kv_heads),
        neurons=tuple(neurons),
    )

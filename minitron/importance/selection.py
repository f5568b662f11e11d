"""Which units of the teacher a pruned architecture keeps, decided from importance scores.

Kept units are the top-scoring ones, returned in their original order (sorted indices), so the
pruned model's weights are sub-matrices of the teacher's. Width decisions are per layer for heads
and neurons, global for embedding channels. Depth is decided by one `DepthMethod`:

- `block` (default): drop the contiguous block of k layers whose removal raises the calibration
  loss least (Minitron's later paper, arXiv 2408.11796, found contiguous blocks beat per-layer picks);
  with `block=r`, the block of the (r+1)-th least loss among those measured (see `block_starts`);
- `block_accuracy`: drop the contiguous block of k layers whose removal costs the least Winogrande
  accuracy (a limited subset; the same paper's later finding, see `depth_accuracy`);
- `layer_loss`: drop the k layers whose individual removal raises the loss least;
- `block_importance`: drop the k layers with the lowest Block Importance (1 − cosine);
- `last`: drop the last k layers (a baseline).

A depth score that is not finite (a removal whose loss overflowed, a block whose accuracy could
not be measured) is never chosen; a width score that is not finite is an error, since it means the
calibration pass itself went wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from minitron.choice import Choice
from minitron.errors import MinitronError
from minitron.importance.scores import Importance
from minitron.model.architecture import Architecture
from minitron.model.surgery import Selection


class DepthMethod(Choice):
    """How a shallower architecture chooses the teacher layers it drops."""

    BLOCK = "block"
    BLOCK_ACCURACY = "block_accuracy"
    LAYER_LOSS = "layer_loss"
    BLOCK_IMPORTANCE = "block_importance"
    LAST = "last"

    def block_sizes(self, drops: Iterable[int]) -> list[int]:
        """The layer-removal losses (block sizes k) this method needs for students dropping `drops`
        layers; k = 1 means the per-layer losses."""
        return _RULES[self].block_sizes(sorted(set(drops) - {0}))

    @property
    def needs_accuracy(self) -> bool:
        """Whether this method needs the Winogrande accuracy of block removals."""
        return self is DepthMethod.BLOCK_ACCURACY


DEPTH_METHODS = DepthMethod.names()


def top_sorted(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in ascending index order (ties go to the lower index)."""
    order = torch.argsort(-scores.float(), stable=True)
    return order[:k].sort().values


def _best_start(scores: torch.Tensor, lowest: bool, what: str) -> int:
    """Index of the lowest (or highest) finite score, the first one on ties."""
    values = scores.double()
    finite = torch.isfinite(values)
    if not bool(finite.any()):
        raise MinitronError(f"every {what} is NaN or infinite; the depth importance cannot choose a block")
    worst = float("inf") if lowest else float("-inf")
    values = torch.where(finite, values, torch.full_like(values, worst))
    return int(torch.argmin(values) if lowest else torch.argmax(values))


def removal_losses(importance: Importance, drop: int) -> torch.Tensor:
    """The loss increase of removing each contiguous block of `drop` layers, by its first layer
    (NaN: not measured); the per-layer losses when `drop` is 1."""
    losses = importance.block_loss.get(drop) if drop > 1 else importance.layer_loss
    if losses is None:
        raise _missing(
            "per-layer losses" if drop == 1 else f"contiguous-block losses for dropping {drop} layers", drop
        )
    return losses


def block_starts(importance: Importance, drop: int) -> list[int]:
    """First layers of the contiguous blocks of `drop` layers whose removal loss was measured, least
    loss first (ties: the lower start). Starts not measured (NaN) or not finite are left out."""
    values = removal_losses(importance, drop).double()
    order = torch.argsort(torch.nan_to_num(values, nan=float("inf"), posinf=float("inf")), stable=True)
    starts = [int(s) for s in order.tolist() if bool(torch.isfinite(values[s]))]
    if not starts:
        raise MinitronError(
            "every block-removal loss is NaN or infinite; the depth importance cannot choose a block"
        )
    return starts


def _block(importance: Importance, drop: int, block: int = 0) -> set[int]:
    starts = block_starts(importance, drop)
    if not 0 <= block < len(starts):
        raise MinitronError(
            f"block {block} asked for, but only {len(starts)} contiguous blocks of {drop} "
            f"layer{'s' if drop != 1 else ''} have a measured removal loss; choose a block below that "
            "(0 is the least loss)"
        )
    return set(range(starts[block], starts[block] + drop))


def _block_accuracy(importance: Importance, drop: int) -> set[int]:
    accuracy = importance.block_accuracy.get(drop)
    if accuracy is None:
        raise _missing(f"Winogrande accuracies for dropping {drop} layers", drop, accuracy=True)
    start = _best_start(accuracy, lowest=False, what="block-removal accuracy")
    return set(range(start, start + drop))


def _layer_loss(importance: Importance, drop: int) -> set[int]:
    if importance.layer_loss is None:
        raise _missing("per-layer losses", 1)
    losses = torch.nan_to_num(importance.layer_loss.double(), nan=float("inf"))
    return set(top_sorted(-losses, drop).tolist())


def _block_importance(importance: Importance, drop: int) -> set[int]:
    scores = torch.nan_to_num(importance.block_importance.double(), nan=float("inf"))
    return set(top_sorted(-scores, drop).tolist())


def _last(importance: Importance, drop: int) -> set[int]:
    total = importance.architecture.num_hidden_layers
    return set(range(total - drop, total))


@dataclass(frozen=True)
class _Rule:
    dropped: Callable[[Importance, int], set[int]]
    """The teacher layers dropped when `drop` layers go."""
    block_sizes: Callable[[list[int]], list[int]]
    """The removal losses it needs, from the numbers of layers students drop."""


_RULES: dict[DepthMethod, _Rule] = {
    DepthMethod.BLOCK: _Rule(_block, lambda drops: drops),
    # the loss blocks too: the run records them beside the accuracies, for comparison
    DepthMethod.BLOCK_ACCURACY: _Rule(_block_accuracy, lambda drops: drops),
    DepthMethod.LAYER_LOSS: _Rule(_layer_loss, lambda drops: [1] if drops else []),
    DepthMethod.BLOCK_IMPORTANCE: _Rule(_block_importance, lambda drops: []),
    DepthMethod.LAST: _Rule(_last, lambda drops: []),
}


def choose_layers(
    importance: Importance, keep: int, method: str | DepthMethod = "block", block: int = 0
) -> tuple[int, ...]:
    """The teacher layers to keep when the student has `keep` layers. `block` (method `block` only):
    which measured contiguous block to drop, by rank of its removal loss (0: the least)."""
    method = DepthMethod.parse(method, "depth method")
    rule = _RULES[method]
    total = importance.architecture.num_hidden_layers
    if not 0 < keep <= total:
        raise MinitronError(f"cannot keep {keep} of the teacher's {total} layers")
    if block and method is not DepthMethod.BLOCK:
        raise MinitronError(f"block {block} needs the depth method 'block', not {method.value!r}")
    if keep == total:
        return tuple(range(total))
    dropped = _block(importance, total - keep, block) if block else rule.dropped(importance, total - keep)
    return tuple(i for i in range(total) if i not in dropped)


def _missing(what: str, k: int, accuracy: bool = False) -> MinitronError:
    extra = ", depth_accuracy_items=N" if accuracy else ""
    return MinitronError(
        f"importance has no {what}; estimate them with "
        f"minitron.importance.cache.importance_for(..., block_sizes=[{k}]{extra})"
    )


def check_prunable(teacher: Architecture, arch: Architecture) -> None:
    """Raise a clear error unless `arch` can be cut out of `teacher`."""
    problems = arch.cut_problems(teacher)
    if problems:
        raise MinitronError(f"cannot cut {arch.short()} from {teacher.short()}: {'; '.join(problems)}")


def _check_finite(importance: Importance) -> None:
    for name in ("heads", "neurons", "channels"):
        scores = getattr(importance, name)
        if not bool(torch.isfinite(scores).all()):
            raise MinitronError(
                f"the {name} importance holds NaN or infinite scores: the calibration pass overflowed; "
                "estimate it again in fp32"
            )


def select(
    importance: Importance, arch: Architecture, depth: str | DepthMethod = "block", block: int = 0
) -> Selection:
    """Decide every kept unit for `arch` from the teacher's importance (`block`: see `choose_layers`;
    when 0, the architecture's own `layer_block`)."""
    teacher = importance.architecture
    check_prunable(teacher, arch)
    _check_finite(importance)

    layers = choose_layers(importance, arch.num_hidden_layers, depth, block or arch.layer_block)
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

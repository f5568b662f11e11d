"""Depth importance: how much the LM loss rises when layers are removed.

For each layer alone, and for every contiguous block of k layers (for the k a search needs), we
evaluate the teacher with those layers skipped. The skipped model is a *view*: a fresh model of
fewer layers whose parameters are the teacher's own tensors (no copy, nothing of the teacher
changed), so each evaluation costs only the forward pass of the remaining layers.

The loss is measured on calibration sequences, not on the validation split, so that the validation
loss reported for pruned models stays unbiased by this choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from minitron.architecture import Architecture
from minitron.importance import Importance
from minitron.prune import prune_with
from minitron.selection import full_selection
from minitron.validation import validation_loss


def layer_view(model: Any, layers: tuple[int, ...]) -> Any:
    """The teacher restricted to `layers`, sharing its weights (for evaluation only)."""
    teacher = Architecture.from_mapping(model.config)
    arch = Architecture(**{**teacher.as_dict(), "num_hidden_layers": len(layers)})
    return prune_with(model, arch, full_selection(teacher, layers), share=True)


def _loss_without(model: Any, dropped: range, sequences: torch.Tensor, batch_size: int) -> float:
    total = model.config.num_hidden_layers
    view = layer_view(model, tuple(i for i in range(total) if i not in dropped))
    return validation_loss(view, sequences, batch_size=batch_size, progress=False).loss


@torch.no_grad()
def estimate_depth(
    model: Any,
    sequences: torch.Tensor,
    importance: Importance,
    block_sizes: Iterable[int] = (),
    batch_size: int = 4,
    progress: bool = True,
) -> None:
    """Fill `importance.layer_loss` (if missing) and `block_loss[k]` for each requested k (in place)."""
    total = model.config.num_hidden_layers
    if "base_loss" not in importance.meta:
        importance.meta["base_loss"] = validation_loss(
            model, sequences, batch_size=batch_size, progress=False
        ).loss
    base = float(importance.meta["base_loss"])
    jobs: list[tuple[int, int]] = []  # (k, start)
    if importance.layer_loss is None:
        jobs += [(1, start) for start in range(total)]
    for k in sorted(set(block_sizes)):
        if 1 < k < total and k not in importance.block_loss:
            jobs += [(k, start) for start in range(total - k + 1)]
    results: dict[int, list[float]] = {}
    for k, start in tqdm(jobs, desc="importance (depth)", disable=not progress or not jobs, unit="eval"):
        loss = _loss_without(model, range(start, start + k), sequences, batch_size)
        results.setdefault(k, []).append(loss - base)
    for k, losses in results.items():
        if k == 1:
            importance.layer_loss = torch.tensor(losses)
        else:
            importance.block_loss[k] = torch.tensor(losses)
    importance.block_loss = dict(sorted(importance.block_loss.items()))

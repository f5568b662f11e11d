"""Depth importance: how much the LM loss rises when layers are removed.

For each layer alone, and for every contiguous block of k layers (for the k a search needs), we
evaluate the teacher with those layers skipped. The skipped model is a *view*: a fresh model of
fewer layers whose parameters are the teacher's own tensors (no copy, nothing of the teacher
changed), so each evaluation costs only the forward pass of the remaining layers.

Evaluations start from cached hidden states at the removed block (see `_LayerInputs`). The loss is
measured on calibration sequences, not on the validation split, so that the validation
loss reported for pruned models stays unbiased by this choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from minitron.eval.loss import validation_loss
from minitron.importance.scores import Importance
from minitron.model.surgery import layer_view
from minitron.runtime import precision, show_progress, use_bf16


class _LayerInputs:
    """The hidden states entering every layer, for each batch of the depth sequences (one forward).

    Removing layers s .. s+k−1 only changes what happens from layer s on, so each evaluation starts
    from the cached input of layer s and runs the remaining layers: on average half the work of a
    full forward pass.
    """

    def __init__(self, model: Any, sequences: torch.Tensor, batch_size: int) -> None:
        self.model = model
        self.total = model.config.num_hidden_layers
        device = next(model.parameters()).device
        self.batches: list[tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = []
        for start in range(0, len(sequences), batch_size):
            ids = sequences[start : start + batch_size].to(device)
            states = model(input_ids=ids, use_cache=False, output_hidden_states=True).hidden_states
            # states[i] is the input of layer i for i < L (the last entry is the final-norm output)
            self.batches.append((ids, tuple(states[: self.total])))

    def loss_without(self, dropped: range) -> float:
        rest = tuple(range(dropped.stop, self.total))
        view = layer_view(self.model, rest) if rest else None
        total, count = 0.0, 0
        for ids, states in self.batches:
            hidden = states[dropped.start]
            if view is not None:
                logits = view(inputs_embeds=hidden, use_cache=False).logits
            else:  # the dropped block reaches the top: only the final norm and the head remain
                logits = self.model.lm_head(self.model.model.norm(hidden))
            logits = logits[:, :-1].float()
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"
            ).item()
            count += ids[:, 1:].numel()
        return total / count


@torch.no_grad()
def estimate_depth(
    model: Any,
    sequences: torch.Tensor,
    importance: Importance,
    block_sizes: Iterable[int] = (),
    batch_size: int = 4,
    progress: bool = True,
    bf16: bool | None = None,
) -> None:
    """Fill the loss increases for each requested block size k, in place: k = 1 gives the per-layer
    `importance.layer_loss`, k > 1 `importance.block_loss[k]` (sizes already present are kept).

    `bf16`: autocast for the forward passes (None: the device default, see `minitron.runtime`).
    """
    device = next(model.parameters()).device
    with precision(device, use_bf16(device, bf16)):
        _estimate(model, sequences, importance, block_sizes, batch_size, progress)


def _estimate(
    model: Any,
    sequences: torch.Tensor,
    importance: Importance,
    block_sizes: Iterable[int],
    batch_size: int,
    progress: bool,
) -> None:
    total = model.config.num_hidden_layers
    if "base_loss" not in importance.meta:
        importance.meta["base_loss"] = validation_loss(
            model, sequences, batch_size=batch_size, progress=False
        ).loss
    base = float(importance.meta["base_loss"])
    jobs: list[tuple[int, int]] = []  # (k, start)
    sizes = sorted(set(block_sizes))
    if 1 in sizes and importance.layer_loss is None:
        jobs += [(1, start) for start in range(total)]
    for k in sizes:
        if 1 < k < total and k not in importance.block_loss:
            jobs += [(k, start) for start in range(total - k + 1)]
    results: dict[int, list[float]] = {}
    inputs = _LayerInputs(model, sequences, batch_size) if jobs else None
    for k, start in tqdm(
        jobs, desc="importance (depth)", disable=not show_progress(progress) or not jobs, unit="eval"
    ):
        assert inputs is not None
        loss = inputs.loss_without(range(start, start + k))
        results.setdefault(k, []).append(loss - base)
    for k, losses in results.items():
        if k == 1:
            importance.layer_loss = torch.tensor(losses)
        else:
            importance.block_loss[k] = torch.tensor(losses)
    importance.block_loss = dict(sorted(importance.block_loss.items()))

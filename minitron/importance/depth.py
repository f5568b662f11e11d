"""Depth importance: how much the LM loss rises when layers are removed.

For each layer alone, and for every contiguous block of k layers (for the k a search needs), we
evaluate the teacher with those layers skipped. The skipped model is a *view*: a fresh model of
fewer layers whose parameters are the teacher's own tensors (no copy, nothing of the teacher
changed), so each evaluation costs only the forward pass of the remaining layers.

Evaluations start from cached hidden states at the removed block (see `_LayerInputs`). The loss is
measured on calibration sequences, not on the validation split, so that the validation
loss reported for pruned models stays unbiased by this choice.

Not every block is evaluated. For k > 1, the `shortlist` starts whose block changes the hidden state
least, by the angular distance between the block's input and output (Gromov et al.,
arXiv 2403.17887, who choose blocks by that distance alone), are evaluated first; then the
neighbours of the best start so far, until it is a local minimum of the loss. The other starts are
NaN ("not measured"), which the block choice never picks. The distance costs nothing beyond the one
forward pass whose hidden states are cached anyway; for the default search this evaluates 35 blocks
instead of 147 and chooses the same blocks (`bench/importance_speed.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from minitron.importance.scores import Importance, missing_depth
from minitron.model.surgery import layer_view
from minitron.progress import Progress
from minitron.runtime import precision, use_bf16


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
        loss, count = 0.0, 0
        last: list[torch.Tensor] = []
        # the last layer's output is the final norm's input (HF's last hidden state is normed)
        hook = model.model.norm.register_forward_pre_hook(lambda _m, args: last.append(args[0]))
        try:
            for start in range(0, len(sequences), batch_size):
                ids = sequences[start : start + batch_size].to(device)
                out = model(input_ids=ids, use_cache=False, output_hidden_states=True)
                # states[i] is the input of layer i for i < L; states[L] the last layer's output
                self.batches.append((ids, (*out.hidden_states[: self.total], last.pop())))
                loss += _summed_loss(out.logits, ids)
                count += ids[:, 1:].numel()
        finally:
            hook.remove()
        self.base_loss = loss / count
        """The unpruned model's loss on these sequences (from the same forward pass)."""

    def angular_distance(self, k: int) -> torch.Tensor:
        """Mean angle (in units of pi) between each block of k layers' input and output, per start."""
        total, count = torch.zeros(self.total - k + 1, dtype=torch.float64), 0
        for _ids, states in self.batches:
            unit = [F.normalize(h.float(), dim=-1) for h in states]
            for start in range(self.total - k + 1):
                cos = (unit[start] * unit[start + k]).sum(-1).clamp(-1, 1)
                total[start] += (torch.arccos(cos) / torch.pi).double().sum().cpu()
            count += unit[0].shape[0] * unit[0].shape[1]
        return total / count

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
            total += _summed_loss(logits, ids)
            count += ids[:, 1:].numel()
        return total / count


def _summed_loss(logits: torch.Tensor, ids: torch.Tensor) -> float:
    """Summed next-token cross-entropy (fp32) of a batch."""
    logits = logits[:, :-1].float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="sum"
    ).item()


@torch.no_grad()
def estimate_depth(
    model: Any,
    sequences: torch.Tensor,
    importance: Importance,
    block_sizes: Iterable[int] = (),
    batch_size: int = 4,
    progress: bool = True,
    bf16: bool | None = None,
    shortlist: int = 0,
) -> None:
    """Fill the loss increases for each requested block size k, in place: k = 1 gives the per-layer
    `importance.layer_loss`, k > 1 `importance.block_loss[k]` (sizes already present are kept).

    `shortlist` > 0: for k > 1, evaluate only that many starts, those of least angular distance; the
    others are NaN. The per-layer losses are always complete (the `layer_loss` method ranks them all).
    `bf16`: autocast for the forward passes (None: the device default, see `minitron.runtime`).
    """
    device = next(model.parameters()).device
    with precision(device, use_bf16(device, bf16)):
        _estimate(model, sequences, importance, block_sizes, batch_size, progress, shortlist)


def _estimate(
    model: Any,
    sequences: torch.Tensor,
    importance: Importance,
    block_sizes: Iterable[int],
    batch_size: int,
    progress: bool,
    shortlist: int,
) -> None:
    total = model.config.num_hidden_layers
    todo = missing_depth(block_sizes, total, importance)
    if not todo:
        return
    inputs = _LayerInputs(model, sequences, batch_size)
    base = float(importance.meta.setdefault("base_loss", inputs.base_loss))
    results = {k: torch.full((total - k + 1,), float("nan")) for k in todo}
    bar = Progress("importance (depth)", unit="eval", enabled=progress)

    def evaluate(k: int, starts: Iterable[int]) -> None:
        for start in starts:
            results[k][start] = inputs.loss_without(range(start, start + k)) - base
            bar.update(1)

    for k in todo:
        losses = results[k]
        if k == 1 or not 0 < shortlist < len(losses):
            evaluate(k, range(len(losses)))
            continue
        evaluate(k, sorted(torch.argsort(inputs.angular_distance(k), stable=True)[:shortlist].tolist()))
        # then walk downhill: the neighbours of the best start so far, until it is a local minimum
        while True:
            best = int(torch.argmin(torch.nan_to_num(losses, nan=float("inf"))))
            around = [s for s in (best - 1, best + 1) if 0 <= s < len(losses) and losses[s].isnan()]
            if not around:
                break
            evaluate(k, around)
    bar.close()
    for k, losses in results.items():
        if k == 1:
            importance.layer_loss = losses
        else:
            importance.block_loss[k] = losses
    importance.block_loss = dict(sorted(importance.block_loss.items()))

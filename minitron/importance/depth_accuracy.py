"""Depth importance by accuracy: which contiguous block of layers costs the least Winogrande accuracy.

Minitron's later paper (arXiv 2408.11796, the Llama-3.1-Minitron report) found that the block whose
removal costs the least *Winogrande accuracy* is a better depth-pruning choice than the block that
costs the least LM loss. For every start s, the teacher with layers s .. s+k−1 skipped (a
weight-sharing view, see `minitron.model.surgery.layer_view`) is scored by lm-eval's own `winogrande` task
on its first `items` validation items; `Importance.block_accuracy[k]` keeps those accuracies and the
`block_accuracy` depth method drops the block with the highest one.

Cost: (L − k + 1) lm-eval runs of 2 × `items` requests for each k, far more than the loss-based
choice (which reuses cached hidden states); hence an option, not the default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch

from minitron.eval.benchmarks import EvalConfig, evaluate
from minitron.importance.scores import Importance
from minitron.model.surgery import layer_view
from minitron.progress import track

TASK = "winogrande"


@torch.no_grad()
def estimate_depth_accuracy(
    model: Any,
    tokenizer: Any,
    importance: Importance,
    block_sizes: Iterable[int],
    items: int = 200,
    progress: bool = True,
) -> None:
    """Fill `importance.block_accuracy[k]` for each requested block size k, in place (sizes already
    present are kept). Accuracies are on the first `items` Winogrande validation items."""
    total = model.config.num_hidden_layers
    cfg = EvalConfig(tasks=(TASK,), limit=items)
    if importance.meta.get("depth_accuracy", {}).get("items") not in (None, items):
        importance.block_accuracy, importance.meta["depth_accuracy"] = {}, {}  # other subset: redo
    todo = [k for k in sorted(set(block_sizes)) if 0 < k < total and k not in importance.block_accuracy]
    if not todo:
        return
    start_time = time.perf_counter()
    if "base_accuracy" not in importance.meta.get("depth_accuracy", {}):
        base = evaluate(model, tokenizer, cfg, offline=True).headline(TASK)[1]
        importance.meta["depth_accuracy"] = {"task": TASK, "items": items, "base_accuracy": base}
    jobs = [(k, s) for k in todo for s in range(total - k + 1)]
    found: dict[int, list[float]] = {}
    for k, s in track(jobs, "importance (depth by accuracy)", unit="eval", enabled=progress):
        keep = tuple(i for i in range(total) if not s <= i < s + k)
        accuracy = evaluate(layer_view(model, keep), tokenizer, cfg, offline=True).headline(TASK)[1]
        found.setdefault(k, []).append(float("nan") if accuracy is None else accuracy)
    for k, values in found.items():
        importance.block_accuracy[k] = torch.tensor(values)
    importance.block_accuracy = dict(sorted(importance.block_accuracy.items()))
    meta = importance.meta["depth_accuracy"]
    meta["seconds"] = round(float(meta.get("seconds", 0.0)) + time.perf_counter() - start_time, 1)

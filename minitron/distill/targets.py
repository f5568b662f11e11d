"""Teacher targets: computed once, stored on disk, shared by every probe, winner and bench arm.

Probes and retraining read the same seeded training order (`sources.training_windows`): a probe
trains on its first sequences, a retraining on as many as its tokens need. The teacher's output for
those sequences never changes, so it is computed once and stored: the k largest logits per
position (values fp32, indices int32), or the whole distribution when k equals the vocabulary.
With the cache, a probe or a retraining costs only the student's own training. Files are
safetensors, read with memory mapping, so many trial processes on one machine share one copy
through the page cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from minitron.atomic import publish, staging_dir
from minitron.errors import MinitronError
from minitron.progress import Progress
from minitron.runtime import precision


@dataclass
class TeacherTargets:
    """Training sequences in training order and the teacher's top-k logits on them."""

    input_ids: torch.Tensor
    """[sequences, seq_len] token ids, in training order."""
    values: torch.Tensor
    """[sequences, seq_len, k] the teacher's k largest logits per position (fp32)."""
    indices: torch.Tensor
    """[sequences, seq_len, k] their vocabulary indices (int32)."""
    meta: dict[str, Any]
    """Teacher identity, k, seed, token counts."""

    @property
    def k(self) -> int:
        return int(self.values.shape[-1])

    def save(self, folder: Path) -> None:
        with staging_dir(folder) as tmp:
            save_file(
                {
                    "input_ids": self.input_ids.int(),
                    "values": self.values.float(),
                    "indices": self.indices.int(),
                },
                str(tmp / "targets.safetensors"),
            )
            (tmp / "targets.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))
            publish(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> TeacherTargets:
        try:
            meta = json.loads((folder / "targets.json").read_text())
            with safe_open(str(folder / "targets.safetensors"), framework="pt") as f:
                tensors = {name: f.get_tensor(name) for name in ("input_ids", "values", "indices")}
        except (OSError, ValueError) as err:
            raise MinitronError(f"cannot read teacher targets from {folder}: {err}") from None
        return cls(tensors["input_ids"].long(), tensors["values"], tensors["indices"], meta)


@torch.no_grad()
def compute_targets(
    teacher: Any,
    input_ids: torch.Tensor,
    k: int,
    batch_size: int = 4,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
    bf16: bool = False,
) -> TeacherTargets:
    """Run the teacher once over `input_ids` and keep its top-k logits per position (the forward
    pass under bf16 autocast with `bf16`, as training runs; the logits are kept in fp32)."""
    vocab = teacher.config.vocab_size
    if not 0 < k <= vocab:
        raise MinitronError(f"top-k must be between 1 and the vocabulary size {vocab}, got {k}")
    device = next(teacher.parameters()).device
    values, indices = [], []
    starts = range(0, len(input_ids), batch_size)
    bar = Progress("teacher targets", len(starts), unit="batch", enabled=progress)
    for start in starts:
        batch = input_ids[start : start + batch_size]
        with precision(device, bf16):
            out = teacher(input_ids=batch.to(device), use_cache=False)
        # top-k first, then fp32: under autocast the logits are bf16 already, and a copy of all of
        # them in fp32 (4 x 256 x 49k here) would cost more than the top-k itself
        logits = out.logits
        top = logits.topk(k, dim=-1, sorted=False) if k < vocab else (logits, None)
        values.append(top[0].float().cpu())
        chosen = top[1] if top[1] is not None else torch.arange(vocab, device=logits.device).expand_as(logits)
        indices.append(chosen.to(torch.int32).cpu())
        bar.update(1, tokens=batch.numel())
    bar.close()
    record = {
        "k": k,
        "sequences": len(input_ids),
        "seq_len": int(input_ids.shape[1]),
        "bf16": bf16,
        **(meta or {}),
    }
    return TeacherTargets(input_ids.clone(), torch.cat(values), torch.cat(indices), record)

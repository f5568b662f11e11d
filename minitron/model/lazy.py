"""Cut a student straight from a teacher's safetensors checkpoint, reading only what it keeps.

    cut_from_checkpoint(folder, arch, selection) -> PreTrainedModel

Why: a search trial needs its student, not its teacher. Loading an 8B teacher to slice a 4B student
out of it costs 16 GB (bf16) per trial on top of the student; reading the kept rows of each tensor
from the memory-mapped safetensors files costs at most one tensor's columns beyond the student.
Rows are read as contiguous runs (`get_slice`), so a kept attention head or run of MLP neurons is
one read; columns (hidden channels) are cut from those rows in memory. The result is the same
model, weight for weight, as `surgery.cut` on the loaded teacher (`tests/test_lazy_prune.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from minitron.errors import MinitronError
from minitron.model.architecture import Architecture, build_config
from minitron.model.surgery import Selection, build_model, keeps_everything, slice_tensors

_INDEX = "model.safetensors.index.json"


def _runs(rows: torch.Tensor) -> list[tuple[int, int]]:
    """`rows` as half-open runs of consecutive indices: [3, 4, 5, 9] -> [(3, 6), (9, 10)]."""
    values = rows.tolist()
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value:
            runs[-1] = (runs[-1][0], value + 1)
        else:
            runs.append((value, value + 1))
    return runs


class CheckpointTensors:
    """The tensors of a safetensors checkpoint folder (one file or a sharded index), memory-mapped
    and read by rows on demand."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors import safe_open

        self.folder = Path(folder)
        index = self.folder / _INDEX
        if index.is_file():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        else:
            files = sorted(p.name for p in self.folder.glob("*.safetensors"))
        if not files:
            raise MinitronError(f"{self.folder} holds no safetensors weights to cut a student from")
        self._handles = {name: safe_open(str(self.folder / name), framework="pt") for name in files}
        self._file = {key: name for name, handle in self._handles.items() for key in handle.keys()}  # noqa: SIM118 (a file handle)

    def keys(self) -> list[str]:
        return list(self._file)

    def read_rows(self, key: str, rows: torch.Tensor | None) -> torch.Tensor:
        handle = self._handles[self._file[key]]
        if rows is None:
            return handle.get_tensor(key)
        part = handle.get_slice(key)
        if keeps_everything(rows, part.get_shape()[0]):
            return handle.get_tensor(key)
        return torch.cat([part[start:stop] for start, stop in _runs(rows)])


def cut_from_checkpoint(
    folder: str | Path,
    arch: Architecture,
    selection: Selection,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> Any:
    """A fresh model of `arch` holding `selection` of the checkpoint's weights, read from disk
    (in the checkpoint's dtype unless `dtype` is given)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder))
    tensors = CheckpointTensors(folder)
    with torch.no_grad():
        state = slice_tensors(tensors.keys(), tensors.read_rows, selection, arch.head_dim)
        if "lm_head.weight" not in state and config.tie_word_embeddings:
            state["lm_head.weight"] = state["model.embed_tokens.weight"]  # tied: saved once
        dtype = dtype or state["model.embed_tokens.weight"].dtype
        state = {k: v.to(dtype) for k, v in state.items()}
        return build_model(
            build_config(config, arch, layers=selection.layers), state, dtype, torch.device(device)
        )

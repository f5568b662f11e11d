"""`pruning.json`, the record `prune` writes beside a pruned checkpoint, as a typed value.

`minitron.api.prune` writes it (`write_pruning`, through `minitron.codec`); `minitron.api.distill`
reads the student's back (`read_pruning`, strictly) for its kept teacher layers (the hidden-state
loss maps each student layer to the teacher layer it was cut from) and copies the rest into
`provenance.json`. The layout is the one `prune` has always written, so checkpoints pruned before
read the same; files from before `--block` (2026-12-06) lack `block` and `measured_blocks` and read
as block 0, none measured. (`minitron.export.gguf_file` copies the file into GGUF metadata as a
plain mapping.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minitron import codec
from minitron.errors import MinitronError
from minitron.importance.scores import Importance
from minitron.importance.selection import DepthMethod, block_starts, removal_losses
from minitron.model.architecture import Architecture
from minitron.model.surgery import Selection

#: The file's name, beside the checkpoint's `config.json`.
PRUNING_FILE = "pruning.json"


@dataclass(frozen=True)
class MeasuredBlock:
    """One contiguous block of teacher layers whose removal loss the depth importance measured."""

    layers: tuple[int, int]
    """First and last teacher layer of the block."""
    loss_increase: float
    """Calibration loss with the block removed, minus the full teacher's."""


@dataclass(frozen=True)
class KeptUnits:
    """What the student keeps of the teacher, as indices into the teacher (`Selection.summary()`)."""

    layers: tuple[int, ...]
    """Kept decoder layers, ascending: student layer i is teacher layer `layers[i]`."""
    channels: tuple[int, ...]
    """Kept hidden channels."""
    heads: tuple[tuple[int, ...], ...]
    """Per kept layer: kept query heads."""
    kv_heads: tuple[tuple[int, ...], ...]
    """Per kept layer: kept key/value heads."""

    @classmethod
    def of(cls, selection: Selection) -> KeptUnits:
        """What `selection` keeps, as the file records it (its MLP neurons are not recorded)."""
        return cls(
            layers=tuple(int(layer) for layer in selection.layers),
            channels=tuple(selection.channels.tolist()),
            heads=tuple(tuple(h.tolist()) for h in selection.heads),
            kv_heads=tuple(tuple(h.tolist()) for h in selection.kv_heads),
        )


@dataclass(frozen=True)
class ZeroShotValidation:
    """The pruned model's validation loss before any training."""

    loss: float
    """Nats per token."""
    perplexity: float
    tokens: int
    """Predicted tokens it averages over."""


@dataclass(frozen=True)
class PruningRecord:
    """How a student was cut out of its teacher: `pruning.json`, key for key."""

    teacher: str
    """The teacher as given (embedded name, folder, .gguf file or hub id)."""
    teacher_architecture: Architecture
    architecture: Architecture
    """The student's shape."""
    params: int
    depth_method: DepthMethod
    """How the dropped layers were chosen."""
    block: int
    """With depth `block`: the rank of the dropped block by its measured removal loss (0: least)."""
    measured_blocks: tuple[MeasuredBlock, ...] | None
    """With depth `block` and layers dropped: the measured blocks of the dropped size, least loss
    first (what `block` ranks); else None."""
    calibration: dict[str, Any] | None
    """The importance's calibration settings (`ImportanceConfig`, as its cache recorded them)."""
    data: str
    """The `--data` the importance was calibrated and the zero-shot loss measured on."""
    selection: KeptUnits
    zero_shot_validation: ZeroShotValidation | None
    """None when skipped (`eval_sequences=0`)."""
    seconds: float
    """Wall time of the pruning, loading the teacher included."""


def measured_blocks(
    importance: Importance, teacher: Architecture, arch: Architecture, depth: DepthMethod
) -> tuple[MeasuredBlock, ...] | None:
    """With depth `block` and layers dropped: the measured contiguous blocks of the dropped size,
    least loss first (what `block` ranks); else None."""
    drop = teacher.num_hidden_layers - arch.num_hidden_layers
    if depth is not DepthMethod.BLOCK or drop == 0:
        return None
    losses = removal_losses(importance, drop)
    return tuple(
        MeasuredBlock(layers=(s, s + drop - 1), loss_increase=round(float(losses[s]), 4))
        for s in block_starts(importance, drop)
    )


def write_pruning(folder: Path, record: PruningRecord) -> None:
    """Write `record` as `folder/pruning.json` (into a folder being staged: not atomic itself)."""
    (folder / PRUNING_FILE).write_text(codec.dumps(record, indent=2))


def read_pruning(folder: Path) -> PruningRecord | None:
    """The `pruning.json` of a checkpoint folder, strictly (one line naming the file and the key
    when it is not one); None when the folder has none (a checkpoint `prune` did not make)."""
    path = folder / PRUNING_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MinitronError(f"{path}: cannot be read ({err})") from None
    if isinstance(data, dict):  # written before --block existed: block 0, none measured
        data = {"block": 0, "measured_blocks": None, **data}
    return codec.decode(PruningRecord, data, codec.Source(str(path)))

"""Pruning: cut an architecture out of a teacher by importance, as a fresh Hugging Face model.

    prune(teacher_model, arch, importance) -> PreTrainedModel

`minitron.importance.selection` decides which heads, neurons, channels and layers to keep;
`minitron.model.surgery` slices the teacher's weights into a model built from a new config. The
command `python -m minitron prune` wraps this (see `minitron.commands.prune`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minitron.errors import MinitronError
from minitron.importance.scores import Importance
from minitron.importance.selection import DepthMethod, select
from minitron.model.architecture import Architecture, check_model_type
from minitron.model.surgery import cut


def prune(
    teacher: Any,
    arch: Architecture,
    importance: Importance,
    depth: str | DepthMethod = "block",
    block: int = 0,
) -> Any:
    """A new model of the teacher's family with `arch`'s sizes and the most important units.

    `teacher` is a causal LM of a supported family (Llama incl. SmolLM2/Llama-3.x, Mistral, Qwen2);
    `importance` must have been estimated on it. `depth` picks the layers to drop (see
    `minitron.importance.selection`); `block`, with depth `block`, which measured contiguous block of
    layers to drop by rank of its removal loss (0: the least). The teacher is only read.
    """
    _check_teacher(teacher.config, importance)
    return cut(teacher, arch, select(importance, arch, depth, block))


def _check_teacher(config: Any, importance: Importance) -> None:
    """A supported family, and the teacher the importance was estimated on."""
    check_model_type(config.get("model_type") if isinstance(config, dict) else config.model_type)
    teacher_arch = Architecture.from_mapping(config)
    if importance.architecture != teacher_arch:
        raise MinitronError(
            f"importance was estimated on {importance.architecture.short()}, "
            f"not on this teacher ({teacher_arch.short()})"
        )


def prune_from_checkpoint(
    folder: str | Path,
    arch: Architecture,
    importance: Importance,
    depth: str | DepthMethod = "block",
    dtype: Any = None,
    device: Any = "cpu",
    block: int = 0,
) -> Any:
    """`prune` without loading the teacher: the student is read slice by slice from the teacher's
    safetensors checkpoint in `folder` (`minitron.model.lazy`), weight for weight the same model."""
    from minitron.model.lazy import cut_from_checkpoint
    from minitron.model.teacher import local_config

    config = local_config(str(folder))
    if config is None:
        raise MinitronError(f"{folder} is not a checkpoint folder (no config.json)")
    _check_teacher(config, importance)
    return cut_from_checkpoint(
        folder, arch, select(importance, arch, depth, block), dtype=dtype, device=device
    )

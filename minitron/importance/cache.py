"""Importance computed once per teacher + calibration set, cached, reused by every trial.

    importance_for(model, tokens, cfg, block_sizes=[...]) -> Importance

`block_sizes` lists the numbers of layers k whose contiguous-block removal losses are needed (k = 1:
the per-layer losses); a search asks for every k its candidates drop.

The cache key is the teacher's content fingerprint, the tokenized corpus' key and the calibration
settings; the scores live in `<cache>/importance/<key>/` (safetensors + JSON). Contiguous-block
depth losses are added per block size k when first asked for, and the folder is rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minitron.data.assets import cache_dir
from minitron.data.tokens import TokenizedCorpus, pack
from minitron.errors import MinitronError
from minitron.faults import kill_point
from minitron.importance.depth import estimate_depth
from minitron.importance.scores import Importance, ImportanceConfig, missing_depth
from minitron.importance.width import estimate_width_importance
from minitron.model.fingerprint import model_fingerprint
from minitron.runtime import use_bf16


def calibration_sequences(tokens: TokenizedCorpus, cfg: ImportanceConfig) -> Any:
    """The first `cfg.num_samples` packed sequences of the calibration split (an error if too few)."""
    available = tokens.calibration.size // cfg.seq_len
    if available < max(cfg.num_samples, cfg.depth_samples):
        needed = max(cfg.num_samples, cfg.depth_samples) * cfg.seq_len
        raise MinitronError(
            f"the calibration split holds {tokens.calibration.size:,} tokens ({available} sequences of "
            f"{cfg.seq_len}); {needed:,} are needed for {cfg.num_samples} calibration samples: use fewer "
            "samples or a larger corpus"
        )
    return pack(tokens.calibration, cfg.seq_len, cfg.num_samples)


def importance_dir(
    fingerprint: str, tokens: TokenizedCorpus, cfg: ImportanceConfig, weights: str = "float32"
) -> Path:
    """Cache folder for the importance of the teacher with this `model_fingerprint`, computed with
    its weights in `weights` (bf16 weights on a GPU give slightly other scores than fp32 ones)."""
    identity: dict[str, Any] = {
        "teacher": fingerprint,
        "tokens": tokens.key,
        "calibration": dataclasses.asdict(cfg),
    }
    if weights != "float32":  # fp32 keys stay what they were, so existing caches stay valid
        identity["weights"] = weights
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "importance" / key


def _resolved(model: Any, cfg: ImportanceConfig | None) -> ImportanceConfig:
    """The config with the precision actually used (the cache key holds it, not "the default")."""
    cfg = cfg or ImportanceConfig()
    return dataclasses.replace(cfg, bf16=use_bf16(next(model.parameters()).device, cfg.bf16))


def _folder(model: Any, fingerprint: str, tokens: TokenizedCorpus, cfg: ImportanceConfig) -> Path:
    weights = str(next(model.parameters()).dtype).replace("torch.", "")
    return importance_dir(fingerprint, tokens, cfg, weights)


def importance_missing(
    model: Any, tokens: TokenizedCorpus, cfg: ImportanceConfig | None, block_sizes: Iterable[int]
) -> tuple[bool, list[int]]:
    """What `importance_for` would compute: (the width scores?, the block sizes of depth losses)."""
    cfg = _resolved(model, cfg)
    folder = _folder(model, model_fingerprint(model), tokens, cfg)
    total = int(model.config.num_hidden_layers)
    if not (folder / "importance.json").exists():
        return True, missing_depth(block_sizes, total)
    return False, missing_depth(block_sizes, total, Importance.load(folder))


def importance_for(
    model: Any,
    tokens: TokenizedCorpus,
    cfg: ImportanceConfig | None = None,
    block_sizes: Iterable[int] = (),
    name: str = "",
    progress: bool = True,
    folder: Path | None = None,
    tokenizer: Any = None,
    depth_accuracy_items: int = 0,
) -> Importance:
    """Load the teacher's importance from the cache, computing (and saving) whatever is missing.

    With `depth_accuracy_items` > 0 (and the teacher's `tokenizer`), the Winogrande accuracy of every
    contiguous-block removal in `block_sizes` is estimated too, on that many items (see
    `minitron.importance.depth_accuracy`), for the `block_accuracy` depth method.
    """
    cfg = _resolved(model, cfg)
    fingerprint = model_fingerprint(model)
    folder = folder or _folder(model, fingerprint, tokens, cfg)
    block_sizes = sorted(set(block_sizes))
    sequences = None
    if (folder / "importance.json").exists():
        importance = Importance.load(folder)
        changed = False
        if progress:
            print(f"[importance] width scores read from the cache {folder}", flush=True)
    else:
        sequences = calibration_sequences(tokens, cfg)
        start = time.perf_counter()
        importance = estimate_width_importance(model, sequences, cfg, progress=progress)
        importance.meta.update(
            teacher=name,
            teacher_fingerprint=fingerprint,
            tokens=tokens.key,
            width_seconds=round(time.perf_counter() - start, 1),
        )
        changed = True
        if progress:
            print(f"[importance] width scores computed in {importance.meta['width_seconds']} s", flush=True)
        kill_point("importance")  # test hook: a crash here must leave no importance behind
    missing = missing_depth(block_sizes, importance.architecture.num_hidden_layers, importance)
    if missing:
        if sequences is None:
            sequences = calibration_sequences(tokens, cfg)
        start = time.perf_counter()
        estimate_depth(
            model,
            sequences[: cfg.depth_samples],
            importance,
            missing,
            batch_size=cfg.batch_size,
            progress=progress,
            bf16=cfg.bf16,
            shortlist=cfg.depth_shortlist,
        )
        seconds = time.perf_counter() - start
        importance.meta["depth_seconds"] = round(
            float(importance.meta.get("depth_seconds", 0.0)) + seconds, 1
        )
        changed = True
        if progress:
            print(
                f"[importance] removal losses of {missing}-layer blocks computed in {seconds:.1f} s",
                flush=True,
            )
    if depth_accuracy_items > 0:
        changed |= _depth_accuracy(model, tokenizer, importance, block_sizes, depth_accuracy_items, progress)
    if changed:
        importance.save(folder)
    return importance


def _depth_accuracy(
    model: Any, tokenizer: Any, importance: Importance, block_sizes: list[int], items: int, progress: bool
) -> bool:
    """Add the missing block accuracies; whether anything was computed."""
    from minitron.importance.depth_accuracy import estimate_depth_accuracy

    if tokenizer is None:
        raise MinitronError("depth importance by accuracy needs the teacher's tokenizer")
    before = (set(importance.block_accuracy), importance.meta.get("depth_accuracy", {}).get("items"))
    estimate_depth_accuracy(model, tokenizer, importance, block_sizes, items=items, progress=progress)
    return (set(importance.block_accuracy), importance.meta.get("depth_accuracy", {}).get("items")) != before

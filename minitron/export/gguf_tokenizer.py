"""The tokenizer of a GGUF: llama.cpp's `tokenizer.ggml.*` keys and the chat template.

Two sources. When the teacher came as a GGUF (the embedded SmolLM2 does), its own keys are copied
as they are, after checking that its tokens are the checkpoint's: that file already says what
llama.cpp needs, the pre-tokenizer's name included. Otherwise they are built from the checkpoint's
`tokenizer.json`, for byte-level BPE tokenizers only (Llama 3, SmolLM, Mistral-NeMo's tekken).
llama.cpp names its pre-tokenizers by hashing what a tokenizer makes of a test text; we do not carry
that table, only the names of the families above, and refuse others in one line (pass a GGUF of the
teacher with `--tokenizer-gguf`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGUFReader, GGUFValueType

from minitron.errors import MinitronError

#: llama.cpp's token types (`gguf.TokenType`): what a token is for.
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4


@dataclass
class TokenizerKeys:
    """GGUF key -> (value, type, element type of an array)."""

    values: dict[str, tuple[Any, GGUFValueType, GGUFValueType | None]] = field(default_factory=dict)
    source: str = ""
    """Where they came from, for the file's provenance and the model card."""

    def add(self, key: str, value: Any, kind: GGUFValueType, sub: GGUFValueType | None = None) -> None:
        self.values[key] = (value, kind, sub)


def from_gguf(path: Path, tokens: list[str] | None) -> TokenizerKeys:
    """The `tokenizer.*` keys of a GGUF file, checked against the checkpoint's tokens (by id) unless
    `tokens` is None (the GGUF is the model's own)."""
    path = Path(path).resolve()
    stat = path.stat()
    keys = TokenizerKeys(
        dict(_read_keys(path, stat.st_size, stat.st_mtime_ns)), f"the teacher's GGUF {path.name}"
    )
    theirs: list[str] = (
        list(keys.values["tokenizer.ggml.tokens"][0]) if "tokenizer.ggml.tokens" in keys.values else []
    )
    if tokens is not None and list(theirs) != tokens:
        raise MinitronError(
            f"the tokens in {path.name} are not the checkpoint's ({len(theirs)} against {len(tokens)}); "
            "pass the teacher's own GGUF with --tokenizer-gguf"
        )
    return keys


@functools.lru_cache(maxsize=4)
def _read_keys(
    path: Path, size: int, mtime_ns: int
) -> dict[str, tuple[Any, GGUFValueType, GGUFValueType | None]]:
    """The file's `tokenizer.*` keys, read once per file version: the `gguf` reader takes seconds
    over 50k-entry string arrays, and a run exports several winners and quantizations."""
    try:
        reader = GGUFReader(path)
    except (OSError, ValueError) as err:
        raise MinitronError(f"cannot read the tokenizer GGUF {path}: {err}") from None
    values = {}
    for name, entry in reader.fields.items():
        if name.startswith("tokenizer."):
            kind = GGUFValueType(entry.types[0])
            sub = GGUFValueType(entry.types[-1]) if kind == GGUFValueType.ARRAY else None
            values[name] = (entry.contents(), kind, sub)
    return values


def checkpoint_tokens(folder: Path) -> list[str]:
    """The checkpoint's tokens by id (from `tokenizer.json`, added tokens included)."""
    data = _tokenizer_json(folder)
    vocab: dict[str, int] = dict(data["model"].get("vocab") or {})
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [""] * (max(vocab.values()) + 1 if vocab else 0)
    for text, index in vocab.items():
        tokens[index] = text
    return tokens


def from_tokenizer_json(folder: Path, vocab_size: int) -> TokenizerKeys:
    """Keys built from a byte-level BPE `tokenizer.json` with a known llama.cpp pre-tokenizer."""
    from transformers import AutoTokenizer

    data = _tokenizer_json(folder)
    if data["model"].get("type") != "BPE":
        raise MinitronError(
            f"cannot export a {data['model'].get('type')} tokenizer to GGUF yet; pass a GGUF of the "
            "teacher with --tokenizer-gguf"
        )
    tokens = checkpoint_tokens(folder)
    pre = _pre_tokenizer(tokens)
    special = {a["id"]: bool(a.get("special")) for a in data.get("added_tokens", [])}
    types = [NORMAL] * len(tokens)
    for index, is_special in special.items():
        types[index] = CONTROL if is_special else USER_DEFINED
    # a model whose embedding has more rows than the tokenizer has tokens: llama.cpp wants one per row
    for index in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{index}]")
        types.append(USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"].get("merges", [])]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    keys = TokenizerKeys(source="the checkpoint's tokenizer.json")
    keys.add("tokenizer.ggml.model", "gpt2", GGUFValueType.STRING)
    keys.add("tokenizer.ggml.pre", pre, GGUFValueType.STRING)
    keys.add(
        "tokenizer.ggml.add_space_prefix", False, GGUFValueType.BOOL
    )  # byte-level BPE marks spaces itself
    keys.add("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, GGUFValueType.STRING)
    keys.add("tokenizer.ggml.token_type", types, GGUFValueType.ARRAY, GGUFValueType.INT32)
    keys.add("tokenizer.ggml.merges", merges, GGUFValueType.ARRAY, GGUFValueType.STRING)
    for name in ("bos", "eos", "unk", "pad"):
        index = getattr(tokenizer, f"{name}_token_id", None)
        if index is not None:
            key = {"unk": "unknown", "pad": "padding"}.get(name, name)
            keys.add(f"tokenizer.ggml.{key}_token_id", int(index), GGUFValueType.UINT32)
    first = tokenizer("a").input_ids
    keys.add(
        "tokenizer.ggml.add_bos_token", bool(first) and first[0] == tokenizer.bos_token_id, GGUFValueType.BOOL
    )
    if tokenizer.chat_template:
        keys.add("tokenizer.chat_template", tokenizer.chat_template, GGUFValueType.STRING)
    return keys


def _pre_tokenizer(tokens: list[str]) -> str:
    """llama.cpp's name for the pre-tokenizer of the families we know (see the module's docstring)."""
    if len(tokens) >= 128256 and "<|begin_of_text|>" in tokens[128000:128002]:
        return "llama-bpe"  # Llama 3, 3.1, 3.2
    if len(tokens) == 49152 and tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
        return "smollm"
    if len(tokens) == 131072 and tokens[:3] == ["<unk>", "<s>", "</s>"]:
        return "tekken"  # Mistral-NeMo
    raise MinitronError(
        "cannot tell which llama.cpp pre-tokenizer this tokenizer needs; pass a GGUF of the teacher "
        "with --tokenizer-gguf"
    )


def _tokenizer_json(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise MinitronError(f"{folder} has no tokenizer.json to export")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MinitronError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise MinitronError(f"{path} is not a tokenizers file")
    return data

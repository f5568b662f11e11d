"""Decoder shapes and their exact parameter counts.

A teacher is split into two values:

- `Family`: what pruning never changes (model type, vocabulary, tied embeddings, which projections
  carry biases);
- `Architecture`: the six prunable sizes, named as Hugging Face names them, and for a shallower
  shape which measured block of the teacher's layers it drops (`layer_block`, not a config field).

`count_params(family, arch)` is exact for the Llama-style decoders we support (Llama incl. SmolLM2
and Llama-3.x, Mistral, Qwen2): it equals `sum(p.numel() for p in model.parameters())` of the model
transformers builds from `build_config(...)`, which the tests check on tiny models and, on the meta
device, on the published 8B/12B configurations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minitron.errors import MinitronError

#: Model types we can count, slice and rebuild (their bias layouts are in `Family`).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")

#: Config keys that describe a checkpoint's provenance or quantization, never a fresh model.
_NON_ARCHITECTURE_KEYS = (
    "quantization_config",
    "_model_name_or_path",
    "_name_or_path",
    "transformers_version",
    "architectures",
    "dtype",
    "torch_dtype",
)

ARCH_FIELDS = (
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
)


_REQUIRED = object()


def _field(values: Any, key: str, default: Any = _REQUIRED) -> Any:
    """`values[key]` for a dict (a config.json), `values.key` for a config object."""
    value = values.get(key) if isinstance(values, dict) else getattr(values, key, None)
    if value is None:
        if default is _REQUIRED:
            raise MinitronError(f"the model config has no {key}; is it a decoder-only language model?")
        return default
    return value


def check_model_type(model_type: Any) -> None:
    """Raise a clear error for a model family we cannot count, slice or rebuild."""
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise MinitronError(
            f"model type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )


@dataclass(frozen=True, order=True)
class Architecture:
    """The prunable shape of a Llama-style decoder, with Hugging Face's field names."""

    num_hidden_layers: int
    """Number of decoder blocks (depth)."""
    hidden_size: int
    """Width of the residual stream, embeddings and norms."""
    intermediate_size: int
    """Width of the gated MLP (gate/up output, down input)."""
    num_attention_heads: int
    """Query heads per layer; a multiple of `num_key_value_heads`."""
    num_key_value_heads: int
    """Key/value heads (GQA groups) per layer."""
    head_dim: int
    """Width of one attention head; set explicitly in every config we build."""
    layer_block: int = 0
    """Which contiguous block of the teacher's layers a shallower shape drops, by the rank of its
    measured removal loss (0: the least, Minitron's choice). Not a Hugging Face config field: it
    picks which layers are kept, not a size, and two shapes that differ only here build the same
    config. Always 0 at the teacher's depth."""

    def as_dict(self) -> dict[str, int]:
        """The six Hugging Face config fields (what a config is built from)."""
        return {name: getattr(self, name) for name in ARCH_FIELDS}

    def as_key(self) -> dict[str, int]:
        """Everything that tells two candidates apart: the six fields, and `layer_block` when it is
        not 0 (so records and study points of runs without layer blocks read as before)."""
        return {**self.as_dict(), **({"layer_block": self.layer_block} if self.layer_block else {})}

    def to_json(self) -> dict[str, int]:
        """As records save it (`minitron.codec`): its key."""
        return self.as_key()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Architecture:
        """As records save it: the six fields and `layer_block` when not 0, nothing else."""
        unknown = sorted(set(data) - {*ARCH_FIELDS, "layer_block"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]}")
        return cls(**data)

    @classmethod
    def from_mapping(cls, values: Any) -> Architecture:
        """Read the six fields from a config object or a dict (head_dim defaults as HF does), and
        `layer_block` where a dict of `as_key` has it."""
        hidden, heads = int(_field(values, "hidden_size")), int(_field(values, "num_attention_heads"))
        return cls(
            num_hidden_layers=int(_field(values, "num_hidden_layers")),
            hidden_size=hidden,
            intermediate_size=int(_field(values, "intermediate_size")),
            num_attention_heads=heads,
            num_key_value_heads=int(_field(values, "num_key_value_heads", heads)),
            head_dim=int(_field(values, "head_dim", hidden // heads)),
            layer_block=int(values.get("layer_block", 0)) if isinstance(values, dict) else 0,
        )

    def problems(self) -> list[str]:
        """Why transformers (or GQA) would reject this shape; empty when it is buildable."""
        out = [f"{name} must be a positive integer" for name, v in self.as_dict().items() if v < 1]
        if self.layer_block < 0:
            out.append(f"layer_block must be 0 or more, not {self.layer_block}")
        if out:
            return out
        if self.num_attention_heads % self.num_key_value_heads:
            out.append(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        # LlamaConfig rejects this even with an explicit head_dim; we apply the rule to every family
        # so that one candidate set is valid everywhere.
        if self.hidden_size % self.num_attention_heads:
            out.append(
                f"hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        return out

    def pruning_problems(self, teacher: Architecture) -> list[str]:
        """Why this shape cannot be cut out of `teacher` (pruning only removes units)."""
        out = [
            f"{name} {value} exceeds the teacher's {getattr(teacher, name)}"
            for name, value in self.as_dict().items()
            if value > getattr(teacher, name)
        ]
        group, teacher_group = self.heads_per_group, teacher.heads_per_group
        if self.num_key_value_heads <= teacher.num_key_value_heads and group > teacher_group:
            out.append(
                f"{self.num_attention_heads} query heads over {self.num_key_value_heads} KV heads is "
                f"{group} per group, more than the teacher's {teacher_group}"
            )
        if self.head_dim < teacher.head_dim:
            out.append(f"head_dim must stay {teacher.head_dim} (pruning head_dim is not supported)")
        # a block of k dropped layers can start at any of L - k + 1 layers (= the kept count + 1)
        if self.layer_block and self.num_hidden_layers >= teacher.num_hidden_layers:
            out.append(f"layer_block {self.layer_block} needs fewer layers than the teacher's")
        elif self.layer_block > self.num_hidden_layers:
            out.append(
                f"layer_block {self.layer_block}: only {self.num_hidden_layers + 1} blocks of "
                f"{teacher.num_hidden_layers - self.num_hidden_layers} layers exist"
            )
        return out

    def cut_problems(self, teacher: Architecture) -> list[str]:
        """Why this shape cannot be built and cut out of `teacher`; empty when it can.

        The one feasibility rule: the dry run's candidates, the sampler's constraint, the space's
        checks and `prune` all ask this, so none of them accepts a shape another refuses.
        """
        return self.problems() + self.pruning_problems(teacher)

    @property
    def heads_per_group(self) -> int:
        """Query heads sharing one KV head (rounded up when the shape is not buildable)."""
        return -(-self.num_attention_heads // max(self.num_key_value_heads, 1))

    def short(self) -> str:
        """Compact label, e.g. `L16-h4096-m14336-q32kv8-d128`, with `-b1` for `layer_block` 1."""
        return (
            f"L{self.num_hidden_layers}-h{self.hidden_size}-m{self.intermediate_size}"
            f"-q{self.num_attention_heads}kv{self.num_key_value_heads}-d{self.head_dim}"
            + (f"-b{self.layer_block}" if self.layer_block else "")
        )

    @classmethod
    def parse(cls, label: str) -> Architecture:
        """The architecture of a `short()` label such as `L20-h576-m768-q9kv3-d64` (or `...-b1`)."""
        match = re.fullmatch(r"L(\d+)-h(\d+)-m(\d+)-q(\d+)kv(\d+)-d(\d+)(?:-b(\d+))?", label.strip())
        if not match:
            raise MinitronError(f"{label!r} is not an architecture label like L20-h576-m768-q9kv3-d64")
        return cls(*(int(g) for g in match.groups() if g is not None))


@dataclass(frozen=True)
class Family:
    """What pruning keeps fixed: the model type, vocabulary and bias layout of the teacher."""

    model_type: str
    """Hugging Face `model_type`: one of `SUPPORTED_MODEL_TYPES`."""
    vocab_size: int
    """Rows of the embedding matrix (and of the LM head)."""
    tie_word_embeddings: bool
    """Whether the LM head shares the embedding matrix (SmolLM2) or has its own (Llama-3.1-8B)."""
    attention_bias: bool = False
    """Llama's `attention_bias`: biases on q/k/v/o. Qwen2 always has q/k/v biases and no o bias."""
    mlp_bias: bool = False
    """Llama's `mlp_bias`: biases on gate/up/down."""

    def __post_init__(self) -> None:
        check_model_type(self.model_type)

    @property
    def qkv_bias(self) -> bool:
        return self.model_type == "qwen2" or (self.model_type == "llama" and self.attention_bias)

    @property
    def o_bias(self) -> bool:
        return self.model_type == "llama" and self.attention_bias

    @property
    def has_mlp_bias(self) -> bool:
        return self.model_type == "llama" and self.mlp_bias

    @classmethod
    def from_config(cls, config: Any) -> Family:
        return cls(
            model_type=str(_field(config, "model_type")),
            vocab_size=int(_field(config, "vocab_size")),
            tie_word_embeddings=bool(_field(config, "tie_word_embeddings", False)),
            attention_bias=bool(_field(config, "attention_bias", False)),
            mlp_bias=bool(_field(config, "mlp_bias", False)),
        )


def count_params(family: Family, arch: Architecture) -> int:
    """Exact number of parameters of the decoder `build_config(family, arch)` describes."""
    h, d, i = arch.hidden_size, arch.head_dim, arch.intermediate_size
    q, kv = arch.num_attention_heads * d, arch.num_key_value_heads * d
    attention = h * q + 2 * h * kv + q * h
    if family.qkv_bias:
        attention += q + 2 * kv
    if family.o_bias:
        attention += h
    mlp = 3 * h * i + ((2 * i + h) if family.has_mlp_bias else 0)
    norms = 2 * h
    per_layer = attention + mlp + norms
    embeddings = family.vocab_size * h
    lm_head = 0 if family.tie_word_embeddings else family.vocab_size * h
    return embeddings + arch.num_hidden_layers * per_layer + h + lm_head


def build_config(base: Any, arch: Architecture, layers: Sequence[int] | None = None) -> Any:
    """A fresh Hugging Face config of `base`'s family with `arch`'s sizes.

    `base` is the teacher's config (object or dict): everything that is not one of the six sizes
    (RoPE, norms' epsilon, token ids, ...) is carried over; provenance and quantization entries are
    dropped so the result describes a plain, unquantized model. Per-layer settings (Qwen2's
    `layer_types`) follow the kept teacher `layers` when given, else the family's default.
    """
    from transformers import AutoConfig

    values = dict(base if isinstance(base, dict) else base.to_dict())
    for key in _NON_ARCHITECTURE_KEYS:
        values.pop(key, None)
    model_type = values.pop("model_type", None)
    check_model_type(model_type)
    problems = arch.problems()
    if problems:
        raise MinitronError(f"architecture {arch.short()} is not buildable: {'; '.join(problems)}")
    values.update(arch.as_dict())
    layer_types = values.get("layer_types")
    if isinstance(layer_types, list):
        if layers is not None:
            values["layer_types"] = [layer_types[i] for i in layers]
        elif len(layer_types) != arch.num_hidden_layers:
            del values["layer_types"]
    return AutoConfig.for_model(model_type, **values)

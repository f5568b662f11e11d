"""Search spaces: YAML files in `spaces/`, validated on load.

A space is plain data. It names its teacher's architecture (so a dry run needs no weights), the
choices per axis, the budget band and the architectures worth trying first. Example and schema:

    name: smollm2-135m
    description: free text
    teacher:                  # the teacher's fixed facts and full-size architecture
      name: smollm2-135m      # default --teacher for this space (embedded name, path or hub id)
      model_type: llama       # llama | mistral | qwen2
      vocab_size: 49152
      tie_word_embeddings: true
      attention_bias: false   # optional, default false
      mlp_bias: false         # optional, default false
      max_position_embeddings: 8192  # optional: the context it was trained for (caps the default
                                     # sequence length of a run on GPUs)
      num_hidden_layers: 30
      hidden_size: 576
      intermediate_size: 1536
      num_attention_heads: 9
      num_key_value_heads: 3
      head_dim: 64
    choices:                  # candidate values per axis; head_dim and num_key_value_heads
      num_hidden_layers: [..] # default to the teacher's value when omitted
      hidden_size: [..]
      intermediate_size: [..]
      num_attention_heads: [..]
      num_key_value_heads: [..]
    band: 0.05                # feasible: |params - budget| <= band * budget
    top_k: 2                  # winners retrained fully after the search
    layer_blocks: 1           # optional: a shallower shape is tried with each of the N contiguous
                              # blocks of least measured removal loss dropped (1: only the least)
    known:                    # architectures to try first (e.g. published ones)
      - {name: ..., num_hidden_layers: .., hidden_size: .., ...}
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from minitron.errors import MinitronError
from minitron.model.architecture import ARCH_FIELDS, Architecture, Family, check_model_type, count_params


def _spaces_dir() -> Path:
    """`spaces/` beside the package in a checkout (or an editable install); `search/spaces/` where
    `pip install .` put the files."""
    package = Path(__file__).resolve().parent.parent  # search/
    checkout = package.parent / "spaces"
    return checkout if (checkout / f"{DEFAULT_SPACE_NAME}.yaml").is_file() else package / "spaces"


DEFAULT_SPACE_NAME = "smollm2-135m"
SPACES_DIR = _spaces_dir()
DEFAULT_SPACE = SPACES_DIR / f"{DEFAULT_SPACE_NAME}.yaml"

_TOP_KEYS = {"name", "description", "teacher", "choices", "band", "top_k", "known", "layer_blocks"}
_FAMILY_KEYS = {"model_type", "vocab_size", "tie_word_embeddings", "attention_bias", "mlp_bias"}
_TEACHER_KEYS = {"name", "max_position_embeddings", *_FAMILY_KEYS, *ARCH_FIELDS}
_OPTIONAL_CHOICES = ("num_key_value_heads", "head_dim")
_GRID_RULES = (
    "hidden_size must be a multiple of num_attention_heads, query heads a multiple of KV heads "
    "with no more per group than the teacher has, and head_dim the teacher's"
)


@dataclass(frozen=True)
class KnownArchitecture:
    """A named architecture to evaluate first (e.g. a published Minitron shape)."""

    name: str
    arch: Architecture


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space."""

    name: str
    """Short identifier, e.g. `llama-3.1-8b`."""
    path: Path
    """The YAML file it was read from."""
    description: str
    """Free text for reports."""
    teacher_name: str
    """Default teacher spec for this space (embedded name, path or hub id)."""
    family: Family
    """The teacher's fixed facts: model type, vocabulary, tied embeddings, biases."""
    teacher: Architecture
    """The teacher's full-size architecture."""
    choices: dict[str, tuple[int, ...]]
    """Candidate values per architecture field (all six fields present)."""
    band: float
    """Relative half-width of the feasible parameter band around the budget."""
    top_k: int
    """How many winners are retrained fully."""
    known: tuple[KnownArchitecture, ...]
    """Architectures to try first."""
    context: int | None = None
    """The teacher's `max_position_embeddings` when the space gives it (None: not stated)."""
    layer_blocks: int = 1
    """Which layers a shallower shape drops, as a searched choice: each of the `layer_blocks`
    contiguous blocks of least measured removal loss is a candidate of its own (`layer_block` 0 to
    N − 1). 1: only the block of least loss, Minitron's rule."""

    @property
    def teacher_params(self) -> int:
        return count_params(self.family, self.teacher)

    def axes(self) -> dict[str, list[int]]:
        """What the sampler chooses per candidate: the six fields' choices, and `layer_block` when
        the space searches which layers to drop."""
        out = {name: list(self.choices[name]) for name in ARCH_FIELDS}
        if self.layer_blocks > 1:
            out["layer_block"] = list(range(self.layer_blocks))
        return out

    def point(self, arch: Architecture) -> dict[str, int]:
        """`arch` as the sampler's values (`axes`), e.g. to enqueue it."""
        return {name: getattr(arch, name) for name in self.axes()}

    def definition(self) -> dict[str, Any]:
        """The space as plain data in its YAML schema (what `config.json` keeps of it, so a resumed
        run searches the space it started with whatever became of the file)."""
        teacher = {"name": self.teacher_name, **dataclasses.asdict(self.family), **self.teacher.as_dict()}
        if self.context is not None:
            teacher["max_position_embeddings"] = self.context
        return {
            "name": self.name,
            "description": self.description,
            "teacher": teacher,
            "choices": {name: list(values) for name, values in self.choices.items()},
            "band": self.band,
            "top_k": self.top_k,
            "layer_blocks": self.layer_blocks,
            "known": [{"name": k.name, **k.arch.as_dict()} for k in self.known],
        }

    def grid(self) -> list[Architecture]:
        """Every buildable architecture of the choices that can be cut from the teacher."""
        # the axes' order is Architecture's field order (layer_block last, and 0 when not searched)
        shapes = (Architecture(*values) for values in itertools.product(*self.axes().values()))
        return [a for a in shapes if not a.cut_problems(self.teacher)]


def with_layer_blocks(space: SearchSpace, layer_blocks: int) -> SearchSpace:
    """`space` with another number of contiguous layer blocks a shallower shape may drop."""
    if layer_blocks < 1:
        raise MinitronError(f"--layer-blocks must be 1 or more, got {layer_blocks}")
    return dataclasses.replace(space, layer_blocks=layer_blocks)


def resolve_space_path(spec: str | Path) -> Path:
    """A space file path, or a bare name looked up in the project's `spaces/` folder."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    named = SPACES_DIR / f"{spec}.yaml"
    if "/" not in str(spec) and named.is_file():
        return named
    names = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
    raise MinitronError(f"space {str(spec)!r} does not exist; give a YAML file or one of: {names}")


def load_space(spec: str | Path = DEFAULT_SPACE) -> SearchSpace:
    path = resolve_space_path(spec)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise MinitronError(f"{path}: not valid YAML{where}") from None
    return _parse(path, data)


def space_from_definition(path: str | Path, definition: Any) -> SearchSpace:
    """The space `definition()` wrote, checked as a file is (`path`: where it was first read)."""
    return _parse(Path(path), definition)


def _fail(path: Path, key: str, message: str) -> MinitronError:
    return MinitronError(f"{path}: {key}: {message}")


def _int(path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, key, f"expected a positive integer, got {value!r}")
    return value


def _bool(path: Path, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, key, f"expected true or false, got {value!r}")
    return value


def _str(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, f"expected a non-empty string, got {value!r}")
    return value


def _mapping(path: Path, key: str, value: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, key, f"expected a mapping, got {type(value).__name__}")
    prefix = f"{key}." if key != "(top level)" else ""
    for name in value:
        if name not in allowed:
            raise _fail(path, f"{prefix}{name}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    for name in sorted(required - set(value)):
        raise _fail(path, f"{prefix}{name}", "missing")
    return value


def _architecture(path: Path, key: str, values: dict[str, Any], teacher: Architecture | None) -> Architecture:
    fields = {name: _int(path, f"{key}.{name}", values[name]) for name in ARCH_FIELDS if name in values}
    if "head_dim" not in fields:  # a candidate keeps the teacher's; a teacher defaults as HF does
        default = fields["hidden_size"] // fields["num_attention_heads"]
        fields["head_dim"] = teacher.head_dim if teacher else default
    arch = Architecture(**fields)
    problems = arch.cut_problems(teacher) if teacher else arch.problems()
    if problems:
        raise _fail(path, key, "; ".join(problems))
    return arch


def _parse(path: Path, data: Any) -> SearchSpace:
    top = _mapping(path, "(top level)", data, _TOP_KEYS, {"name", "teacher", "choices"})
    optional = {"attention_bias", "mlp_bias", "head_dim", "max_position_embeddings"}
    t = _mapping(path, "teacher", top["teacher"], _TEACHER_KEYS, _TEACHER_KEYS - optional)
    model_type = _str(path, "teacher.model_type", t["model_type"])
    try:
        check_model_type(model_type)
    except MinitronError as err:
        raise _fail(path, "teacher.model_type", str(err)) from None
    family = Family(
        model_type=model_type,
        vocab_size=_int(path, "teacher.vocab_size", t["vocab_size"]),
        tie_word_embeddings=_bool(path, "teacher.tie_word_embeddings", t["tie_word_embeddings"]),
        attention_bias=_bool(path, "teacher.attention_bias", t.get("attention_bias", False)),
        mlp_bias=_bool(path, "teacher.mlp_bias", t.get("mlp_bias", False)),
    )
    teacher = _architecture(path, "teacher", t, None)

    c = _mapping(path, "choices", top["choices"], set(ARCH_FIELDS), set(ARCH_FIELDS) - set(_OPTIONAL_CHOICES))
    choices: dict[str, tuple[int, ...]] = {}
    for name in ARCH_FIELDS:
        raw = c.get(name, [getattr(teacher, name)])
        key = f"choices.{name}"
        if not isinstance(raw, list) or not raw:
            raise _fail(path, key, f"expected a non-empty list of integers, got {raw!r}")
        values = tuple(_int(path, f"{key}[{i}]", v) for i, v in enumerate(raw))
        if len(set(values)) != len(values):
            raise _fail(path, key, "lists a value twice")
        for i, v in enumerate(values):
            if v > getattr(teacher, name):
                raise _fail(path, f"{key}[{i}]", f"{v} exceeds the teacher's {getattr(teacher, name)}")
        choices[name] = tuple(sorted(values))

    band = top.get("band", 0.05)
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 < band < 1:
        raise _fail(path, "band", f"expected a fraction between 0 and 1 (0.05 for ±5 %), got {band!r}")
    known_raw = top.get("known", [])
    if not isinstance(known_raw, list):
        raise _fail(path, "known", f"expected a list of architectures, got {type(known_raw).__name__}")
    known = []
    for i, entry in enumerate(known_raw):
        key = f"known[{i}]"
        entry = _mapping(path, key, entry, {"name", *ARCH_FIELDS}, {"name", *ARCH_FIELDS} - {"head_dim"})
        known.append(
            KnownArchitecture(
                _str(path, f"{key}.name", entry["name"]), _architecture(path, key, entry, teacher)
            )
        )

    space = SearchSpace(
        name=_str(path, "name", top["name"]),
        path=path,
        description=str(top.get("description", "")).strip(),
        teacher_name=_str(path, "teacher.name", t["name"]),
        family=family,
        teacher=teacher,
        choices=choices,
        band=float(band),
        top_k=_int(path, "top_k", top.get("top_k", 2)),
        known=tuple(known),
        context=_int(path, "teacher.max_position_embeddings", t["max_position_embeddings"])
        if "max_position_embeddings" in t
        else None,
        layer_blocks=_int(path, "layer_blocks", top.get("layer_blocks", 1)),
    )
    _check_choices_usable(space)
    return space


def _check_choices_usable(space: SearchSpace) -> None:
    """Every listed value must appear in at least one buildable, prunable architecture."""
    grid = space.grid()
    if not grid:
        raise _fail(space.path, "choices", f"no combination is a buildable architecture ({_GRID_RULES})")
    for name in ARCH_FIELDS:
        used = {getattr(a, name) for a in grid}
        for value in space.choices[name]:
            if value not in used:
                raise _fail(
                    space.path,
                    f"choices.{name}",
                    f"{value} fits no combination of the others ({_GRID_RULES})",
                )


def check_teacher_matches(space: SearchSpace, teacher: str, config: Any) -> None:
    """Refuse a teacher whose config differs from the architecture the space was written for."""
    family, arch = Family.from_config(config), Architecture.from_mapping(config)
    if family != space.family or arch != space.teacher:
        raise MinitronError(
            f"teacher {teacher!r} is {family.model_type} {arch.short()} (vocab {family.vocab_size}), but "
            f"{space.path.name} describes {space.family.model_type} {space.teacher.short()} "
            f"(vocab {space.family.vocab_size}); give --space for this teacher"
        )

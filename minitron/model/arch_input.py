"""An `Architecture` from what a user gives: the `--arch` flag's `k=v,...` text or JSON file, or a
mapping of Hugging Face field names (`minitron.api.prune` takes each). The teacher's
`num_key_value_heads` and `head_dim` fill in where they are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minitron.atomic import read_json_object
from minitron.errors import MinitronError
from minitron.model.architecture import ARCH_FIELDS, Architecture


def parse_arch(text: str, teacher: Architecture) -> Architecture:
    """An architecture from `k=v,k=v` or a JSON file (e.g. one row of `search.py --dry-run --json`).

    `num_key_value_heads` and `head_dim` default to the teacher's; `params` and `name` are ignored.
    """
    path = Path(text).expanduser()
    if path.suffix == ".json" or path.is_file():
        return _from_fields(_without_labels(read_json_object(path, "architecture file")), teacher)
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise MinitronError(f"--arch part {part!r} is not key=value")
        values[key.strip()] = value.strip()
    return _from_fields(values, teacher)


def architecture_from(value: Architecture | Mapping[str, Any] | str, teacher: Architecture) -> Architecture:
    """`value` as given, from its Hugging Face fields, or read as `--arch` reads its text."""
    if isinstance(value, Architecture):
        return value
    if isinstance(value, Mapping):
        return _from_fields(_without_labels(value), teacher)
    return parse_arch(str(value), teacher)


def _without_labels(values: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate's fields without its `params` and `name` (a row of `search.py --dry-run --json`)."""
    return {k: v for k, v in values.items() if k not in ("params", "name")}


def _from_fields(values: Mapping[str, Any], teacher: Architecture) -> Architecture:
    """The Hugging Face fields `values`, with the teacher's `num_key_value_heads` and `head_dim`
    where they are missing."""
    unknown = sorted(set(values) - set(ARCH_FIELDS))
    if unknown:
        expected = ", ".join(ARCH_FIELDS)
        raise MinitronError(f"--arch: unknown field(s) {', '.join(unknown)}; expected {expected}")
    fields = {**{k: getattr(teacher, k) for k in ("num_key_value_heads", "head_dim")}, **values}
    missing = [k for k in ARCH_FIELDS if k not in fields]
    if missing:
        raise MinitronError(f"--arch is missing {', '.join(missing)}")
    try:
        return Architecture(**{k: int(v) for k, v in fields.items()})
    except (TypeError, ValueError):
        raise MinitronError(f"--arch values must be integers, got {values}") from None

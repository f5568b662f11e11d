"""One strict codec for the typed records the tool writes and reads back: JSON files (`config.json`,
`trials.jsonl`, `provenance.json`, `summary.json`, ...) and what crosses a process boundary.

`encode(value)` turns a record into JSON-ready data: a dataclass field by field (in field order),
an enum by its value, a tuple as a list, a `Path` as text. `decode(kind, data, source)` reads data
back as the type `kind`, recursively along the dataclass's type hints, and refuses anything
unexpected with one line naming the file and the key: an unknown key (written by another version?),
a missing required one, a value of the wrong type. A record with a layout of its own (an
`Architecture` written as its key, a runtime written as `llama.cpp:q8_0`) defines `to_json()` and a
classmethod `from_json(data)`; the codec calls them. A dataclass may list in `JSON_OMIT` the fields
it leaves out while they hold their default (so files of runs without them read as before).

Why: a record written by one module and read by another is a type both import, never a dict whose
keys each side spells on its own.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from minitron.errors import MinitronError

T = TypeVar("T")


def encode(value: Any) -> Any:
    """`value` as JSON-ready data (see the module docstring)."""
    to_json = getattr(value, "to_json", None)
    if to_json is not None and not isinstance(value, type):
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode_fields(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {_key(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def encode_fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON-ready data, without those in its `JSON_OMIT` that hold their
    default (for a record whose own `to_json` adds to the plain layout)."""
    omit = set(getattr(type(record), "JSON_OMIT", ()))
    out = {}
    for f in dataclasses.fields(record):
        if not f.init:
            continue  # derived from the other fields when read back
        value = getattr(record, f.name)
        if f.name in omit and value == _default(f):
            continue
        out[f.name] = encode(value)
    return out


def _key(key: Any) -> str:
    return str(key.value) if isinstance(key, enum.Enum) else str(key)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@dataclass(frozen=True)
class Source:
    """Where data comes from, as its errors name it: `config.json: unknown setting settings.x ...`."""

    name: str
    """The file (or channel) it was read from."""
    noun: str = "key"
    """What a key is called there (`setting` in `config.json`)."""
    advice: str = ""
    """Appended to an unknown or missing key's error (what to do instead)."""


def decode(kind: type[T], data: Any, source: str | Source, where: str = "") -> T:
    """`data` read strictly as `kind`; errors say `source: where...` (e.g. `config.json: settings.plan`)."""
    return typing.cast(T, _decode(kind, data, _source(source), where))


def _source(source: str | Source) -> Source:
    return source if isinstance(source, Source) else Source(source)


def decode_fields(kind: type[T], data: Any, source: str | Source, where: str = "") -> T:
    """A dataclass read field by field as `decode` reads it, for a record whose own `from_json`
    adjusts the data first (e.g. a key that older files lack)."""
    return typing.cast(T, _decode_dataclass(kind, data, _source(source), where))


def dumps(record: Any, indent: int | None = None) -> str:
    """A record as JSON text."""
    return json.dumps(encode(record), indent=indent)


def load(kind: type[T], path: Path) -> T:
    """The record of type `kind` in the JSON file `path` (one line: `path` cannot be read)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise MinitronError(f"{path}: cannot be read ({err})") from None
    return decode(kind, data, Source(str(path)))


def _fail(source: Source, where: str, message: str) -> MinitronError:
    return MinitronError(f"{source.name}: {where + ' ' if where else ''}{message}")


def _decode(kind: Any, value: Any, source: Source, where: str) -> Any:
    from_json = getattr(kind, "from_json", None) if isinstance(kind, type) else None
    if from_json is not None:
        try:
            return from_json(value)
        except MinitronError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise _fail(source, where, f"is not a valid {kind.__name__} ({err})") from None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, source, where)
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        return _decode(real[0], value, source, where)
    if kind is Any or kind is object:
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _fail(source, where, f"must be a list, got {value!r}")
        args = typing.get_args(kind)
        item = args[0] if args else Any
        items = [_decode(item, v, source, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise _fail(source, where, f"must be an object, got {value!r}")
        args = typing.get_args(kind)
        keys, values = args if args else (Any, Any)
        return {
            _decode(keys, k, source, f"{where}.{k}" if where else str(k)): _decode(
                values, v, source, f"{where}.{k}" if where else str(k)
            )
            for k, v in value.items()
        }
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise _fail(source, where, f"has an unknown value {value!r}") from None
    if kind is Path:
        if not isinstance(value, str):
            raise _fail(source, where, f"must be a path, got {value!r}")
        return Path(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise _fail(source, where, f"must be int, got {value!r}")
    if isinstance(kind, type) and not isinstance(value, kind):
        raise _fail(source, where, f"must be {kind.__name__}, got {value!r}")
    return value


def _decode_dataclass(kind: type, value: Any, source: Source, where: str) -> Any:
    if not isinstance(value, dict):
        raise _fail(source, where, f"must be an object, got {type(value).__name__}")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise MinitronError(
            f"{source.name}: unknown {source.noun} {key} (written by another version of "
            f"minitron-search?){source.advice}"
        )
    missing = [
        name
        for name, f in fields.items()
        if name not in value and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise MinitronError(f"{source.name}: {source.noun} {key} is missing{source.advice}")
    values = {k: _decode(hints[k], v, source, f"{where}.{k}" if where else k) for k, v in value.items()}
    return kind(**values)

"""What every command shares: how it ends, and the options and checks they all take.

How a command ends: `MinitronError` (bad input or environment) → its message, status 2; Ctrl-C or
SIGTERM → status 130 (with the command's own word on what was kept, when it raised
`Interrupted`); a full disk → one line, status 2. Anything else is a bug and keeps its traceback,
as does everything with `--debug`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from minitron.atomic import disk_full_message
from minitron.errors import MinitronError

T = TypeVar("T")

TEACHER_HELP = "embedded name (smollm2-135m), checkpoint dir, .gguf file or hub id"


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (a scheduler, `kill`) stops a command as Ctrl-C does


def run_command(body: Callable[[], int | None], debug: bool = False) -> int:
    """Run a command's body and turn the failures users cause into one line and an exit status."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return body() or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except MinitronError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        message = disk_full_message(err)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


#: What `--data` takes in the library's commands; its default is the search's, `mix`
#: (`minitron.data.mix.DEFAULT_DATA`), whose teacher samples are drawn once per teacher and cached.
DATA_HELP = (
    "mix (the embedded corpora and the teacher's own samples, drawn once per teacher and cached), "
    "one corpus: wiki-en (or another embedded one), a .txt/.jsonl file or a folder; or several with "
    "weights: wiki-en=0.6,code-py=0.2,teacher-samples=0.2 (see minitron.data.mix)"
)


def add_common_options(parser: argparse.ArgumentParser, data_help: str, defaults: dict[str, Any]) -> None:
    """--teacher, --data, --seq-len and --debug, as every training command names them, with the
    `defaults` of its API function (`api_defaults`)."""
    parser.add_argument("--teacher", default=defaults["teacher"], help=TEACHER_HELP)
    parser.add_argument("--data", default=defaults["data"], help=data_help)
    parser.add_argument("--seq-len", type=int, default=defaults["seq_len"], help="tokens per packed sequence")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def api_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The default of every keyword of a `minitron.api` function: a command's flags default to
    them, so each default is written once (there, or in the library config it reads)."""
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def check_out_folder(text: str, overwrite: bool) -> Path:
    """An output folder that is absent or empty (or may be replaced with `overwrite`), never a file."""
    out = Path(text).expanduser()
    check_folder_path(out, "--out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise MinitronError(f"--out {out} already exists and is not empty; pass --overwrite to replace it")
    return out


def check_folder_path(path: Path, option: str) -> None:
    """Refuse a folder path that is a file, or lies below one (nothing could ever be written there)."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == path else f"lies below the file {folder}"
                raise MinitronError(f"{option} {path} {what}, not a folder; give a folder path")
            return


def check_positive_counts(counts: dict[str, Any]) -> None:
    """Each `--option: value` given (None: not given) must be a positive whole number."""
    for option, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise MinitronError(f"{option} must be a positive whole number, got {value!r}")


def non_negative_or_all(name: str, value: str) -> int | None:
    """A count option that also takes `all` (None)."""
    if value == "all":
        return None
    try:
        number = int(value)
    except ValueError:
        raise MinitronError(f"{name} must be an integer or 'all', got {value!r}") from None
    if number < 0:
        raise MinitronError(f"{name} must not be negative")
    return number


def config_from_args(config: type[T], args: argparse.Namespace, **values: Any) -> T:
    """A config dataclass from the options named like its fields, with `values` for the rest."""
    names = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    return config(**{**{k: v for k, v in vars(args).items() if k in names}, **values})

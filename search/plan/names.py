"""A run's name and output folder: the default name, and the checks before anything is written.

Why: a bad name or folder must cost seconds and leave nothing behind, not write outside the folder
the user chose. (The run directory's own checks are `search.outputs.rundir`'s; the corpus's,
`search.plan.corpus`'s.)
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from minitron.budget import format_count
from minitron.commands.common import check_folder_path
from minitron.errors import MinitronError


def default_name(low: int, budget: int) -> str:
    """Date, time and budget (`20261129-150102-70M`, or `...-50M-110M` for a range)."""
    span = format_count(budget) if low == budget else f"{format_count(low)}-{format_count(budget)}"
    return f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}-{span}"


def check_name(name: str) -> str:
    """A run name is one path component: the run directory always lands inside `--out`."""
    separators = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    if not name.strip() or name in (".", "..") or any(s in name for s in separators) or "\0" in name:
        raise MinitronError(
            f"--name {name!r} must be a plain folder name (no '/', not '.' or '..'); "
            "use --out to choose where run directories go"
        )
    return name


def check_out(out: str) -> None:
    """`--out` must be a folder, or a path where one can be made."""
    check_folder_path(Path(out).expanduser(), "--out")

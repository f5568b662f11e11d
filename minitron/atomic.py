"""Atomic file writes: a finished result is either whole on disk or absent, never truncated.

Why: searches run for hours and can be killed at any moment; a file that looks complete must be.
Each write goes to a temporary file in the same folder, is flushed and fsynced, then renamed over
the target (a rename within one file system is atomic). Folders (checkpoints, caches) are written
into a staging folder beside the target and published by one rename (`staging_dir`, `publish`).
`read_json_object` is the reading side: a JSON file that must hold an object, or a one-line error.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from minitron.errors import MinitronError


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (indented, non-JSON values written with `str`)."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temporary file in the same folder, fsync, rename), mode as umask allows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes files private; results are ordinary files
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if path.name in _injected_full_disk():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _injected_full_disk() -> set[str]:
    """Fault injection for tests: `MINITRON_FULL_DISK=summary.json,...` makes writing those files
    fail as a full disk does (ENOSPC), after part of the data went to the temporary file."""
    return {n.strip() for n in os.environ.get("MINITRON_FULL_DISK", "").split(",") if n.strip()}


def disk_full_message(err: OSError) -> str | None:
    """The one-line explanation of a full disk, or None for any other OS error."""
    if err.errno != errno.ENOSPC:
        return None
    where = f" while writing {err.filename}" if err.filename else ""
    return (
        f"no space left on device{where}; nothing was left half-written: free some space and "
        "continue with --resume"
    )


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary folder beside `final`, removed on exit; rename it into place to publish."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the published folder should not be
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, final: Path) -> None:
    """Move a finished staging folder to `final`, replacing an older one only once the new one is whole.

    A crash can leave the old folder renamed beside it, never a half-written `final`.
    """
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The object a JSON file holds; an unreadable file or another kind of value is a clear error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MinitronError(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, dict):
        raise MinitronError(f"{what} {path} must hold one JSON object")
    return data

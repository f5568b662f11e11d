"""How every command ends: a user-facing failure is one line on stderr and an exit status.

`MinitronError` (bad input or environment) → its message, status 2; Ctrl-C or SIGTERM → status 130
(with the command's own word on what was kept, when it raised `Interrupted`); a full disk → one
line, status 2. Anything else is a bug and keeps its traceback, as does everything with `--debug`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from minitron.atomic import disk_full_message
from minitron.errors import MinitronError


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

"""The one exception type users see.

Every failure caused by the user's input or environment (a bad budget, a missing file, a checksum
mismatch) raises `MinitronError` with a single-line message that names what is wrong and what would
be right. The command-line entry points print that line and exit with status 2 (130 for
`Interrupted`); anything else is a bug and keeps its traceback.
"""


class MinitronError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class Interrupted(MinitronError):
    """The user stopped a command (Ctrl-C, SIGTERM); the message says what was kept."""

    exit_code = 130


def failure_line(err: BaseException) -> str:
    """A failed job's record of why: the exception's type and the first line of its message."""
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first}"

"""How commands end (`minitron.commands.common.run_command`): one line and an exit status."""

import errno
import os
import signal
import time

import pytest

from minitron.commands.common import run_command
from minitron.errors import Interrupted, MinitronError


@pytest.fixture(autouse=True)
def keep_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def fail(err: BaseException):
    def body():
        raise err

    return body


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (
            MinitronError("budget '7X' is not a parameter count"),
            2,
            "error: budget '7X' is not a parameter count",
        ),
        (
            Interrupted("interrupted; continue with --resume r"),
            130,
            "error: interrupted; continue with --resume r",
        ),
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (
            OSError(errno.ENOSPC, "No space left on device", "out/summary.json"),
            2,
            "error: no space left on device",
        ),
    ],
)
def test_user_failures_are_one_line_and_a_status(capsys, error, status, line):
    assert run_command(fail(error)) == status
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1


def test_sigterm_stops_a_command_as_ctrl_c_does(capsys):
    def body():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    assert run_command(body) == 130 and capsys.readouterr().err == "error: interrupted\n"


def test_bugs_and_debug_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_command(fail(ZeroDivisionError()))
    with pytest.raises(OSError):
        run_command(fail(OSError(errno.EACCES, "Permission denied")))
    with pytest.raises(MinitronError):
        run_command(fail(MinitronError("x")), debug=True)


def test_success_is_status_zero():
    assert run_command(lambda: None) == 0 and run_command(lambda: 3) == 3

"""The ``qa`` command's entry point (and ``python -m qa``'s). Ctrl-C, wherever it lands
(while the CLI loads, in a command, even inside an extension's import, which turns it into
an ImportError), ends the command with "interrupted" and exit 130, never a traceback. One
that lands once the command is done changes nothing: the exit is the command's own."""

from __future__ import annotations

import atexit
import os
import signal
import sys
from types import FrameType
from typing import NoReturn


def main() -> int:
    interrupted = False
    code: int | None = None

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    ours = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not where ignored
    if ours:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        from .cli import main as run

        code = run()
        if ours:
            _finished(code)
    except BaseException:
        if not interrupted:
            raise
        if code is None:
            _leave(130, "interrupted")
        _leave(code)  # it came as the command finished: its work and its code stand
    if interrupted:  # the command ended on its own terms (qa serve: "stopped")
        _leave(code)
    return code


def _finished(code: int) -> None:
    """A Ctrl-C from here on ends the process with the command's code. Past the exit
    handlers, Python puts SIGINT back to its default (death by signal, exit -2) while it
    unloads torch and the rest, so there it is ignored: that part runs no code of ours."""
    signal.signal(signal.SIGINT, lambda signum, frame: _leave(code))
    atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)


def _leave(code: int, line: str = "") -> NoReturn:
    """Exit at once: an interrupt cut short somewhere can stay pending in a half-loaded
    extension, and the interpreter's own exit would then die of it (exit -2)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if line and stream is sys.stderr:
                stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)

"""The ``qa`` command's entry point (and ``python -m qa``'s). Ctrl-C, wherever it lands
(while the CLI loads, in a command, even inside an extension's import, which turns it into
an ImportError), ends the command with "interrupted" and exit 130, never a traceback."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def main() -> int:
    interrupted = False

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where ignored
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        from .cli import main as run

        code = run()
    except BaseException:
        if not interrupted:
            raise
        _leave(130, "interrupted")
    if interrupted:  # the command ended on its own terms (qa serve: "stopped")
        _leave(code)
    return code


def _leave(code: int, line: str = "") -> None:
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

"""The ``qa`` command's entry point (and ``python -m qa``'s): the CLI is imported inside
it, so that Ctrl-C while it loads is "interrupted" too, as it is once it runs."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return run()

"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def jsonl_files(folder: Path) -> list[Path]:
    """The ``.jsonl`` files under ``folder``, at any depth, in path order; hidden files and
    folders left out (as a seeds folder's are)."""
    return sorted(
        p
        for p in Path(folder).rglob("*.jsonl")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path``: written and synced beside it, then renamed over it in one
    step; a failure leaves ``path`` as it was and no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

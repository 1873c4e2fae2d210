"""Building a model in a folder beside its place, and moving it into place once whole."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def work_folder(out: Path, purpose: str) -> Iterator[Path]:
    """An empty folder beside ``out`` to build a reader in, removed whatever happens (the
    reader, once whole, is moved from it into place by ``replace_folder``)."""
    work = out.with_name(f".{out.name}.{purpose}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replace_folder(work: Path, out: Path) -> None:
    """Move the new reader into place: the old one is removed only once the new is whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)

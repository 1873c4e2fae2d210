"""The versions of the installed packages, for index manifests and model cards. Read from
the packages' metadata, so that recording them imports nothing heavy (no torch)."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import platform


def package_versions(packages: dict[str, str]) -> dict[str, str]:
    """``key -> version`` of each installed ``key -> package name`` (missing ones left out),
    with the Python version."""
    out = {"python": platform.python_version()}
    for key, package in packages.items():
        with contextlib.suppress(md.PackageNotFoundError):
            out[key] = md.version(package)
    return out

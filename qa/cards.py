"""Model cards: the ``card.json`` beside each model the package ships (the reader, the
question encoder). A model is named by the hash of its card, and the card holds the sha256
of every file, checked when the model loads: a missing or damaged file is refused with one
line that names it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CARD = "card.json"

Fail = Callable[[str], Exception]  # from what is wrong to the error that says what to do


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_hash(folder: Path) -> str | None:
    """The name of the model in ``folder``: the hash of its card (None if absent)."""
    try:
        return hashlib.sha256((Path(folder) / CARD).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def load_card(
    folder: Path, check: Callable[[dict[str, Any]], object], fail: Fail
) -> tuple[dict[str, Any], str]:
    """The card in ``folder`` and its hash; ``fail(problem)`` is raised when it is missing,
    is not JSON, or ``check(card)`` finds a field missing or of the wrong type."""
    path = Path(folder) / CARD
    try:
        raw = path.read_bytes()
    except OSError:
        raise fail(f"{path} is missing") from None
    try:
        card = json.loads(raw)
        files = card["files"]
        if not isinstance(files, dict) or not all(isinstance(f, dict) for f in files.values()):
            raise TypeError("files")
        check(card)
    except json.JSONDecodeError:
        raise fail(f"{path} is not a valid model card (not JSON)") from None
    except ValueError as exc:  # a field of the wrong value: say which, in one line
        reason = " ".join(str(exc).split())
        raise fail(f"{path} is not a valid model card ({reason})") from None
    except (KeyError, TypeError, AttributeError, OverflowError):
        raise fail(f"{path} is not a valid model card") from None
    return card, hashlib.sha256(raw).hexdigest()[:16]


def verify_files(folder: Path, card: dict[str, Any], files: Sequence[str], fail: Fail) -> None:
    """``fail(problem)`` naming the first of ``files`` that is missing or does not match
    its checksum in the card."""
    for name in files:
        path = Path(folder) / name
        try:
            actual = sha256_of(path)
        except OSError:
            raise fail(f"{path} is missing") from None
        if actual != (card["files"].get(name) or {}).get("sha256"):
            raise fail(f"{path} is damaged (its checksum does not match {CARD})")

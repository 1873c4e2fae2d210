"""How a reader's training rows are dealt into batches, epoch by epoch: shuffled, rows of
similar length together, each question's rows whole for the listwise loss, and, with
``qa train --hard``, the epochs after the first on the questions still hardest."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence, Sized
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .settings import TrainSettings


class Encoded(Protocol):
    """What dealing needs of the featurised rows (``model.Encoded``): each row's tokens
    and the question it belongs to."""

    @property
    def ids(self) -> Sequence[Sized]: ...

    @property
    def groups(self) -> Sequence[int]: ...

    def __len__(self) -> int: ...


def batches(data: Encoded, size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of rows of similar length (little padding), in a shuffled order."""
    order = list(range(len(data)))
    rng.shuffle(order)
    out = []
    chunk = size * 32
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: len(data.ids[i]))
        out += [part[i : i + size] for i in range(0, len(part), size)]
    rng.shuffle(out)
    return out


def group_batches(
    data: Encoded, size: int, rng: random.Random, keep: Collection[int] | None = None
) -> list[list[int]]:
    """As ``batches``, but each question's rows whole in one batch (of ``size`` rows or a
    few more), so that ``listwise_loss`` sees them side by side. A row of no question
    (group -1) is a question of its own. With ``keep``, only those questions' rows."""
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(data.groups):
        if keep is None or g in keep:
            groups.setdefault(g if g >= 0 else -2 - i, []).append(i)
    order = list(groups.values())
    rng.shuffle(order)
    out: list[list[int]] = []
    at = 0
    while at < len(order):  # chunks of about 32 batches, sorted by their longest row
        part: list[list[int]] = []
        rows = 0
        while at < len(order) and rows < size * 32:
            part.append(order[at])
            rows += len(order[at])
            at += 1
        part.sort(key=lambda question: max(len(data.ids[i]) for i in question))
        batch: list[int] = []
        for question in part:
            batch += question
            if len(batch) >= size:
                out.append(batch)
                batch = []
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def hardest(losses: dict[int, float], groups: Sequence[int], share: float) -> set[int]:
    """The questions an epoch of hard ones trains on: the ``share`` of those with a recorded
    loss whose loss is highest (ties by id), and every question without one."""
    ranked = sorted(losses, key=lambda g: (-losses[g], g))
    return set(ranked[: max(1, round(share * len(ranked)))]) | (set(groups) - set(losses))


def refusal(settings: TrainSettings) -> tuple[str, str] | None:
    """Why ``qa train`` refuses these settings and the option to blame, or None."""
    if settings.hard < 1 and (why := why_hard_does_nothing(settings)):
        return why, "--hard"
    if settings.balance_overlap and (settings.erased or settings.contrast):
        why = (
            "--erased and --contrast add unanswerable questions that repeat their sentence, "
            "the habit it balances away: drop them"
        )
        return why, "--balance-overlap"
    return None


def why_hard_does_nothing(settings: TrainSettings) -> str:
    """Why ``--hard`` would train exactly as without it with these settings ("" when it
    would not): it ranks the questions by their listwise loss, over each question's rows,
    for the epochs after the first."""
    if settings.listwise == 0:
        return "the hardest are the questions of highest listwise loss: it needs --listwise above 0"
    if settings.epochs < 2:
        return "it chooses the questions of the epochs after the first: it needs --epochs 2 or more"
    if settings.negatives == 0 and settings.erased == 0:
        return (
            "a question's listwise loss is over its rows, and with --negatives 0 (and no "
            "--erased) each question has at most one: it needs --negatives 1 or more"
        )
    return ""

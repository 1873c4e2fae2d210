"""The teachers' logits a student reader learns from (``qa train --teacher``): each
teacher reads every training row once before fitting (numpy only: the rows come encoded,
``model.Encoded``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..features import NEG, Batch

if TYPE_CHECKING:
    from .model import Encoded

Run = Callable[[Batch], tuple[np.ndarray, np.ndarray]]

# a row's own label as a teacher's logit, against 0 elsewhere: at the distillation's
# temperature (2) all but e^-10 of the distribution is on it
LABEL_LOGIT = 20.0


def add_teacher_logits(
    data: Encoded,
    teachers: Sequence[Run],
    size: int = 8,
    reads: Sequence[Encoded | None] | None = None,
) -> None:
    """The teachers' mean start and end logits for every row, kept on ``data`` (in small
    batches: a dynamic int8 teacher scales its activations by the whole batch); for a row
    that learns its label only (``Encoded.own``), logits that put all but nothing on it, so
    that distilling teaches what the label does. ``reads``: for each teacher, the same rows
    as it reads them (another part of the previous sentence: ``Limits.previous_head``), or
    None for ``data`` itself; its logits of [CLS] and of each sentence token are then
    given to the student's same tokens, and NEG to the rest (never a span's)."""
    reads = reads or [None] * len(teachers)
    for other in reads:
        if other is not None and not _same_rows(data, other):
            raise ValueError("a teacher's rows are not the student's")
    taught: list[np.ndarray] = [np.zeros((2, 0), dtype=np.float32)] * len(data)
    for i in data.own:
        taught[i] = np.zeros((2, len(data.ids[i])), dtype=np.float32)
        taught[i][0, data.labels[i][0]] = taught[i][1, data.labels[i][1]] = LABEL_LOGIT
    for c in range(0, len(data), size):
        idx = [i for i in range(c, min(c + size, len(data))) if i not in data.own]
        if not idx:
            continue
        read = [
            _as_read(data, own, idx, run(own.inputs(idx)) if own else run(data.inputs(idx)))
            for run, own in zip(teachers, reads, strict=True)
        ]
        for r, i in enumerate(idx):
            n = len(data.ids[i])
            mean = np.mean([t[r] for t in read], axis=0)[:, :n]
            taught[i] = mean.astype(np.float32)
    data.teacher = taught


def _as_read(
    data: Encoded, own: Encoded | None, idx: list[int], out: tuple[np.ndarray, ...]
) -> np.ndarray:
    """A teacher's start and end logits of rows ``idx`` (rows, 2, width), placed on the
    student's tokens of ``data`` when the teacher read them as ``own``."""
    logits = np.stack([out[0], out[1]], axis=1)
    if own is None:
        return logits
    width = max(len(data.ids[i]) for i in idx)
    placed = np.full((len(idx), 2, width), NEG, dtype=np.float32)
    for r, i in enumerate(idx):
        (first, stop), (theirs, _) = data.valid[i], own.valid[i]
        placed[r, :, 0] = logits[r, :, 0]
        placed[r, :, first:stop] = logits[r, :, theirs : theirs + stop - first]
    return placed


def _same_rows(data: Encoded, other: Encoded) -> bool:
    """Whether ``other`` holds ``data``'s rows read otherwise before the sentence: the same
    questions, and in each row the same sentence tokens and answer."""
    if other.groups != data.groups:
        return False
    for i, ((first, stop), (theirs, their_stop)) in enumerate(
        zip(data.valid, other.valid, strict=True)
    ):
        label, their_label = data.labels[i], other.labels[i]
        moved = label if label == (0, 0) else (label[0] - first + theirs, label[1] - first + theirs)
        if (
            stop - first != their_stop - theirs
            or moved != their_label
            or not np.array_equal(data.ids[i][first:stop], other.ids[i][theirs:their_stop])
        ):
            return False
    return True

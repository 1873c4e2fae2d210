"""Deciding from the reader's readings: which sentence answers, if any.

Spans are compared across sentences on raw scores (a span's start plus end logit minus its
sentence's no-answer score), never on a softmax taken inside each sentence: a sentence that
holds no answer would otherwise offer its least bad span with a high probability. The best
span answers when its margin reaches the threshold fitted on validation; otherwise the
documents do not say. Sentences are ranked by the same margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .features import Reading


@dataclass(frozen=True)
class Decision:
    order: tuple[int, ...]  # the candidates by the reader's margin, best first
    margin: float  # the best margin (-inf when there was nothing to read)
    answered: bool

    @property
    def best(self) -> int | None:
        return self.order[0] if self.order else None


def decide(readings: Sequence[Reading], threshold: float) -> Decision:
    if not readings:
        return Decision((), float("-inf"), False)
    order = tuple(sorted(range(len(readings)), key=lambda i: -readings[i].margin))
    margin = readings[order[0]].margin
    return Decision(order, margin, margin >= threshold)

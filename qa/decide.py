"""Deciding from the reader's readings: which sentence answers, if any.

Spans are compared across sentences on raw scores (a span's start plus end logit minus its
sentence's no-answer score), never on a softmax taken inside each sentence: a sentence that
holds no answer would otherwise offer its least bad span with a high probability. Sentences
are ranked by that margin, and the best span is the answer if the question is answered.

Whether it is answered is decided on more than the best margin: a *decider*, a logistic
regression fitted on validation (``training/decider.py``), weighs general evidence the service
already has (``FEATURES``: the no-answer scores of all the sentences read, where retrieval ranked
the answering sentence, how much of the question it covers, the span's length, whether
the question is a follow-up) into the log-odds that the documents answer the question. The
question is answered when that score reaches the threshold fitted on validation. A reader
whose model card records no decider decides on the best margin alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .features import Reading

if TYPE_CHECKING:
    from .retrieve import Hit


@dataclass(frozen=True)
class Evidence:
    """What the service knows of a question beside the readings: the question as read, and
    for each sentence read, its text, the sentence before it and its retrieval scores."""

    question: str
    texts: tuple[str, ...]
    previous: tuple[str, ...]
    fused: tuple[float, ...]  # retrieval's scores: dense plus weighted lexical
    dense: tuple[float, ...]
    lexical: tuple[float, ...]
    followup: bool = False

    @classmethod
    def of(
        cls, question: str, hits: Sequence[Hit], previous: Sequence[str], followup: bool
    ) -> Evidence:
        """The evidence of retrieval's ``hits`` (with the sentence before each)."""
        return cls(
            question,
            tuple(h.sentence.text for h in hits),
            tuple(previous),
            tuple(h.score for h in hits),
            tuple(h.dense for h in hits),
            tuple(h.lexical for h in hits),
            followup,
        )


# The decider's inputs, in order (``evidence_features``)
FEATURES = (
    "best margin",
    "best span score",
    "best sentence's no-answer score",
    "next best margin",  # among the other sentences read (the best minus 10 when none)
    "least no-answer score",
    "mean no-answer score",
    "answering sentence ranked 2nd",
    "answering sentence ranked 3rd",
    "answering sentence ranked 4th or later",  # when a second batch was read (``Further``)
    "its retrieval score",
    "its dense score",
    "its lexical score",
    "best dense score",
    "log(1 + words in the span)",
    "share of the span's words in the question",
    "share of the question's words (4+ letters) in the sentence or the one before",
    "follow-up",
)
WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def evidence_features(readings: Sequence[Reading], evidence: Evidence, best: int) -> list[float]:
    """The decider's inputs (``FEATURES``) for the ``best`` of ``readings`` (not empty)."""
    margins = [r.margin for r in readings]
    nulls = [r.null_score for r in readings]
    others = [m for i, m in enumerate(margins) if i != best]
    r, text = readings[best], evidence.texts[best]
    span = _words(text[r.start : r.end])
    question = _words(evidence.question)
    asked = set(question)
    long_words = {w for w in question if len(w) >= 4}
    around = set(_words(text)) | set(_words(evidence.previous[best]))
    return [
        margins[best],
        r.span_score,
        r.null_score,
        max(others) if others else margins[best] - 10.0,
        min(nulls),
        float(np.mean(nulls)),
        float(best == 1),
        float(best == 2),
        float(best >= 3),
        evidence.fused[best],
        evidence.dense[best],
        evidence.lexical[best],
        max(evidence.dense[: len(readings)]),
        math.log1p(len(span)),
        sum(w in asked for w in span) / len(span) if span else 0.0,
        len(long_words & around) / len(long_words) if long_words else 1.0,
        float(evidence.followup),
    ]


@dataclass(frozen=True)
class Decider:
    """Log-odds that the documents answer the question: a logistic regression over the
    standardised ``FEATURES``, fitted on validation and recorded in the model card. (The
    answer's confidence curve, ``Settings.right``, is the same kind of model over
    ``RIGHT_INPUTS``: its ``inputs`` name what it reads.)"""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    inputs: tuple[str, ...] = FEATURES

    def score(self, features: Sequence[float]) -> float:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return float(z @ np.asarray(self.weights) + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.inputs),
            "mean": [round(x, 6) for x in self.mean],
            "scale": [round(x, 6) for x in self.scale],
            "weights": [round(x, 6) for x in self.weights],
            "bias": round(self.bias, 6),
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], inputs: tuple[str, ...] = FEATURES, what: str = "decider"
    ) -> Decider:
        """ValueError when the card's model does not read the ``inputs`` this code makes."""
        if list(d.get("features", ())) != list(inputs):
            raise ValueError(f"its {what} reads other features than this version of qa makes")
        try:
            parts = [tuple(float(x) for x in d[k]) for k in ("mean", "scale", "weights")]
            bias = float(d["bias"])
        except (KeyError, TypeError, ValueError, OverflowError):  # a part missing or not numbers
            raise ValueError(f"its {what} is ill-formed") from None
        if (
            any(len(p) != len(inputs) for p in parts)
            or not all(math.isfinite(x) for x in (*parts[0], *parts[1], *parts[2], bias))
            or not all(s > 0 for s in parts[1])
        ):
            raise ValueError(f"its {what} is ill-formed")
        return cls(parts[0], parts[1], parts[2], bias, inputs)


# What the answer's confidence curve reads: the decider's inputs and the score that decided
RIGHT_INPUTS = (*FEATURES, "the score the threshold judged")


@dataclass(frozen=True)
class Decision:
    order: tuple[int, ...]  # the candidates by the reader's margin, best first
    margin: float  # the best margin (-inf when there was nothing to read)
    answered: bool
    score: float = -math.inf  # what the threshold judged: the decider's score, or the margin
    features: tuple[float, ...] = ()  # the best span's ``FEATURES``, when they were computed

    @property
    def best(self) -> int | None:
        return self.order[0] if self.order else None


def decide(
    readings: Sequence[Reading],
    threshold: float,
    decider: Decider | None = None,
    evidence: Evidence | None = None,
) -> Decision:
    """The readings ranked by margin, and whether the best span answers: its margin, or with
    a ``decider`` (which needs the ``evidence``) the decider's score, against ``threshold``."""
    if not readings:
        return Decision((), -math.inf, False)
    order = tuple(sorted(range(len(readings)), key=lambda i: -readings[i].margin))
    margin = readings[order[0]].margin
    score = margin
    features: tuple[float, ...] = ()
    if evidence is not None:
        features = tuple(evidence_features(readings, evidence, order[0]))
    if decider is not None:
        if evidence is None:
            raise ValueError("a decider needs the question's evidence")
        score = decider.score(features)
    return Decision(order, margin, score >= threshold, score, features)

"""Deciding across sentences on raw margins, and the confidence curves."""

from __future__ import annotations

import math

import pytest

from qa.decide import decide
from qa.features import Reading
from qa.read import Settings


def reading(span: float, null: float) -> Reading:
    return Reading(0, 1, span, null)


def test_the_best_margin_answers_when_it_reaches_the_threshold():
    readings = [reading(3.0, 2.0), reading(9.0, 4.0), reading(1.0, 5.0)]
    d = decide(readings, threshold=2.0)
    assert d.answered and d.best == 1 and d.margin == 5.0
    assert d.order == (1, 0, 2)
    assert not decide(readings, threshold=5.5).answered


def test_margins_compare_across_sentences_not_probabilities_within_one():
    """A sentence whose span barely beats its own no-answer score loses to one whose span
    is far above its no-answer score, even if a softmax inside each sentence would favour
    the first (its span holds nearly all of its probability mass)."""
    weak_but_sure = reading(2.0, 1.0)  # margin 1
    strong = reading(12.0, 4.0)  # margin 8
    assert decide([weak_but_sure, strong], 0.0).best == 1


def test_nothing_to_read_is_no_answer():
    d = decide([], 0.0)
    assert not d.answered and d.best is None and d.margin == -math.inf


def test_confidence_follows_the_calibration():
    s = Settings(5, 1.0, 2.0, -1.0, -1.5, 0.5)
    assert s.confidence(0.5, answered=True) == pytest.approx(0.5)
    assert s.confidence(3.0, answered=True) > 0.99
    assert s.confidence(-10.0, answered=False) > 0.99
    assert s.confidence(-1e9, answered=True) == 0.0

"""Deciding across sentences on raw margins, and the confidence curves."""

from __future__ import annotations

import math

import pytest

from qa.decide import FEATURES, Decider, Evidence, decide, evidence_features
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


EVIDENCE = Evidence(
    question="Who founded the Harbour Trust in 1901?",
    texts=(
        "The museum opened later.",
        "Mary Keane founded the Harbour Trust, it said.",
        "Nothing here.",
    ),
    previous=("", "In 1901 the town grew.", ""),
    fused=(0.9, 0.7, 0.5),
    dense=(0.6, 0.5, 0.4),
    lexical=(0.3, 0.1, 0.2),
    followup=True,
)


def feature(values: list[float], name: str) -> float:
    return values[FEATURES.index(name)]


def test_the_deciders_evidence_follows_its_definitions():
    # the second sentence answers with "Mary Keane founded" (characters 0 to 18)
    readings = [Reading(0, 3, 1.0, 4.0), Reading(0, 18, 9.0, 2.0), Reading(0, 7, 0.0, 1.0)]
    f = evidence_features(readings, EVIDENCE, best=1)
    assert len(f) == len(FEATURES)
    assert feature(f, "best margin") == 7.0
    assert feature(f, "best span score") == 9.0
    assert feature(f, "best sentence's no-answer score") == 2.0
    assert feature(f, "next best margin") == -1.0  # -3 and -1 for the others
    assert feature(f, "least no-answer score") == 1.0
    assert feature(f, "mean no-answer score") == pytest.approx(7.0 / 3)
    assert feature(f, "answering sentence ranked 2nd") == 1.0
    assert feature(f, "answering sentence ranked 3rd") == 0.0
    assert feature(f, "its retrieval score") == 0.7
    assert feature(f, "its dense score") == 0.5
    assert feature(f, "its lexical score") == 0.1
    assert feature(f, "best dense score") == 0.6  # the first sentence's
    assert feature(f, "log(1 + words in the span)") == pytest.approx(math.log(4))
    # "founded" is asked; "mary" and "keane" are not
    assert feature(f, "share of the span's words in the question") == pytest.approx(1 / 3)
    # founded, harbour, trust (the sentence) and 1901 (the one before); not "who" (3 letters)
    name = "share of the question's words (4+ letters) in the sentence or the one before"
    assert feature(f, name) == 1.0
    assert feature(f, "follow-up") == 1.0
    alone = evidence_features(readings[:1], EVIDENCE, best=0)
    assert feature(alone, "next best margin") == feature(alone, "best margin") - 10.0
    # the first sentence (with nothing before it) has none of the four
    assert feature(alone, name) == 0.0
    assert feature(alone, "share of the span's words in the question") == 1.0  # "The"
    third = evidence_features(readings, EVIDENCE, best=2)
    assert feature(third, "answering sentence ranked 3rd") == 1.0
    assert feature(third, name) == 0.0  # "Nothing here."


def test_a_decider_answers_on_its_score_and_ranks_on_the_margin():
    """Two questions whose best margins are equal: the one whose other sentences are sure
    they hold no answer is judged unanswered by a decider that learned that; the margin
    alone cannot tell them apart."""
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("mean no-answer score")] = -1.0
    decider = Decider((0.0,) * len(FEATURES), (1.0,) * len(FEATURES), tuple(weights), 3.0)
    doubtful = [Reading(0, 3, 6.0, 1.0), Reading(0, 3, 1.0, 0.0), Reading(0, 3, 0.0, 0.5)]
    denied = [Reading(0, 3, 6.0, 1.0), Reading(0, 3, 1.0, 8.0), Reading(0, 3, 0.0, 9.0)]
    for readings in (doubtful, denied):
        assert decide(readings, 4.0).answered  # the margin alone: 5 for both
    d = decide(doubtful, 0.0, decider, EVIDENCE)
    assert d.answered and d.score == pytest.approx(3.0 - 0.5) and d.margin == 5.0
    d = decide(denied, 0.0, decider, EVIDENCE)
    assert not d.answered and d.score == pytest.approx(3.0 - 6.0) and d.order == (0, 1, 2)
    with pytest.raises(ValueError, match="evidence"):
        decide(doubtful, 0.0, decider)


def test_a_decider_round_trips_through_its_card_and_refuses_other_features():
    n = len(FEATURES)
    decider = Decider(tuple(range(n)), (2.0,) * n, (0.5,) * n, -1.0)
    card = decider.to_dict()
    assert Decider.from_dict(card) == decider
    assert card["features"] == list(FEATURES)
    with pytest.raises(ValueError, match="other features"):
        Decider.from_dict({**card, "features": card["features"][:-1]})
    with pytest.raises(ValueError, match="ill-formed"):
        Decider.from_dict({**card, "scale": [0.0] * n})
    for broken in ({"bias": float("nan")}, {"weights": [float("inf")] * n}):
        with pytest.raises(ValueError, match="ill-formed"):
            Decider.from_dict({**card, **broken})


def test_citations_score_on_their_own_curve_when_the_card_has_one():
    s = Settings(3, 0.0, 2.0, 0.0, 1.0, 0.0, citation=(1.0, -2.0))
    assert s.citation_score(2.0) == pytest.approx(0.5)
    # without one, the answer curve (sigmoid(2 x)), not the abstention's (sigmoid(x))
    without = Settings(3, 0.0, 2.0, 0.0, 1.0, 0.0)
    assert without.citation_score(1.0) == pytest.approx(1 / (1 + math.exp(-2.0)))

"""Reading a second batch when the first leaves the decision unsure: the answering path reads
it only in the band and decides on all the readings, and the band is chosen where reading
more pays, on outcomes whose answer the test knows."""

from __future__ import annotations

import math
import random

import pytest

from qa.read import Further, Settings
from qa.training.choice import first_batch_curves
from qa.training.decider import crossfit
from qa.training.fit import Outcome, choose_threshold_on, metrics, objective
from qa.training.further import SHARE, choose_band, crossfit_further, decided
from tests.test_answer import Scripted, ask, check_invariants

FURTHER = Further(below=0.5, threshold=1.0, answer=(2.0, 0.0), abstain=(-2.0, 0.0))


def scripted(margins: list[float]) -> Scripted:
    """Reads 3 at a time; the first 3 answer from a margin of 2, and from 0.5 to 2 the next 3
    are read and the 6 answer from 1."""
    reader = Scripted(margins, candidates=3, threshold=2.0)
    reader.settings = Settings(3, 2.0, 1.0, 0.0, -1.0, 0.0, further=FURTHER)
    return reader


QUESTION = "Who was instructed to use military force?"


def test_a_sure_first_batch_decides_alone(engine):
    for margins, answered in (([3.0, 0.0, 1.0], True), ([0.4, 0.0, 0.1, 9.0], False)):
        reader = scripted(margins)
        answer = ask(engine, reader, QUESTION)
        assert len(reader.calls) == 1  # over the band it answers, under it it does not
        assert (answer.answer is not None) == answered
        check_invariants(engine, answer)
    # the first batch's own curve: 0.4 is under the band, so the 9.0 after it was not read
    assert answer.confidence == pytest.approx(reader.settings.confidence(0.4, False))


def test_in_the_band_the_next_batch_is_read_and_all_decide(engine):
    reader = scripted([0.8, 0.1, 0.2, 0.3, 1.5, -1.0])
    answer = ask(engine, reader, QUESTION)
    assert [len(call[1]) for call in reader.calls] == [3, 3]  # two batches of N
    read = [c.sentence for call in reader.calls for c in call[1]]
    # the 5th sentence's span answers (1.5 reaches the further threshold) and is cited first
    assert answer.citations[0].text == read[4]
    assert answer.answer == read[4].split(" ")[0]
    assert [c.text for c in answer.citations[1:]] == [read[0], read[3]]  # by margin, of the 6
    assert answer.confidence == pytest.approx(FURTHER.confidence(1.5, True))
    check_invariants(engine, answer)


def test_in_the_band_the_documents_may_still_not_say(engine):
    reader = scripted([0.8, 0.1, 0.2, 0.3, 0.9, -1.0])
    answer = ask(engine, reader, QUESTION)
    assert len(reader.calls) == 2 and answer.answer is None
    assert answer.confidence == pytest.approx(FURTHER.confidence(0.9, False))


def test_the_further_reading_does_not_depend_on_how_many_citations_are_asked_for(engine):
    margins = [0.8, 0.1, 0.2, 0.3, 1.5, -1.0, 4.0, 0.0, 0.5]
    answers = []
    for k in (1, 3, 6, 7, 9):
        reader = scripted(margins)
        answers.append(ask(engine, reader, QUESTION, top_k=k))
        # each sentence is read in its batch of 3, whatever top_k is
        assert all(len(call[1]) == 3 for call in reader.calls)
    for few, many in zip(answers, answers[1:], strict=False):
        assert (many.answer, many.confidence) == (few.answer, few.confidence)
        assert many.citations[: len(few.citations)] == few.citations
    # the 7th sentence (4.0) is read after the decision: the first further citation, not
    # the answer (the 5th sentence's 1.5 answers)
    read = [c.sentence for call in reader.calls for c in call[1]]
    assert answers[-1].answer == read[4].split(" ")[0]
    assert answers[-1].citations[6].text == read[6]
    assert answers[-1].citations[6].score == reader.settings.citation_score(4.0)


def test_a_further_reading_round_trips_through_the_card_and_refuses_bad_values():
    card = {
        "candidates": 3,
        "threshold": 2.0,
        "calibration": {"answer": [1.0, 0.0], "abstain": [-1.0, 0.0]},
        "further": FURTHER.to_dict(),
    }
    assert Settings.from_card(card).further == FURTHER
    for bad, reason in (
        ({**FURTHER.to_dict(), "below": math.inf}, "not finite"),
        ({**FURTHER.to_dict(), "threshold": "nan"}, "not finite"),
        ({**FURTHER.to_dict(), "decider": None}, "decider is not an object"),
        ([1, 2], "not an object"),
    ):
        with pytest.raises(ValueError, match=reason):
            Settings.from_card({**card, "further": bad})
    without = {k: v for k, v in card.items() if k != "further"}
    assert Settings.from_card(without).further is None


def staged(rng: random.Random, documents: int, per: int, name: str):
    """Questions whose first batch is sure of most: the answerable ones with a high score and a
    right span, the unanswerable with a low one. A fifth of the answerable ones have their
    right sentence in the second batch: the first batch scores them in the middle and wrong,
    the 2N high and right. Some unanswerable ones score in the middle too, and stay low on 2N."""
    first, second = [], []
    for d in range(documents):
        for _ in range(per):
            answerable = rng.random() < 0.7
            later = answerable and rng.random() < 0.2
            middle = later or (not answerable and rng.random() < 0.2)
            s1 = rng.uniform(0.0, 1.0) if middle else rng.gauss(3.0 if answerable else -3.0, 0.5)
            s2 = rng.gauss(3.0 if answerable else -3.0, 0.5)
            doc = f"{name}{d}"
            first.append(Outcome(answerable, False, s1, answerable and not later, False, 10, doc))
            second.append(Outcome(answerable, False, s2, answerable, True, 10, doc))
    return first, second


def test_the_band_reads_more_where_it_pays_and_no_more_than_its_share():
    rng = random.Random(3)
    (f1, s1), (f2, s2) = staged(rng, 20, 30, "a"), staged(rng, 10, 30, "b")
    band = choose_band([f1, f2], [s1, s2])
    assert 0 < band.share <= SHARE
    assert -1.0 < band.below < band.threshold < 2.0  # in the middle: the sure ones are not
    _, alone = choose_threshold_on([f1, f2])
    assert band.score == 0.0  # every target holds, where the first batch alone falls short
    assert sum(objective(m) for m in alone) / 2 < -0.05
    done, by_first, by_second = decided(f1, s1, band)
    assert len(by_first) + len(by_second) == len(f1) and by_second
    assert metrics(done, 0.0)["answer_hit"] >= 0.85
    # when the 2N see no more than the first N, reading more is never worth it
    same = choose_band([f1, f2], [f1, f2])
    assert same.share == 0.0 and same.below == same.threshold


def test_the_further_reading_is_judged_out_of_sample_by_document():
    rng = random.Random(4)
    (f1, s1), (f2, s2) = staged(rng, 20, 20, "a"), staged(rng, 10, 20, "b")
    first, second = {"a": f1, "b": f2}, {"a": s1, "b": s2}
    result = crossfit_further(first, second, learn=False)
    assert set(result["sets"]) == {"a", "b"} and 0 < result["share"]["a"] < 0.5
    assert result["mean"] > crossfit(first)["margin"]["mean"] + 0.05


def test_with_a_further_reading_the_first_batch_keeps_the_curves_fitted_on_what_it_decides():
    pooled = {"answer": [1, 0], "abstain": [-1, 0], "right": {"bias": 0}, "citation": [2, 0]}
    first = {"answer": [3, 1], "abstain": [-3, 1], "right": {"bias": 1}, "citation": [9, 9]}
    assert first_batch_curves(pooled, first) == {**first, "citation": [2, 0]}
    # a pooled answer curve the first batch's fit lacks is dropped, not kept
    without = {k: v for k, v in first.items() if k != "right"}
    assert first_batch_curves(pooled, without) == {**without, "citation": [2, 0]}

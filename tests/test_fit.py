"""Choosing on validation: the threshold, the confidence curves and the reliability table,
on outcomes whose answer the test knows."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from qa.decide import FEATURES, RIGHT_INPUTS, Decider
from qa.evaluate import reliability
from qa.read import Settings
from qa.training.choice import TOLERANCE, least_within_tolerance
from qa.training.decider import crossfit, crossfit_curves, decided_by, fit_decider
from qa.training.fit import (
    LONGEST_MEDIAN,
    TARGETS,
    Outcome,
    calibrate,
    choose_threshold,
    document_of,
    fit_platt,
    fit_right,
    metrics,
    objective,
    short_enough,
    shortfall,
)


def outcome(margin: float, answerable: bool, hit: bool = True) -> Outcome:
    return Outcome(answerable, False, margin, answerable and hit, answerable, 10)


def test_metrics_follow_the_eval_definitions():
    outs = [outcome(5, True), outcome(1, True), outcome(4, False), outcome(-2, False)]
    m = metrics(outs, threshold=3.0)
    assert m["answer_hit"] == 0.5 and m["false_abstain"] == 0.5 and m["abstain"] == 0.5
    assert m["support@1"] == 1.0 and m["answer_chars_median"] == 10
    assert objective(m) == pytest.approx(-(0.35 + 0.45 + 0.40))  # short of each target


def test_the_objective_is_zero_when_every_target_holds_and_skips_what_a_set_lacks():
    assert objective({"answer_hit": 0.9, "false_abstain": 0.03, "abstain": 0.95}) == 0.0
    assert shortfall({"answer_hit": 0.9, "false_abstain": 0.03, "abstain": None}) == 0.0
    assert shortfall({"answer_hit": 0.8, "false_abstain": 0.1, "abstain": None}) == (
        pytest.approx((TARGETS["answer_hit"] - 0.8) + (0.1 - TARGETS["false_abstain"]))
    )
    # a measured 0.0 is a rate like any other, not a missing one
    worst = {"answer_hit": 0.0, "false_abstain": 1.0, "abstain": 0.0}
    assert shortfall(worst) == pytest.approx(0.85 + 0.95 + 0.90)
    assert shortfall({"answer_hit": 0.9, "false_abstain": 0.0, "abstain": 0.0}) == 0.9
    with pytest.raises(ValueError, match="no rate"):
        shortfall({"answer_hit": None, "false_abstain": None, "abstain": None})


def test_the_threshold_separates_answerable_from_unanswerable_when_it_can():
    outs = [outcome(m, True) for m in (3, 4, 5)] + [outcome(m, False) for m in (-1, 0, 1)]
    threshold, m = choose_threshold(outs)
    assert 1 < threshold < 3
    assert m["answer_hit"] == 1.0 and m["abstain"] == 1.0


def test_among_equal_objectives_the_lowest_threshold_wins():
    """20 right answers above 10, one wrong span at 3, one unanswerable at -1: answering
    the wrong span (cut 1.0) and refusing it (cut 6.5, false_abstain 1/21 <= 0.05) both
    meet every target; the lower cut refuses less."""
    outs = [outcome(10 + i, True) for i in range(20)]
    outs += [outcome(3, True, hit=False), outcome(-1, False)]
    threshold, m = choose_threshold(outs)
    assert threshold == 1.0 and m["false_abstain"] == 0.0 and m["abstain"] == 1.0
    flipped = metrics(outs, 6.5)
    assert objective(flipped) == objective(m) == 0.0  # a tie, broken downwards


def test_the_threshold_is_the_one_a_pass_over_every_cut_would_choose():
    """The choice counts each cut's rates over sorted scores; it must choose what scoring
    ``metrics`` at every cut chooses: random sets with tied, infinite and NaN scores,
    judged by a decider or by the margin, each set weighing the same."""
    from qa.training.fit import choose_threshold_on

    def by_every_cut(sets):
        scores = sorted({o.score for s in sets for o in s if np.isfinite(o.score)})
        cuts = [scores[0] - 1.0] + [(a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)]
        cuts.append(scores[-1] + 1.0)

        def score(t):
            return round(sum(objective(metrics(s, t)) for s in sets) / len(sets), 6)

        best = max(cuts, key=lambda t: (score(t), -t))
        return best, [metrics(s, best) for s in sets]

    rng = random.Random(5)
    for trial in range(40):
        sets = []
        for _ in range(rng.randint(1, 3)):
            outs = []
            for _ in range(rng.randint(1, 60)):
                margin = rng.choice([rng.randint(-5, 5) / 2, rng.gauss(0, 3), -math.inf])
                o = Outcome(
                    rng.random() < 0.7,
                    rng.random() < 0.2,
                    margin,
                    rng.random() < 0.6,
                    rng.random() < 0.8,
                    rng.randint(1, 50),
                )
                o = replace(o, hit=o.answerable and o.hit)
                if trial % 2:  # judged by a decider: its scores may be infinite or NaN
                    judged = rng.choice([margin + rng.gauss(0, 1), math.inf, math.nan])
                    o = replace(o, judged=judged)
                outs.append(o)
            sets.append(outs)
        if not any(np.isfinite(o.score) for s in sets for o in s):
            continue
        assert choose_threshold_on(sets) == by_every_cut(sets), trial


def test_a_false_abstention_costs_more_than_a_wrong_answer():
    """Refusing an answerable question misses its answer and is a false abstention, where a
    wrong span only misses: the threshold does not rise past an answerable question to
    refuse one unanswerable question of two (answer_hit + abstain alone would, to 2 < t < 5)."""
    outs = [outcome(5, True), outcome(1, True, hit=False), outcome(2, False), outcome(-1, False)]
    threshold, m = choose_threshold(outs)
    assert -1 < threshold < 1
    assert m["false_abstain"] == 0.0 and m["abstain"] == 0.5


def test_platt_recovers_a_known_curve_and_stays_finite_on_separable_data():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-(0.8 * x - 4)))
    a, b = fit_platt(x, y)
    assert a == pytest.approx(0.8, rel=0.15) and b == pytest.approx(-4, rel=0.15)
    a, b = fit_platt([8, 9, 10, 1, 2, 3], [True] * 3 + [False] * 3)
    assert math.isfinite(a) and math.isfinite(b) and a > 0
    assert fit_platt([], []) == (1.0, 0.0)


def test_reliability_bins_by_confidence():
    pairs = [(0.95, True)] * 9 + [(0.95, False)] + [(0.3, False)] * 3 + [(1.0, True)]
    rows = {r["bin"]: r for r in reliability(pairs)}
    assert rows["0.9-1.0"]["count"] == 11 and rows["0.9-1.0"]["right"] == round(10 / 11, 3)
    assert rows["0.0-0.5"] == {"bin": "0.0-0.5", "count": 3, "confidence": 0.3, "right": 0.0}


def test_the_least_setting_within_tolerance_of_the_best_is_chosen():
    scores = {3: 1.30, 4: 1.40 - TOLERANCE / 2, 6: 1.40, 8: 1.39}
    assert least_within_tolerance(scores) == 4
    assert least_within_tolerance({0.0: 1.0, 2.0: 1.0 + 2 * TOLERANCE}) == 2.0
    assert least_within_tolerance({5.0: 1.0}) == 5.0


def test_a_slack_must_keep_the_median_right_answer_short():
    assert short_enough({"answer_chars_median": LONGEST_MEDIAN - 1})
    assert not short_enough({"answer_chars_median": LONGEST_MEDIAN})
    assert short_enough({"answer_chars_median": None})  # no right answer at all


def evidence_outcomes(rng: random.Random, documents: int, per: int, name: str) -> list[Outcome]:
    """Questions whose best margin says nothing of whether they are answerable, while the
    first feature (noisily) does: what a decider can learn and a threshold cannot."""
    outs = []
    for d in range(documents):
        for _ in range(per):
            answerable = rng.random() < 0.7
            margin = rng.gauss(0.0, 1.0)
            features = [rng.gauss(0.0, 1.0) for _ in FEATURES]
            features[0] = rng.gauss(1.5 if answerable else -1.5, 1.0)
            outs.append(
                Outcome(
                    answerable,
                    False,
                    margin,
                    answerable,
                    answerable,
                    10,
                    f"{name}{d}",
                    tuple(features),
                )
            )
    return outs


def test_an_answers_confidence_reads_the_spans_evidence_not_only_the_score_that_decided():
    """Answers given with the same score, half right: the right ones have a span the
    question's words do not fill. A curve of the score alone gives every one the same
    confidence; the answer curve tells them apart, and stays calibrated in each group."""
    rng = random.Random(3)
    i = FEATURES.index("share of the span's words in the question")
    outs = []
    for k in range(800):
        right = k % 2 == 0
        features = [rng.gauss(0, 1) for _ in FEATURES]
        features[i] = rng.uniform(0.0, 0.3) if right else rng.uniform(0.5, 1.0)
        hit = right if rng.random() < 0.9 else not right
        outs.append(Outcome(True, False, 4.0, hit, True, 10, f"d{k % 20}", tuple(features), 4.0))
    outs += [outcome(-5.0, False) for _ in range(50)]  # withheld: under the threshold
    curves = calibrate(outs, 0.0)
    right = Decider.from_dict(curves["right"], RIGHT_INPUTS, "answer curve")
    assert right.weights[i] < -1.0
    settings = Settings(3, 0.0, *curves["answer"], *curves["abstain"], right=right)
    by_score = {settings.confidence(o.score, True) for o in outs[:800]}
    assert len(by_score) == 1 and 0.4 < by_score.pop() < 0.6
    for group in (outs[:800:2], outs[1:800:2]):
        p = np.mean([settings.confidence(o.score, True, o.features) for o in group])
        assert p == pytest.approx(np.mean([o.hit for o in group]), abs=0.05)
    # without an answer's inputs (or for an abstention) the score's curve answers
    assert settings.confidence(4.0, True, ()) == settings.confidence(4.0, True)
    assert settings.confidence(-5.0, False, outs[0].features) == settings.confidence(-5.0, False)
    assert fit_right([outcome(1.0, True)]) is None  # no inputs: no curve
    # out of sample (folds by document), the inputs' curve beats the score's, and only its
    # confident answers are right 9 times in 10
    curves = crossfit_curves({"a": outs[:800], "b": outs[800:]}, by_decider=False)
    score, inputs = curves["score"], curves["inputs"]
    assert inputs["log_loss"] < score["log_loss"] - 0.2
    assert set(score["sets"]) == {"a"}  # "b" has no answer given
    assert score["sets"]["a"]["answers"] == inputs["sets"]["a"]["answers"] == 800
    assert score["sets"]["a"]["at 0.8"] == 0
    assert inputs["sets"]["a"]["at 0.8"] > 200 and inputs["sets"]["a"]["right at 0.8"] > 0.85
    assert crossfit_curves({"a": outs[:800:20]}, by_decider=False) == {}  # one document


def test_the_decider_learns_what_the_margin_lacks_and_is_judged_out_of_sample():
    rng = random.Random(5)
    sets = {"a": evidence_outcomes(rng, 10, 40, "a"), "b": evidence_outcomes(rng, 6, 30, "b")}
    decider = fit_decider(list(sets.values()))
    assert decider.weights[0] > 1.0 and all(abs(w) < 0.5 for w in decider.weights[1:])
    # scored by the decider, the threshold separates most of them; by the margin, not
    by_decider, m = choose_threshold(decided_by(sets["a"], decider))
    _, by_margin = choose_threshold(decided_by(sets["a"], None))
    assert m["abstain"] > 0.8 and m["false_abstain"] < 0.2
    assert objective(m) > objective(by_margin) + 0.2
    result = crossfit(sets)
    assert result["documents"] == 16 and result["folds"] == 5
    assert set(result["margin"]["sets"]) == {"a", "b"}
    assert result["decider"]["mean"] > result["margin"]["mean"] + 0.2
    # a question with nothing read is never answered, whatever the decider
    empty = Outcome(True, False, float("-inf"), False, False, 0, "a0")
    assert decided_by([empty], decider)[0].score == float("-inf")


def test_crossfitting_keeps_each_document_in_one_fold():
    """Documents whose questions share their features and their label: a decider learns
    them by heart (in sample it all but meets the targets), which says nothing of another
    document. Judged out of sample by document it gains nothing over the margin; were a
    document split between fitting and judging, it would seem to gain a great deal."""
    rng = random.Random(0)
    outs = []
    for d in range(30):
        answerable = rng.random() < 0.5
        base = [rng.gauss(0.0, 1.0) for _ in FEATURES]
        for _ in range(12):
            features = tuple(b + rng.gauss(0.0, 0.05) for b in base)
            outs.append(
                Outcome(
                    answerable,
                    False,
                    rng.gauss(0, 1),
                    answerable,
                    answerable,
                    10,
                    f"d{d}",
                    features,
                )
            )
    _, by_heart = choose_threshold(decided_by(outs, fit_decider([outs])))
    _, by_margin = choose_threshold(decided_by(outs, None))
    assert objective(by_heart) > objective(by_margin) + 0.5
    judged = crossfit({"a": outs})
    assert judged["decider"]["mean"] < judged["margin"]["mean"] + 0.1
    split = [replace(o, document=f"q{i}") for i, o in enumerate(outs)]  # a fold per question
    assert crossfit({"a": split})["decider"]["mean"] > judged["margin"]["mean"] + 0.3


def test_a_question_belongs_to_its_document():
    from qa.corpus import Example

    assert document_of(Example("x-q1", "news/a.txt", ("Who?",), True, (), ())) == "news/a.txt"
    assert document_of(Example("va2-d1-q01", "", ("Who?",), True, (), ())) == "va2-d1"
    assert document_of(Example("d01", "", ("Who?",), True, (), ())) == ""

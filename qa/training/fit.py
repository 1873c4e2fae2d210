"""Scoring on validation: what answering each question gives, the metrics and the objective,
the threshold that maximises it, and the confidence curves. Torch-free: it works on
readings, whatever model made them (``choice.py`` makes the choice with them).

Each validation question is scored with the definitions of ``shared/eval/README.md`` (an
answer hits when it contains an acceptable answer; the first citation supports it when it
holds a support string), through the same ``decide`` the service uses.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..corpus import Example
from ..decide import RIGHT_INPUTS, Decider, Evidence, decide
from ..evaluate import is_hit, supports
from ..features import Reading
from ..read import Reader
from .data import Asked


@dataclass(frozen=True)
class Outcome:
    answerable: bool
    followup: bool
    margin: float  # the best margin among the sentences read
    hit: bool  # the best span contains an acceptable answer
    supported: bool  # the best-ranked sentence holds a support string
    length: int  # characters of the best span
    document: str = ""  # what cross-fitting keeps together (``document_of``)
    features: tuple[float, ...] = ()  # the decider's inputs (none when nothing was read)
    judged: float | None = None  # the decider's score, when a decider judges (``decided_by``)

    @property
    def score(self) -> float:
        """What the threshold judges: the decider's score, or the best margin without one."""
        return self.margin if self.judged is None else self.judged


def document_of(example: Example) -> str:
    """The document a validation question is about: the corpus names it; a question set's
    items are named after their document (``va2-d1-q01`` is about ``va2-d1``), and an id
    without a dash counts as one document for the whole set."""
    return example.doc or example.id.rpartition("-")[0]


def outcomes(
    asked: Sequence[Asked], readings: Sequence[Sequence[Reading]], n: int
) -> list[Outcome]:
    """What answering each question from its first ``n`` sentences gives, before the
    threshold (the best span and whether it is right, and the decider's inputs)."""
    out = []
    for a, rs in zip(asked, readings, strict=True):
        rs = list(rs[:n])
        e = a.example
        # a follow-up as the service reads it: with its last turn only if it refers back
        evidence = Evidence.of(a.question, a.hits[:n], a.previous[:n], bool(a.last_question))
        d = decide(rs, 0.0, None, evidence)  # the inputs as the service computes them
        if d.best is None:
            out.append(
                Outcome(e.answerable, e.followup, float("-inf"), False, False, 0, document_of(e))
            )
            continue
        r, text = rs[d.best], a.hits[d.best].sentence.text
        span = text[r.start : r.end]
        cited = {"text": text}
        out.append(
            Outcome(
                e.answerable,
                e.followup,
                d.margin,
                e.answerable and is_hit(span, e.answer),
                e.answerable and supports(cited, e.support),
                len(span),
                document_of(e),
                d.features,
            )
        )
    return out


def metrics(outs: Sequence[Outcome], threshold: float) -> dict[str, float | None]:
    """The eval metrics of answering when the score (the decider's, or the best margin)
    reaches ``threshold``."""
    answerable = [o for o in outs if o.answerable]
    unanswerable = [o for o in outs if not o.answerable]
    followups = [o for o in answerable if o.followup]

    def rate(xs: list[Outcome], pred: Callable[[Outcome], bool]) -> float | None:
        return round(sum(1 for x in xs if pred(x)) / len(xs), 4) if xs else None

    def answers(o: Outcome) -> bool:
        return o.score >= threshold

    hits = [o.length for o in answerable if answers(o) and o.hit]
    return {
        "support@1": rate(answerable, lambda o: o.supported),
        "answer_hit": rate(answerable, lambda o: answers(o) and o.hit),
        "false_abstain": rate(answerable, lambda o: not answers(o)),
        "abstain": rate(unanswerable, lambda o: not answers(o)),
        "followup": rate(followups, lambda o: answers(o) and o.hit and o.supported),
        "answer_chars_median": statistics.median(hits) if hits else None,
    }


Metrics = dict[str, Any]

LONGEST_MEDIAN = 40  # characters: a choice may not lengthen the median right answer to this


def short_enough(m: Metrics) -> bool:
    """Whether the median right answer is under LONGEST_MEDIAN characters."""
    median = m.get("answer_chars_median")
    return median is None or median < LONGEST_MEDIAN


# The targets for the rates the threshold moves: answer_hit and abstain at least,
# false_abstain at most (shared/eval/README.md defines them)
TARGETS = {"answer_hit": 0.85, "false_abstain": 0.05, "abstain": 0.90}


def shortfall(m: Metrics) -> float:
    """How far the rates fall short of TARGETS, in rate points summed (0 when all hold). A
    rate the set cannot measure (no unanswerable questions: no abstain) is left out; a set
    that measures none of them is an error, not a perfect score. Once every target holds,
    nothing more is rewarded: ties go to the lowest threshold (``choose_threshold_on``)."""
    total, measured = 0.0, 0
    for name, target in TARGETS.items():
        value = m.get(name)
        if value is None:
            continue
        gap = value - target if name == "false_abstain" else target - value
        total += max(0.0, gap)
        measured += 1
    if not measured:
        raise ValueError(f"no rate to compare with the targets in {sorted(m)}")
    return total


def objective(m: Metrics) -> float:
    """What validation maximises: nearness to the targets (minus the shortfall). A false
    abstention costs twice, as a missed answer and as a refusal, where a wrong answer costs
    once; an answer to an unanswerable question costs as long as abstain is under target.
    Each side is a rate, so the share of unanswerable questions does not tilt it."""
    return -shortfall(m)


def choose_threshold(outs: Sequence[Outcome]) -> tuple[float, Metrics]:
    """The threshold that maximises the objective on one set of outcomes."""
    threshold, (m,) = choose_threshold_on([outs])
    return threshold, m


def choose_threshold_on(sets: Sequence[Sequence[Outcome]]) -> tuple[float, list[Metrics]]:
    """The threshold (midway between two observed scores) that maximises the mean of the
    objective over ``sets``, each set weighing the same whatever its size."""
    scores = sorted({o.score for s in sets for o in s if np.isfinite(o.score)})
    cuts = [scores[0] - 1.0] if scores else [0.0]
    cuts += [(a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)]
    cuts += [scores[-1] + 1.0] if scores else []
    rates = [_target_rates(s, np.array(cuts)) for s in sets]
    by_cut = [
        round(sum(objective({k: r[k][i] for k in r}) for r in rates) / len(sets), 6)
        for i in range(len(cuts))
    ]
    # among equal objectives, the lowest threshold: it abstains least on answerable ones
    best = max(range(len(cuts)), key=lambda i: (by_cut[i], -cuts[i]))
    return float(cuts[best]), [metrics(s, cuts[best]) for s in sets]


def _target_rates(outs: Sequence[Outcome], cuts: np.ndarray) -> dict[str, list[float | None]]:
    """The rates of TARGETS on ``outs`` at each threshold of ``cuts``, as ``metrics`` gives
    them (rounded alike), counted over sorted scores: the choice weighs thousands of
    thresholds on thousands of questions, each cut costing a binary search, not a pass."""

    def answered(xs: list[float]) -> np.ndarray:  # how many score at least each cut
        ordered = np.sort(np.array([x for x in xs if not np.isnan(x)], dtype=np.float64))
        return len(ordered) - np.searchsorted(ordered, cuts, side="left")

    answerable = [o for o in outs if o.answerable]
    unanswerable = [o for o in outs if not o.answerable]
    counts = {
        "answer_hit": (answered([o.score for o in answerable if o.hit]), len(answerable)),
        "false_abstain": (
            len(answerable) - answered([o.score for o in answerable]),
            len(answerable),
        ),
        "abstain": (
            len(unanswerable) - answered([o.score for o in unanswerable]),
            len(unanswerable),
        ),
    }
    rates: dict[str, list[float | None]] = {}
    for name in TARGETS:  # a target not counted above is a KeyError, not a silent change
        got, of = counts[name]
        rates[name] = [round(int(c) / of, 4) if of else None for c in got]
    return rates


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic regression: sigmoid(weights . (x - mean) / scale + bias)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float


def fit_logistic(
    x: np.ndarray,
    labels: Sequence[bool],
    weights: np.ndarray | None = None,
    penalty: float = 0.0,
    iterations: int = 100,
) -> Logistic:
    """A logistic regression of ``labels`` on the rows of ``x``, fitted on standardised
    columns by damped Newton steps on the (sample-``weights``ed) log loss, with an L2
    ``penalty`` on the weights (not the bias) and Platt's smoothed targets, so that a clean
    separation, or one class alone, does not run off to infinity."""
    x = np.asarray(x, dtype=np.float64).reshape(len(labels), -1)
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w * (len(w) / w.sum())
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    pos = y.sum()
    t = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (len(y) - pos + 2))
    reg = np.full(z.shape[1], float(penalty))
    reg[-1] = 0.0

    def loss(beta: np.ndarray) -> float:
        s = z @ beta
        return float(np.sum(w * (np.logaddexp(0.0, s) - t * s)) + 0.5 * reg @ beta**2)

    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(z @ beta)))
        g = z.T @ (w * (p - t)) + reg * beta
        h = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(h, g)
        rate, before = 1.0, loss(beta)
        while rate > 1e-6 and loss(beta - rate * step) > before:
            rate /= 2  # a Newton step that overshoots is halved until it helps
        beta = beta - rate * step
        if np.max(np.abs(rate * step)) < 1e-10:
            break
    return Logistic(mean, scale, beta[:-1], float(beta[-1]))


def fit_platt(values: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """Logistic calibration p = sigmoid(a x + b) (``fit_logistic`` of one value), returned
    for the raw values."""
    if len(values) == 0:
        return 1.0, 0.0
    f = fit_logistic(np.asarray(values, dtype=np.float64), labels)
    a = float(f.weights[0] / f.scale[0])
    return a, float(f.bias - a * f.mean[0])


PENALTY = 1.0  # the L2 penalty of the decider and of the answer curve, on standardised weights


def has_inputs(o: Outcome) -> bool:
    """Whether the question was read, with finite inputs (a broken reading's are not)."""
    return bool(o.features) and bool(np.all(np.isfinite(o.features)))


def fit_model(
    rows: Sequence[Sequence[float]],
    labels: Sequence[bool],
    inputs: tuple[str, ...],
    weights: np.ndarray | None = None,
    penalty: float = PENALTY,
) -> Decider:
    """A logistic regression over the named ``inputs`` (``fit_logistic``, L2-penalised), as
    the card records it: the decider, or the answer curve."""
    f = fit_logistic(np.array(rows, dtype=np.float64), labels, weights, penalty)
    return Decider(tuple(f.mean), tuple(f.scale), tuple(f.weights), f.bias, inputs)


def fit_right(given: Sequence[Outcome]) -> Decider | None:
    """The answer's confidence curve: a logistic regression of "the answer is right" on the
    answers' ``RIGHT_INPUTS`` (the decider's inputs and the score that decided), questions
    pooled, L2-penalised as the decider. A curve of the score alone rises to 1 with the
    decider's certainty that the documents answer, yet an answer is right only if its span
    is right too: weighing the inputs afresh for that label says how likely it is. (The
    decider's score is a linear function of its inputs; as an input of its own, the penalty
    spares the direction the decider found.) None when no answer given has its inputs."""
    read = [o for o in given if has_inputs(o)]
    if not read:
        return None
    return fit_model([[*o.features, o.score] for o in read], [o.hit for o in read], RIGHT_INPUTS)


def calibrate(outs: Sequence[Outcome], threshold: float, right: bool = True) -> dict[str, Any]:
    """Confidence curves fitted on validation: for an answer, the probability that it is
    right given its inputs and score (``fit_right``; without ``right``, or for an older qa
    that reads no such curve, given its score alone); for an abstention, the probability
    that the documents indeed do not answer, given the score; for a citation, the
    probability that a sentence's best span is right, given its margin."""
    given = [o for o in outs if o.score >= threshold]
    withheld = [o for o in outs if o.score < threshold and np.isfinite(o.score)]
    read = [o for o in outs if np.isfinite(o.margin)]
    curve = fit_right(given) if right else None
    return {
        "answer": list(fit_platt([o.score for o in given], [o.hit for o in given])),
        **({"right": curve.to_dict()} if curve is not None else {}),
        "abstain": list(
            fit_platt([o.score for o in withheld], [not o.answerable for o in withheld])
        ),
        "citation": list(fit_platt([o.margin for o in read], [o.hit for o in read])),
        "method": "an answer's: a logistic regression of its rightness on the decider's "
        "inputs and the score the threshold judges (the decider's, or the best margin); an "
        "abstention's and each cited sentence's: Platt scaling of that score and of the "
        "sentence's margin; fitted on every validation question",
    }


def read_all(reader: Reader, asked: Sequence[Asked], n: int, batch: int = 0) -> list[list[Reading]]:
    """Each question's first ``n`` sentences read as the service reads them: a run each (or,
    with ``batch``, its ``batch``-th N sentences after them, as a further reading reads)."""
    out = []
    for a in asked:
        c = a.candidates((batch + 1) * n)[batch * n :]
        out.append(reader.read(a.question, c, a.last_question, a.last_answer) if c else [])
    return out

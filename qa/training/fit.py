"""Choosing on validation: how many sentences to read, the no-answer threshold and the
confidence calibration. Torch-free: it works on readings, whatever model made them.

Each validation question is scored with the definitions of ``shared/eval/README.md`` (an
answer hits when it contains an acceptable answer; the first citation supports it when it
holds a support string), through the same ``decide`` the service uses.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..decide import decide
from ..evaluate import is_hit, supports
from ..features import Reading
from ..read import Reader, with_slack
from .data import Asked


@dataclass(frozen=True)
class Outcome:
    answerable: bool
    followup: bool
    margin: float  # the best margin among the sentences read
    hit: bool  # the best span contains an acceptable answer
    supported: bool  # the best-ranked sentence holds a support string
    length: int  # characters of the best span


def outcomes(
    asked: Sequence[Asked], readings: Sequence[Sequence[Reading]], n: int
) -> list[Outcome]:
    """What answering each question from its first ``n`` sentences gives, before the
    threshold (the best span and whether it is right)."""
    out = []
    for a, rs in zip(asked, readings, strict=True):
        rs = list(rs[:n])
        e = a.example
        d = decide(rs, 0.0)
        if d.best is None:
            out.append(Outcome(e.answerable, e.followup, float("-inf"), False, False, 0))
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
            )
        )
    return out


def metrics(outs: Sequence[Outcome], threshold: float) -> dict[str, float | None]:
    """The eval metrics of answering when the best margin reaches ``threshold``."""
    answerable = [o for o in outs if o.answerable]
    unanswerable = [o for o in outs if not o.answerable]
    followups = [o for o in answerable if o.followup]

    def rate(xs: list[Outcome], pred: Callable[[Outcome], bool]) -> float | None:
        return round(sum(1 for x in xs if pred(x)) / len(xs), 4) if xs else None

    def answers(o: Outcome) -> bool:
        return o.margin >= threshold

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
    """The threshold (midway between two observed margins) that maximises the mean of the
    objective over ``sets``, each set weighing the same whatever its size."""
    margins = sorted({o.margin for s in sets for o in s if np.isfinite(o.margin)})
    cuts = [margins[0] - 1.0] if margins else [0.0]
    cuts += [(a + b) / 2 for a, b in zip(margins, margins[1:], strict=False)]
    cuts += [margins[-1] + 1.0] if margins else []

    def score(t: float) -> float:
        return round(sum(objective(metrics(s, t)) for s in sets) / len(sets), 6)

    # among equal objectives, the lowest threshold: it abstains least on answerable ones
    best = max(cuts, key=lambda t: (score(t), -t))
    return float(best), [metrics(s, best) for s in sets]


def fit_platt(
    values: Sequence[float], labels: Sequence[bool], iterations: int = 100
) -> tuple[float, float]:
    """Logistic calibration p = sigmoid(a x + b), by damped Newton steps on the log loss,
    with Platt's smoothed targets so that a clean separation does not run off to
    infinity. Fitted on standardised values, returned for the raw ones."""
    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(x) == 0:
        return 1.0, 0.0
    mean, scale = float(x.mean()), float(x.std()) or 1.0
    z = (x - mean) / scale
    pos = y.sum()
    t = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (len(y) - pos + 2))

    def loss(w: np.ndarray) -> float:
        s = w[0] * z + w[1]
        return float(np.sum(np.logaddexp(0.0, s) - t * s))

    w = np.zeros(2)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(w[0] * z + w[1])))
        g = np.array([np.sum((p - t) * z), np.sum(p - t)])
        h = (
            np.array(
                [
                    [np.sum(p * (1 - p) * z * z), np.sum(p * (1 - p) * z)],
                    [np.sum(p * (1 - p) * z), np.sum(p * (1 - p))],
                ]
            )
            + np.eye(2) * 1e-9
        )
        step = np.linalg.solve(h, g)
        rate, before = 1.0, loss(w)
        while rate > 1e-6 and loss(w - rate * step) > before:
            rate /= 2  # a Newton step that overshoots is halved until it helps
        w = w - rate * step
        if np.max(np.abs(rate * step)) < 1e-10:
            break
    return float(w[0] / scale), float(w[1] - w[0] * mean / scale)


def calibrate(outs: Sequence[Outcome], threshold: float) -> dict[str, Any]:
    """Confidence curves fitted on validation: for an answer, the probability that it is
    right given its margin; for an abstention, the probability that the documents indeed
    do not answer, given the best margin."""
    given = [o for o in outs if o.margin >= threshold]
    withheld = [o for o in outs if o.margin < threshold and np.isfinite(o.margin)]
    return {
        "answer": list(fit_platt([o.margin for o in given], [o.hit for o in given])),
        "abstain": list(
            fit_platt([o.margin for o in withheld], [not o.answerable for o in withheld])
        ),
        "method": "Platt scaling of the best margin, fitted on every validation question",
    }


def reliability(
    pairs: Sequence[tuple[float, bool]],
    edges: Sequence[float] = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0),
) -> list[dict[str, Any]]:
    """Rows of (bin, count, mean confidence, share right) for (confidence, right) pairs."""
    rows = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        inside = [(c, r) for c, r in pairs if lo <= c < hi or (hi == 1.0 and c == 1.0)]
        if inside:
            rows.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "count": len(inside),
                    "confidence": round(float(np.mean([c for c, _ in inside])), 3),
                    "right": round(float(np.mean([r for _, r in inside])), 3),
                }
            )
    return rows


def read_all(reader: Reader, asked: Sequence[Asked], n: int) -> list[list[Reading]]:
    """Each question's first ``n`` sentences read as the service reads them: one batch."""
    return [reader.read(a.question, a.candidates(n), a.last_question, a.last_answer) for a in asked]


TOLERANCE = 0.015  # of the objective (a sum of rate shortfalls): 1.5 points of any
LONGEST_MEDIAN = 40  # characters: a slack may not lengthen the median right answer to this


@dataclass(frozen=True)
class Choice:
    candidates: int
    threshold: float
    calibration: dict[str, Any]
    chosen: dict[str, Metrics]  # the figures of the choice on each validation set
    tried: dict[str, dict[str, Metrics]]  # ... of the best threshold for each count
    slack: float = 0.0  # how far under the best span's score other spans widen the answer
    slacks: dict[str, dict[str, Metrics]] = field(default_factory=dict)  # ... for each slack
    score: float = 0.0  # the objective of the choice, mean of the sets


def choose(
    reader: Reader,
    sets: dict[str, Sequence[Asked]],
    counts: Sequence[int],
    slacks: Sequence[float] = (0.0,),
    log: Callable[[str], None] = print,
) -> Choice:
    """How many sentences to read, how far the answer widens over near-best spans, the
    threshold and the calibration, on the validation ``sets`` read by ``reader`` (each set
    weighs the same). Each sentence read costs time on every question, and each word of
    slack lengthens answers, so each is the least within TOLERANCE of the best (and a
    slack must keep the median right answer under LONGEST_MEDIAN characters)."""
    names = list(sets)
    readings = {k: read_all(with_slack(reader, 0.0), sets[k], max(counts)) for k in names}
    tried: dict[str, dict[str, Metrics]] = {}
    scores = {}
    for n in counts:
        threshold, ms = choose_threshold_on([outcomes(sets[k], readings[k], n) for k in names])
        tried[str(n)] = dict(zip(names, ms, strict=True))
        scores[n] = sum(objective(m) for m in ms) / len(ms)
        log(f"  reading {n}: threshold {threshold:.3f} {tried[str(n)]}")
    n = least_within_tolerance(scores)
    # the chosen count read exactly as the service reads it: n sentences in one batch
    outs: dict[float, dict[str, list[Outcome]]] = {}
    widened: dict[str, dict[str, Metrics]] = {}
    by_slack = {}
    for slack in slacks:
        widen = with_slack(reader, slack)
        outs[slack] = {k: outcomes(sets[k], read_all(widen, sets[k], n), n) for k in names}
        threshold, ms = choose_threshold_on(list(outs[slack].values()))
        widened[str(slack)] = dict(zip(names, ms, strict=True))
        by_slack[slack] = sum(objective(m) for m in ms) / len(ms)
        log(f"  slack {slack}: threshold {threshold:.3f} {widened[str(slack)]}")
    # the objective counts an answer right however long it is; answers are spans, not
    # sentences, so a slack whose median right answer reaches LONGEST_MEDIAN on any set is
    # out (no slack always stays in)
    short = {
        k: v
        for k, v in by_slack.items()
        if k == 0 or all(short_enough(m) for m in widened[str(k)].values())
    }
    slack = least_within_tolerance(short or by_slack)
    threshold, ms = choose_threshold_on(list(outs[slack].values()))
    chosen = dict(zip(names, ms, strict=True))
    log(f"chose to read {n} sentences, slack {slack}, threshold {threshold:.3f}: {chosen}")
    pooled = [o for k in names for o in outs[slack][k]]
    calibration = calibrate(pooled, threshold)
    return Choice(
        n, round(threshold, 4), calibration, chosen, tried, slack, widened, by_slack[slack]
    )


def short_enough(m: Metrics) -> bool:
    """Whether the median right answer is under LONGEST_MEDIAN characters."""
    median = m.get("answer_chars_median")
    return median is None or median < LONGEST_MEDIAN


def least_within_tolerance(scores: dict[Any, float]) -> Any:
    """The least setting whose score is within TOLERANCE of the best."""
    best = max(scores.values())
    return min(k for k, v in scores.items() if v >= best - TOLERANCE)

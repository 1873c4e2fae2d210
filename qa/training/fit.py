"""Choosing on validation: how many sentences to read, the decider, the no-answer threshold
and the confidence calibration. Torch-free: it works on readings, whatever model made them.

Each validation question is scored with the definitions of ``shared/eval/README.md`` (an
answer hits when it contains an acceptable answer; the first citation supports it when it
holds a support string), through the same ``decide`` the service uses.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..corpus import Example
from ..decide import Decider, Evidence, decide, evidence_features
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
    document: str = ""  # what cross-fitting keeps together (``document_of``)
    features: tuple[float, ...] = ()  # the decider's inputs (none when nothing was read)
    score: float = float("nan")  # what the threshold judges: the margin, or the decider's

    def __post_init__(self) -> None:
        if np.isnan(self.score):
            object.__setattr__(self, "score", self.margin)


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
        d = decide(rs, 0.0)
        if d.best is None:
            out.append(
                Outcome(e.answerable, e.followup, float("-inf"), False, False, 0, document_of(e))
            )
            continue
        r, text = rs[d.best], a.hits[d.best].sentence.text
        span = text[r.start : r.end]
        cited = {"text": text}
        evidence = Evidence.of(a.question, a.hits[:n], a.previous[:n], e.followup)
        out.append(
            Outcome(
                e.answerable,
                e.followup,
                d.margin,
                e.answerable and is_hit(span, e.answer),
                e.answerable and supports(cited, e.support),
                len(span),
                document_of(e),
                tuple(evidence_features(rs, evidence, d.best)),
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
    margins = sorted({o.score for s in sets for o in s if np.isfinite(o.score)})
    cuts = [margins[0] - 1.0] if margins else [0.0]
    cuts += [(a + b) / 2 for a, b in zip(margins, margins[1:], strict=False)]
    cuts += [margins[-1] + 1.0] if margins else []

    def score(t: float) -> float:
        return round(sum(objective(metrics(s, t)) for s in sets) / len(sets), 6)

    # among equal objectives, the lowest threshold: it abstains least on answerable ones
    best = max(cuts, key=lambda t: (score(t), -t))
    return float(best), [metrics(s, best) for s in sets]


PENALTY = 1.0  # the decider's L2 penalty on its standardised weights


def fit_decider(sets: Sequence[Sequence[Outcome]], penalty: float = PENALTY) -> Decider:
    """The decider: a logistic regression of "the question is answerable" on the outcomes'
    standardised features, by Newton steps on the L2-penalised log loss, each set weighing
    the same whatever its size (as in the objective). Questions with nothing read are left
    out: they are never answered. ValueError when no question was read."""
    rows = [(o, 1.0 / len(s)) for s in sets for o in s if o.features]
    if not rows:
        raise ValueError("no question was read: nothing to fit a decider on")
    x = np.array([o.features for o, _ in rows], dtype=np.float64)
    labels = np.array([o.answerable for o, _ in rows], dtype=np.float64)
    # Platt's smoothed targets, so that one class alone does not run off to infinity
    pos = labels.sum()
    y = np.where(labels > 0, (pos + 1) / (pos + 2), 1 / (len(labels) - pos + 2))
    w = np.array([weight for _, weight in rows])
    w *= len(w) / w.sum()
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    reg = np.full(z.shape[1], penalty)
    reg[-1] = 0.0  # the bias is not penalised
    beta = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(z @ beta)))
        g = z.T @ (w * (p - y)) + reg * beta
        h = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(h, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return Decider(tuple(mean), tuple(scale), tuple(beta[:-1]), float(beta[-1]))


def decided_by(outs: Sequence[Outcome], decider: Decider | None) -> list[Outcome]:
    """``outs`` with the score the threshold judges: the decider's (the margin without)."""
    if decider is None:
        return [replace(o, score=o.margin) for o in outs]
    return [
        replace(o, score=decider.score(o.features) if o.features else float("-inf")) for o in outs
    ]


FOLDS = 5


def crossfit(sets: Mapping[str, Sequence[Outcome]], seed: int = 13) -> dict[str, Any]:
    """What the decider gains out of sample: the validation documents (all sets together)
    dealt into FOLDS folds; each fold's questions decided by a decider and a threshold
    fitted on the other folds, and likewise by the margin alone with its threshold; then
    each set's objective and their mean, for both. With fewer than two documents there is
    nothing to judge out of sample: only the counts are returned."""
    names = list(sets)
    documents = sorted({(k, o.document) for k in names for o in sets[k]})
    random.Random(seed).shuffle(documents)
    folds = min(FOLDS, len(documents))
    result: dict[str, Any] = {"folds": folds, "documents": len(documents)}
    if folds < 2:
        return result
    fold = {d: i % folds for i, d in enumerate(documents)}
    for way in ("margin", "decider"):
        decided: dict[str, list[Outcome]] = {k: [] for k in names}
        for f in range(folds):
            fitting = [[o for o in sets[k] if fold[(k, o.document)] != f] for k in names]
            held = [[o for o in sets[k] if fold[(k, o.document)] == f] for k in names]
            read = any(o.features for s in fitting for o in s)
            decider = fit_decider(fitting) if way == "decider" and read else None
            threshold, _ = choose_threshold_on([decided_by(s, decider) for s in fitting if s])
            for k, s in zip(names, held, strict=True):
                # each held-out question answered or not, as the fold's fit decides
                for o in decided_by(s, decider):
                    decided[k].append(replace(o, score=1.0 if o.score >= threshold else -1.0))
        scores = {k: round(objective(metrics(decided[k], 0.0)), 4) for k in names}
        result[way] = {"sets": scores, "mean": round(sum(scores.values()) / len(names), 4)}
    return result


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
    right given its score (the decider's, or the best margin); for an abstention, the
    probability that the documents indeed do not answer, given the same score; for a
    citation, the probability that a sentence's best span is right, given its margin."""
    given = [o for o in outs if o.score >= threshold]
    withheld = [o for o in outs if o.score < threshold and np.isfinite(o.score)]
    read = [o for o in outs if np.isfinite(o.margin)]
    return {
        "answer": list(fit_platt([o.score for o in given], [o.hit for o in given])),
        "abstain": list(
            fit_platt([o.score for o in withheld], [not o.answerable for o in withheld])
        ),
        "citation": list(fit_platt([o.margin for o in read], [o.hit for o in read])),
        "method": "Platt scaling of the score the threshold judges (the decider's, or the "
        "best margin), and of each cited sentence's margin, fitted on every validation question",
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
    decider: Decider | None = None  # None: the best margin alone decides
    crossfitted: dict[str, Any] = field(default_factory=dict)  # ``crossfit``


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
    # whether the question is answered: the decider, if out of sample it beats the margin
    crossfitted = crossfit(outs[slack])
    decider = None
    if "decider" in crossfitted and crossfitted["decider"]["mean"] > crossfitted["margin"]["mean"]:
        decider = fit_decider(list(outs[slack].values()))
    log(
        f"  out of sample: the margin alone {crossfitted.get('margin')}, the decider "
        f"{crossfitted.get('decider')}: {'the decider' if decider else 'the margin'} decides"
    )
    final = {k: decided_by(v, decider) for k, v in outs[slack].items()}
    threshold, ms = choose_threshold_on(list(final.values()))
    chosen = dict(zip(names, ms, strict=True))
    log(f"chose to read {n} sentences, slack {slack}, threshold {threshold:.3f}: {chosen}")
    pooled = [o for k in names for o in final[k]]
    calibration = calibrate(pooled, threshold)
    score = sum(objective(m) for m in ms) / len(ms)
    return Choice(
        n,
        round(threshold, 4),
        calibration,
        chosen,
        tried,
        slack,
        widened,
        score,
        decider,
        crossfitted,
    )


def short_enough(m: Metrics) -> bool:
    """Whether the median right answer is under LONGEST_MEDIAN characters."""
    median = m.get("answer_chars_median")
    return median is None or median < LONGEST_MEDIAN


def least_within_tolerance(scores: dict[Any, float]) -> Any:
    """The least setting whose score is within TOLERANCE of the best."""
    best = max(scores.values())
    return min(k for k, v in scores.items() if v >= best - TOLERANCE)

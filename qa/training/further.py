"""Choosing a further reading on validation: when the first N sentences leave the decider
unsure, the next N are read and the 2N decided on together (``read.Further``). Torch-free.

Reading more sentences finds more right sentences (the right one is often 4th to 6th in
retrieval's order), but each batch costs every question that reads it. So the second batch
is read only in a band of the first batch's score: over the band the first batch answers,
under it the documents do not say, and in it a decider fitted on 2N readings decides. The
band, and the threshold on the second decider's score, maximise the objective with at most
SHARE of the validation questions in the band; the whole is kept only if, cross-fitted by
document, it beats deciding on the first N alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..decide import Decider
from ..read import Further
from .decider import decided_by, fit_decider, folds_of
from .fit import TARGETS, Metrics, Outcome, calibrate, metrics, objective, short_enough

# The most of the questions (each validation set weighing the same) that may read a second
# batch: under a half, so that the median question reads one batch, on the bench's
# questions too (made of random words of the article, they leave the decider unsure far
# more often: at 0.30, 42% of them fell in the band against 24% of validation's). Chosen
# on validation (2026-11-30, seed 13's listwise weights, `774e...`): out of sample,
# 0.15 scored -0.2767, 0.20 -0.2791, 0.25 -0.2760 and 0.30 -0.2754 against -0.3018 for
# the first batch alone, with 13%, 17%, 23% and 28% of the questions reading a second
# batch, and 32% of the bench's at 0.15 and 0.20 against 42% at 0.25 and 0.30.
SHARE = 0.15
GRID = 25  # quantiles of the first batch's score tried as the band's ends
CUTS = 200  # quantiles of the second decider's score tried as its threshold


@dataclass(frozen=True)
class Band:
    below: float  # from this first-batch score, the next batch is read ...
    threshold: float  # ... up to this one, from which the first batch answers
    further: float  # the threshold on the 2N decider's score
    score: float  # the objective, mean of the sets
    share: float  # of the questions in the band, mean of the sets


def _rates(answerable: np.ndarray, hit: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """The objective of each row of ``answered`` (one row per threshold), as ``objective``
    computes it from ``metrics`` (rates rounded alike)."""
    total = np.zeros(answered.shape[0])
    a, u = int(answerable.sum()), int((~answerable).sum())
    if a:
        ah = np.round((answered & answerable & hit).sum(axis=1) / a, 4)
        fa = np.round((~answered & answerable).sum(axis=1) / a, 4)
        total += np.maximum(0.0, TARGETS["answer_hit"] - ah)
        total += np.maximum(0.0, fa - TARGETS["false_abstain"])
    if u:
        ab = np.round((~answered & ~answerable).sum(axis=1) / u, 4)
        total += np.maximum(0.0, TARGETS["abstain"] - ab)
    return -total


def choose_band(first: Sequence[Sequence[Outcome]], second: Sequence[Sequence[Outcome]]) -> Band:
    """The band and the 2N threshold that maximise the mean objective over the sets, with at
    most SHARE of the questions in the band; ``first`` and ``second`` are each set's outcomes
    of N and of 2N readings, in the same order, judged by their deciders (``decided_by``).
    Among equal objectives the band holding fewest questions, then the lowest thresholds."""
    sets = [(f, s) for f, s in zip(first, second, strict=True) if f]
    data = []
    for f, s in sets:
        data.append(
            (
                np.array([o.answerable for o in f], dtype=bool),
                np.array([o.hit for o in f], dtype=bool),
                np.array([o.hit for o in s], dtype=bool),
                np.array([o.score for o in f], dtype=np.float64),
                np.array([o.score for o in s], dtype=np.float64),
            )
        )
    if not data:
        raise ValueError("no question to choose a further reading on")
    s1 = np.concatenate([d[3] for d in data])
    s2 = np.concatenate([d[4] for d in data])
    # finite ends, so that the card records numbers: one under every score, one over
    ends = _grid(s1, GRID)
    cuts = _grid(s2, CUTS)
    tried: list[tuple[tuple[float, float, float, float], Band]] = []
    for below, above in itertools.combinations(ends, 2):
        bands = [(d[3] >= below) & (d[3] < above) for d in data]
        share = float(np.mean([b.mean() for b in bands]))
        if share > SHARE:
            continue
        total = np.zeros(len(cuts))
        for (answerable, hit1, hit2, first_score, second_score), band in zip(
            data, bands, strict=True
        ):
            answered = (first_score >= above)[None, :] | (
                band[None, :] & (second_score[None, :] >= cuts[:, None])
            )
            total += _rates(answerable, np.where(band, hit2, hit1), answered)
        total = np.round(total / len(data), 6)
        i = int(np.argmax(total))  # the lowest cut among the best (cuts ascend)
        key = (float(total[i]), -share, -float(below), -float(above))
        band = Band(float(below), float(above), float(cuts[i]), float(total[i]), share)
        tried.append((key, band))
    # the first batch alone (an empty band), at thresholds as fine as the second batch's
    alone = _grid(s1, CUTS)
    total = np.zeros(len(alone))
    for answerable, hit1, _, first_score, _ in data:
        total += _rates(answerable, hit1, first_score[None, :] >= alone[:, None])
    total = np.round(total / len(data), 6)
    for t, value in zip(alone, total, strict=True):
        band = Band(float(t), float(t), float(t), float(value), 0.0)
        tried.append(((float(value), 0.0, -float(t), -float(t)), band))
    # the best whose median right answer stays short on every set, as for the slack
    for _, band in sorted(tried, key=lambda t: t[0], reverse=True):
        if all(short_enough(metrics(decided(f, s, band)[0], 0.0)) for f, s in sets):
            return band
    raise ValueError("no band holds few enough questions and keeps answers short")


def _grid(scores: np.ndarray, count: int) -> np.ndarray:
    """``count`` quantiles of the finite ``scores``, and a value under and one over them all."""
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        return np.array([0.0])
    q = np.unique(np.quantile(finite, np.linspace(0, 1, count)))
    return np.concatenate([[q[0] - 1.0], q, [q[-1] + 1.0]])


def decided(
    first: Sequence[Outcome], second: Sequence[Outcome], band: Band
) -> tuple[list[Outcome], list[Outcome], list[Outcome]]:
    """Each question as the band decides it (judged +1 answered, -1 not), and the questions
    the first batch decides and those the 2N decide, with their own scores."""
    out, by_first, by_second = [], [], []
    for f, s in zip(first, second, strict=True):
        if band.below <= f.score < band.threshold:
            by_second.append(s)
            out.append(replace(s, judged=1.0 if s.score >= band.further else -1.0))
        else:
            by_first.append(f)
            out.append(replace(f, judged=1.0 if f.score >= band.threshold else -1.0))
    return out, by_first, by_second


def crossfit_further(
    first: Mapping[str, Sequence[Outcome]],
    second: Mapping[str, Sequence[Outcome]],
    learn: bool,
    seed: int = 13,
) -> dict[str, Any]:
    """The further reading out of sample, in ``crossfit``'s folds: each fold decided by the
    deciders (``learn``; else the margins) and the band fitted on the other folds."""
    names = list(first)
    fold, folds = folds_of(first, seed)
    if folds < 2:
        return {}
    out: dict[str, list[Outcome]] = {k: [] for k in names}
    banded = dict.fromkeys(names, 0)  # questions that read the second batch
    for f in range(folds):

        def part(
            sets: Mapping[str, Sequence[Outcome]], held: bool, k: str, f: int = f
        ) -> list[Outcome]:
            return [o for o in sets[k] if (fold[(k, o.document)] == f) == held]

        fitting = [part(first, False, k) for k in names]
        fitting2 = [part(second, False, k) for k in names]
        read = learn and any(o.features for s in fitting for o in s)
        d1 = fit_decider(fitting) if read else None
        d2 = fit_decider(fitting2) if read else None
        band = choose_band(
            [decided_by(s, d1) for s in fitting], [decided_by(s, d2) for s in fitting2]
        )
        for k in names:
            held1 = decided_by(part(first, True, k), d1)
            held2 = decided_by(part(second, True, k), d2)
            done, _, by_second = decided(held1, held2, band)
            out[k] += done
            banded[k] += len(by_second)
    sets = {k: round(objective(metrics(out[k], 0.0)), 4) for k in names}
    return {
        "sets": sets,
        "mean": round(sum(sets.values()) / len(names), 4),
        "share": {k: round(banded[k] / len(out[k]), 3) if out[k] else None for k in names},
    }


@dataclass(frozen=True)
class FurtherChoice:
    band: Band
    calibration: dict[str, Any]  # the first batch's curves
    further: dict[str, Any]  # the card's ``further`` (``read.Further.to_dict``)
    chosen: dict[str, Metrics]


def fit_further(
    first: Mapping[str, Sequence[Outcome]],
    second: Mapping[str, Sequence[Outcome]],
    first_decider: Decider | None,
    by_inputs: bool = True,
) -> FurtherChoice:
    """The further reading fitted on all of validation: the 2N decider (when the first batch
    has one), the band, and each stage's confidence curves on the questions it decides (the
    first batch's answer curve from the inputs only ``by_inputs``, as chosen without it)."""
    names = list(first)
    second_decider = fit_decider(list(second.values())) if first_decider else None
    one = {k: decided_by(first[k], first_decider) for k in names}
    two = {k: decided_by(second[k], second_decider) for k in names}
    band = choose_band([one[k] for k in names], [two[k] for k in names])
    chosen, by_first, by_second = {}, [], []
    for k in names:
        done, f, s = decided(one[k], two[k], band)
        chosen[k] = metrics(done, 0.0)
        by_first += f
        by_second += s
    later = calibrate(by_second, band.further, right=False)  # ``Further`` reads the score
    further = Further(
        band.below,
        band.further,
        (later["answer"][0], later["answer"][1]),
        (later["abstain"][0], later["abstain"][1]),
        second_decider,
    ).to_dict()
    return FurtherChoice(band, calibrate(by_first, band.threshold, by_inputs), further, chosen)

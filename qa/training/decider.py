"""Fitting the decider on validation, and judging it out of sample. Torch-free.

The decider (``qa/decide.py``) weighs the readings and the retrieval of each question into the
log-odds that the documents answer it. It is fitted on the validation sets, each weighing
the same, and kept only where, cross-fitted by document, it beats the best margin alone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..decide import Decider
from .fit import Outcome, choose_threshold_on, metrics, objective

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

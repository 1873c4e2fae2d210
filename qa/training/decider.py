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

from ..decide import FEATURES, Decider
from ..read import Settings
from .fit import (
    PENALTY,
    Outcome,
    choose_threshold_on,
    fit_model,
    fit_platt,
    fit_right,
    has_inputs,
    metrics,
    objective,
)


def fit_decider(sets: Sequence[Sequence[Outcome]], penalty: float = PENALTY) -> Decider:
    """The decider: a logistic regression of "the question is answerable" on the outcomes'
    standardised features, by Newton steps on the L2-penalised log loss, each set weighing
    the same whatever its size (as in the objective). Questions with nothing read (or,
    should a reading be broken, a feature that is not finite) are left out: they are never
    answered. ValueError when no question was read."""
    rows = [(o, 1.0 / len(s)) for s in sets for o in s if has_inputs(o)]
    if not rows:
        raise ValueError("no question was read: nothing to fit a decider on")
    return fit_model(
        [o.features for o, _ in rows],
        [o.answerable for o, _ in rows],
        FEATURES,
        np.array([weight for _, weight in rows]),
        penalty,
    )


def decided_by(outs: Sequence[Outcome], decider: Decider | None) -> list[Outcome]:
    """``outs`` with the score the threshold judges: the decider's (the margin without)."""
    if decider is None:
        return [replace(o, judged=None) for o in outs]
    return [
        replace(o, judged=decider.score(o.features) if o.features else float("-inf")) for o in outs
    ]


FOLDS = 5


def folds_of(
    sets: Mapping[str, Sequence[Outcome]], seed: int = 13
) -> tuple[dict[tuple[str, str], int], int]:
    """The validation documents (of all sets together) dealt at random into FOLDS folds
    (fewer when there are fewer documents): each (set, document)'s fold, and how many."""
    documents = sorted({(k, o.document) for k in sets for o in sets[k]})
    random.Random(seed).shuffle(documents)
    folds = min(FOLDS, len(documents))
    return {d: i % max(folds, 1) for i, d in enumerate(documents)}, folds


def crossfit(sets: Mapping[str, Sequence[Outcome]], seed: int = 13) -> dict[str, Any]:
    """What the decider gains out of sample: the validation documents (all sets together)
    dealt into FOLDS folds; each fold's questions decided by a decider and a threshold
    fitted on the other folds, and likewise by the margin alone with its threshold; then
    each set's objective and their mean, for both. With fewer than two documents there is
    nothing to judge out of sample: only the counts are returned."""
    names = list(sets)
    fold, folds = folds_of(sets, seed)
    result: dict[str, Any] = {"folds": folds, "documents": len(fold)}
    if folds < 2:
        return result
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
                    decided[k].append(replace(o, judged=1.0 if o.score >= threshold else -1.0))
        scores = {k: round(objective(metrics(decided[k], 0.0)), 4) for k in names}
        result[way] = {"sets": scores, "mean": round(sum(scores.values()) / len(names), 4)}
    return result


CONFIDENT = 0.8  # the confidence from which answers are to be right 9 times in 10


def crossfit_curves(
    sets: Mapping[str, Sequence[Outcome]], by_decider: bool, seed: int = 13
) -> dict[str, Any]:
    """How an answer's confidence curves do out of sample, in the folds of ``crossfit``:
    each fold's questions decided (by a decider, with ``by_decider``, or the margin) at a
    threshold fitted on the other folds, and each answer given its confidence by the curves
    fitted there on the answers given: the score's (Platt) and the inputs' (``fit_right``;
    the score's where there are none, as the service does). For each, each set's log loss
    of the answers' confidences, the answers at CONFIDENT or more and the share of them
    right, and the mean log loss of the sets with answers. Empty with fewer than two
    documents."""
    names = list(sets)
    fold, folds = folds_of(sets, seed)
    if folds < 2:
        return {}
    got: dict[str, dict[str, list[tuple[float, bool]]]] = {
        way: {k: [] for k in names} for way in ("score", "inputs")
    }
    for f in range(folds):
        fitting = [[o for o in sets[k] if fold[(k, o.document)] != f] for k in names]
        read = any(has_inputs(o) for s in fitting for o in s)
        decider = fit_decider(fitting) if by_decider and read else None
        decided = [decided_by(s, decider) for s in fitting]
        threshold, _ = choose_threshold_on([s for s in decided if s])
        given = [o for s in decided for o in s if o.score >= threshold]
        # the confidences as the service gives them (abstentions do not matter here)
        curve = fit_platt([o.score for o in given], [o.hit for o in given])
        by_score = Settings(0, threshold, *curve, 1.0, 0.0)
        by_inputs = replace(by_score, right=fit_right(given))
        for k in names:
            held = [o for o in sets[k] if fold[(k, o.document)] == f]
            for o in decided_by(held, decider):
                if o.score >= threshold:
                    inputs = o.features if has_inputs(o) else ()
                    got["score"][k].append((by_score.confidence(o.score, True), o.hit))
                    got["inputs"][k].append((by_inputs.confidence(o.score, True, inputs), o.hit))
    result: dict[str, Any] = {}
    for way, by_set in got.items():
        scored = {k: _scored(v) for k, v in by_set.items() if v}
        losses = [v["log_loss"] for v in scored.values()]
        result[way] = {
            "sets": scored,
            "log_loss": round(sum(losses) / len(losses), 4) if losses else None,
        }
    return result


def _scored(answers: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    p = np.clip([c for c, _ in answers], 1e-6, 1 - 1e-6)
    y = np.array([h for _, h in answers], dtype=np.float64)
    confident = p >= CONFIDENT
    return {
        "answers": len(answers),
        "log_loss": round(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), 4),
        f"at {CONFIDENT}": int(confident.sum()),
        f"right at {CONFIDENT}": round(float(y[confident].mean()), 4) if confident.any() else None,
    }

"""The choice on validation: how many sentences to read, the slack, whether the decider
decides, the threshold and the confidence curves. Torch-free: it works on readings,
whatever model made them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..decide import Decider
from ..features import Reading
from ..read import BatchReader, Reader, RememberingReader, with_slack
from .data import Asked
from .decider import crossfit, crossfit_curves, decided_by, fit_decider
from .fit import (
    Metrics,
    Outcome,
    calibrate,
    choose_threshold_on,
    objective,
    outcomes,
    read_all,
    short_enough,
)
from .further import FurtherChoice, crossfit_further, fit_further

TOLERANCE = 0.015  # of the objective (a sum of rate shortfalls): 1.5 points of any


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
    further: dict[str, Any] | None = None  # the card's ``further``; None: N only
    # follow-ups whose earlier answer changed each time the sets were asked again with the
    # choice made (``choosing.choose_on_validation``)
    reasked: tuple[int, ...] = ()
    # the validation documents' questions as the choice read them (``data.Asked``: the
    # follow-ups' earlier turns as the service answered them, when they were asked again)
    validation: tuple[Any, ...] = field(default=(), compare=False, repr=False)


def choose(
    reader: Reader,
    sets: dict[str, Sequence[Asked]],
    counts: Sequence[int],
    slacks: Sequence[float] = (0.0,),
    log: Callable[[str], None] = print,
    further_reading: bool = False,
) -> Choice:
    """How many sentences to read, how far the answer widens over near-best spans, the
    threshold and the calibration, on the validation ``sets`` read by ``reader`` (each set
    weighs the same). Each sentence read costs time on every question, and each word of
    slack lengthens answers, so each is the least within TOLERANCE of the best (and a
    slack must keep the median right answer under LONGEST_MEDIAN characters)."""
    names = list(sets)
    if isinstance(reader, BatchReader):  # each slack reads the same batches: run each once
        reader = RememberingReader(reader)
    readings = {k: read_all(with_slack(reader, 0.0), sets[k], max(counts)) for k in names}
    tried: dict[str, dict[str, Metrics]] = {}
    scores = {}
    for n in counts:
        threshold, ms = choose_threshold_on([outcomes(sets[k], readings[k], n) for k in names])
        tried[str(n)] = dict(zip(names, ms, strict=True))
        scores[n] = sum(objective(m) for m in ms) / len(ms)
        log(f"  reading {n}: threshold {threshold:.3f} {tried[str(n)]}")
    n = least_within_tolerance(scores)
    # the chosen count read exactly as the service reads it: n sentences, a run each
    outs: dict[float, dict[str, list[Outcome]]] = {}
    reads: dict[float, dict[str, list[list[Reading]]]] = {}
    widened: dict[str, dict[str, Metrics]] = {}
    by_slack = {}
    for slack in slacks:
        widen = with_slack(reader, slack)
        reads[slack] = {k: read_all(widen, sets[k], n) for k in names}
        outs[slack] = {k: outcomes(sets[k], reads[slack][k], n) for k in names}
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
    # an answer's confidence from its inputs, if out of sample it beats the score's curve
    curves = crossfit_curves(outs[slack], decider is not None)
    crossfitted["answer curve"] = curves
    losses = [curves[way]["log_loss"] for way in ("inputs", "score") if curves]
    by_inputs = len(losses) == 2 and None not in losses and losses[0] < losses[1]
    log(
        f"  out of sample, an answer's confidence: from the score {curves.get('score')}, from "
        f"its inputs {curves.get('inputs')}: {'the inputs' if by_inputs else 'the score'}"
    )
    pooled = [o for k in names for o in final[k]]
    calibration = calibrate(pooled, threshold, right=by_inputs)
    # the next N read when the first leave the decider unsure: kept if, out of sample, it
    # beats deciding on the first N alone
    further: dict[str, Any] | None = None
    if further_reading:
        fc = _further(
            reader, sets, reads[slack], outs[slack], n, slack, decider, by_inputs, crossfitted, log
        )
        if fc is not None:
            threshold, chosen, further = fc.band.threshold, fc.chosen, fc.further
            calibration = first_batch_curves(calibration, fc.calibration)
            ms = list(chosen.values())
            log(
                f"reading {n} more from a first score of {fc.band.below:.3f} to {threshold:.3f} "
                f"({fc.band.share:.0%} of the questions), threshold {fc.band.further:.3f}: "
                f"{chosen}"
            )
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
        further,
    )


def _further(
    reader: Reader,
    sets: dict[str, Sequence[Asked]],
    reads: dict[str, list[list[Reading]]],
    outs: dict[str, list[Outcome]],
    n: int,
    slack: float,
    decider: Decider | None,
    by_inputs: bool,
    crossfitted: dict[str, Any],
    log: Callable[[str], None],
) -> FurtherChoice | None:
    """The further reading fitted on validation, if out of sample it beats the first batch
    alone (recorded in ``crossfitted["further"]``); None if not."""
    widen = with_slack(reader, slack)
    doubled = {
        k: outcomes(
            sets[k],
            [a + b for a, b in zip(reads[k], read_all(widen, sets[k], n, 1), strict=True)],
            2 * n,
        )
        for k in sets
    }
    alone = crossfitted.get("decider" if decider else "margin", {}).get("mean")
    fc = None
    try:
        crossfitted["further"] = crossfit_further(outs, doubled, decider is not None)
        if alone is not None and crossfitted["further"].get("mean", -math.inf) > alone:
            fc = fit_further(outs, doubled, decider, by_inputs)
    except ValueError as exc:  # no band keeps the answers short: the first batch alone
        crossfitted["further"] = {"none": str(exc)}
    log(f"  out of sample, reading {n} more when unsure: {crossfitted['further']}")
    if fc is None or fc.band.share == 0:  # else the first batch alone was best
        return None
    return fc


FIRST_BATCH = ("answer", "abstain", "right")  # the curves of what the first batch decides


def first_batch_curves(pooled: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    """The card's calibration with a further reading: the first batch's curves fitted on
    the questions it decides (``first``); a pooled curve that ``first`` lacks is dropped,
    not kept for questions it was not fitted on; the rest (the citation curve) pooled."""
    return {
        **{k: v for k, v in pooled.items() if k not in FIRST_BATCH},
        **{k: first[k] for k in FIRST_BATCH if k in first},
    }


def least_within_tolerance(scores: dict[Any, float]) -> Any:
    """The least setting whose score is within TOLERANCE of the best."""
    best = max(scores.values())
    return min(k for k, v in scores.items() if v >= best - TOLERANCE)

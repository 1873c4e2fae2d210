"""Calibrating abstention for one index, when it is built.

What counts as a high score depends on the corpus (its length, its vocabulary). So each
new index is asked a fixed set of general questions that no ordinary document answers
(``data/offtopic.txt``); their best fused scores show what "unrelated" looks like here,
and the threshold is set just above the highest of them. The figures go into the manifest.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

MARGIN = 0.05  # above the best unrelated score
FLOOR = 0.30  # never lower than this, whatever the corpus
SCALE = 8.0  # confidence = sigmoid(SCALE * (score - threshold))


def offtopic_questions() -> list[str]:
    text = resources.files("qa").joinpath("data/offtopic.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def calibrate(index, embedder, lexical) -> dict:
    """The abstention parameters for ``index`` (an Index, possibly not yet on disk)."""
    from .answer import Calibration
    from .question import read_question
    from .retrieve import hybrid_search

    questions = offtopic_questions()
    vectors = embedder.encode_questions(questions)
    best = []
    for question, vector in zip(questions, vectors, strict=False):
        terms = {t: 1.0 for t in read_question(question).terms}
        hits = hybrid_search(index, lexical, vector, terms, 1)
        best.append(hits[0].score if hits else 0.0)
    best = np.array(best)
    fixed = Calibration()
    return {
        "method": "best fused score of general off-topic questions, plus a margin",
        "threshold": round(max(FLOOR, float(best.max()) + MARGIN), 4),
        "scale": SCALE,
        # chosen on labelled question sets, the same for every index, kept here so that
        # an index records every parameter it answers with
        "min_coverage": fixed.min_coverage,
        "min_coverage_lower": fixed.min_coverage_lower,
        "full_coverage": fixed.full_coverage,
        "full_coverage_confidence": fixed.full_coverage_confidence,
        "typed_coverage": fixed.typed_coverage,
        "offtopic": {
            "questions": len(questions),
            "median": round(float(np.median(best)), 4),
            "max": round(float(best.max()), 4),
        },
    }

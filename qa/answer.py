"""Answering: retrieve the relevant sentences and answer with a span taken from them.

1. The question is read (``question.py``): the kind of answer it expects and its focus.
2. Follow-ups: the last turn of the history is carried into the query at a lower weight
   (dense: a weighted sum of embeddings; lexical: its words at a lower weight), so "When
   was that interview?" still finds the interview the previous question was about.
3. Hybrid retrieval (``retrieve.py``), then a rerank that prefers sentences holding an
   expression of the expected kind (a date for "when", a number for "how many").
4. Abstention: the documents do not answer when the fused score falls under the
   threshold calibrated for this index (see ``calibrate.py``), when a "which X" question
   asks about an X the documents never mention, or when no sentence near the top holds
   an expression of the expected kind.
5. The answer is the span of the best sentence that answers the question
   (``extract.py``), with its offsets in the document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .extract import QUOTATION, TYPED, extract_span, find_typed
from .question import Question, read_question
from .records import Answer, Citation
from .retrieve import LEXICAL_WEIGHT, Hit, hybrid_search
from .text import content_stems

HISTORY_WEIGHT = 0.35  # weight of the previous turn in a follow-up's query
TYPE_BONUS = 0.2  # fused-score bonus for a sentence that holds the expected kind
RERANK_POOL = 10
SHORT_ANSWER = 60  # characters
MIN_COVERAGE = 0.25  # share of the question's (IDF-weighted) words the answer must contain


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long, not text)."""


@dataclass(frozen=True)
class Turn:
    """An earlier turn of the conversation, as the client sends it back."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Calibration:
    """Abstention parameters, fitted when the index is built and kept in its manifest."""

    threshold: float = 0.35  # fused score under which the documents do not answer
    scale: float = 8.0  # steepness of the confidence curve around the threshold

    @classmethod
    def from_manifest(cls, manifest: dict) -> Calibration:
        c = manifest.get("calibration") or {}
        return cls(float(c.get("threshold", cls.threshold)), float(c.get("scale", cls.scale)))


def answer_question(
    index,
    embedder,
    lexical,
    question: str,
    history: Sequence[Turn] = (),
    top_k: int = 3,
    calibration: Calibration | None = None,
) -> Answer:
    """The answer to ``question``: a verbatim span of the first citation, or None."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    calibration = calibration or Calibration.from_manifest(index.manifest)
    q = read_question(question)
    context = _context(history)

    texts = [q.text] + ([context] if context else [])
    vectors = embedder.encode(texts)
    query = vectors[0]
    if context:
        query = query + HISTORY_WEIGHT * vectors[1]
        query = query / (np.linalg.norm(query) or 1.0)
    terms: dict[str, float] = {}
    for stem in content_stems(context):
        terms[stem] = HISTORY_WEIGHT
    for stem in q.terms:
        terms[stem] = 1.0

    hits = hybrid_search(index, lexical, query, terms, max(top_k, RERANK_POOL))
    hits = _rerank(hits, q)[:top_k]
    citations = tuple(
        Citation(
            h.sentence.doc,
            h.sentence.index,
            h.sentence.start,
            h.sentence.end,
            h.sentence.text,
            h.score,
        )
        for h in hits
    )
    if not hits:
        return Answer(question, None, None, None, 0.0, (), index.version)

    best = hits[0]
    confidence = _confidence(best, calibration)
    if _abstains(q, best, lexical, confidence, _previous_text(index, best)):
        return Answer(
            question,
            None,
            None,
            None,
            round(1 - confidence, 4) if confidence < 0.5 else 0.5,
            citations,
            index.version,
        )
    context_terms = frozenset(content_stems(context)) if context else frozenset()
    span = extract_span(best.sentence.text, q, context_terms)
    start = best.sentence.start + span.start
    end = best.sentence.start + span.end
    return Answer(
        question,
        best.sentence.text[span.start : span.end],
        start,
        end,
        confidence,
        citations,
        index.version,
    )


def _previous_text(index, hit: Hit) -> str:
    """The sentence before ``hit`` in its document, or ""."""
    if hit.sentence.index == 0:
        return ""
    return index.sentences[hit.position - 1].text


def _context(history: Sequence[Turn]) -> str:
    """What a follow-up carries from the last turn: its question, and its answer when that
    is a short span (a whole sentence would pull retrieval back to the previous answer)."""
    if not history:
        return ""
    last = history[-1]
    parts = [last.question]
    if last.answer and len(last.answer) <= SHORT_ANSWER:
        parts.append(last.answer)
    return " ".join(parts)


def _rerank(hits: list[Hit], q: Question) -> list[Hit]:
    if q.kind not in TYPED and not q.asks_speech:
        return hits

    def bonus(h: Hit) -> float:
        if q.asks_speech:
            return TYPE_BONUS if QUOTATION.search(h.sentence.text) else 0.0
        return TYPE_BONUS if find_typed(h.sentence.text, q.kind) else 0.0

    boosted = sorted((replace(h, score=h.score + bonus(h)) for h in hits), key=lambda h: -h.score)
    if q.kind in TYPED:
        # the best sentence that holds an expression of the expected kind answers; the
        # others follow in their order
        typed = [h for h in boosted if find_typed(h.sentence.text, q.kind)]
        if typed and typed[0] is not boosted[0]:
            boosted.remove(typed[0])
            boosted.insert(0, typed[0])
    return boosted


def _confidence(hit: Hit, calibration: Calibration) -> float:
    # the fused score before the rerank bonus: a bonus orders, it does not make relevant
    fused = hit.dense + LEXICAL_WEIGHT * hit.lexical
    return 1 / (1 + math.exp(-calibration.scale * (fused - calibration.threshold)))


def coverage(q: Question, hit: Hit, lexical, previous: str = "") -> float:
    """The share of the question's words, weighted by rarity (IDF), that the sentence or
    the one before it contains."""
    terms = set(q.terms)
    if not terms:
        return 0.0
    present = set(content_stems(hit.sentence.text)) | set(content_stems(previous))
    total = sum(lexical.idf(t) for t in terms)
    return sum(lexical.idf(t) for t in terms if t in present) / total if total else 0.0


def unknown_names(q: Question, lexical) -> list[str]:
    """Names in the question (capitalised words after the first) that no document uses:
    "Who is the president of Atlantis?" cannot be answered by documents without Atlantis."""
    return [
        t.text
        for t in q.tokens[1:]
        if t.stem and t.capitalised and t.stem not in lexical.vocabulary
    ]


def _abstains(q: Question, best: Hit, lexical, confidence: float, previous: str = "") -> bool:
    if confidence < 0.5:
        return True
    if unknown_names(q, lexical):
        return True
    covered = coverage(q, best, lexical, previous)
    if covered < MIN_COVERAGE:
        return True  # the best sentence shares only common words with the question
    if q.focus and q.focus_direct and q.focus not in lexical.vocabulary and covered < 0.5:
        return True  # "which currency ..." where no document mentions a currency
    if q.kind in TYPED and not find_typed(best.sentence.text, q.kind):
        return True  # "how old ..." and the best sentence holds no age
    return False

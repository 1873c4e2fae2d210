"""Answering: retrieve the relevant sentences and answer with a span taken from them.

1. The question is read (``question.py``): the kind of answer it expects and its focus.
2. Follow-ups: the last turn of the history is carried into the query at a lower weight
   (dense: a weighted sum of embeddings; lexical: its words at a lower weight), so "When
   was that interview?" still finds the interview the previous question was about.
3. Hybrid retrieval (``retrieve.py``), then a rerank that prefers sentences holding an
   expression of the expected kind (a date for "when", a number for "how many").
4. Abstention: the documents do not answer when the fused score falls under the
   threshold calibrated for this index (see ``calibrate.py``), when the sentence shares
   too few of the question's rarer words, when a "which X" question asks about an X the
   documents never mention, when no sentence near the top holds an expression of the
   expected kind, or when a "who" question finds no name it does not already hold.
5. The answer is the span of the best sentence that answers the question
   (``extract.py``), with its offsets in the document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from .extract import QUOTATION, TYPED, expressions, extract_span
from .question import Question, read_question
from .records import Answer, Citation
from .retrieve import LEXICAL_WEIGHT, Hit, hybrid_search
from .text import content_stems, tokenize

FOCUS_WEIGHT = 1.5
HISTORY_WEIGHT = 0.35  # weight of the previous turn in a follow-up's query
TYPE_BONUS = 0.2  # fused-score bonus for a sentence that holds the expected kind
RERANK_POOL = 10
VERIFY = 3  # leading sentences checked for one that answers
VERIFY_MARGIN = 0.1  # ... as long as their score is this close to the best one
SHORT_ANSWER = 60  # characters
ROOT = 5  # letters two stems must share, one being the beginning of the other
# Light verbs carry little of a question's meaning: "How long did it take?"
LIGHT_VERBS = frozenset("take get make come go give happen become put keep let".split())


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
    # share of the question's (IDF-weighted) words the answering sentence must contain;
    # chosen on labelled question sets about three documents (see README)
    min_coverage: float = 0.35
    min_coverage_lower: float = 0.6  # ... when it is not the best-ranked sentence
    full_coverage: float = 0.75  # this complete, a sentence answers under the threshold,
    full_coverage_confidence: float = 0.15  # down to this confidence
    # ... for the best-ranked sentence when it holds an expression of the kind asked for
    # (a date for "when"), evidence of its own: paraphrased questions share few words
    typed_coverage: float = 0.2

    @classmethod
    def from_manifest(cls, manifest: dict) -> Calibration:
        """The parameters recorded in the index, defaults for any it lacks."""
        c = manifest.get("calibration") or {}
        return cls(**{f.name: float(c.get(f.name, f.default)) for f in fields(cls)})


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
    vectors = embedder.encode_questions(texts)
    query = vectors[0]
    if context:
        query = query + HISTORY_WEIGHT * vectors[1]
        query = query / (np.linalg.norm(query) or 1.0)
    terms: dict[str, float] = {}
    context_terms = frozenset(content_stems(context))
    for stem in context_terms:
        terms[stem] = HISTORY_WEIGHT
    for stem in q.terms:
        # the noun a "which X" question asks about names what the answer is
        terms[stem] = FOCUS_WEIGHT if stem == q.focus else 1.0

    hits = _rerank(hybrid_search(index, lexical, query, terms, max(top_k, RERANK_POOL)), q)
    if not hits:
        return Answer(question, None, None, None, 0.0, (), index.version)

    # A follow-up with fewer than two words of its own ("How old is he?") is about the
    # last turn's words: the answering sentence must share those.
    own = set(q.terms) - LIGHT_VERBS
    carried = context_terms if len(own) < 2 else frozenset()

    # The first of the leading sentences that passes every check answers; it is cited first.
    chosen = None
    for n, hit in enumerate(hits[:VERIFY]):
        if hit.score < hits[0].score - VERIFY_MARGIN:
            break
        confidence = _confidence(hit, calibration)
        previous = _previous_position(hit)
        if not _abstains(
            q, hit, lexical, calibration, confidence, previous, first=n == 0, carried=carried
        ):
            chosen = hit
            break
    if chosen is None:
        best = _confidence(hits[0], calibration)
        # how sure it is that the documents do not say
        certainty = 1 - best if best < 0.5 else 0.5
        return Answer(
            question, None, None, None, certainty, _citations(hits[:top_k]), index.version
        )

    hits = [chosen] + [h for h in hits if h is not chosen]
    span = extract_span(chosen.sentence.text, q, context_terms)
    return Answer(
        question,
        chosen.sentence.text[span.start : span.end],
        chosen.sentence.start + span.start,
        chosen.sentence.start + span.end,
        confidence,
        _citations(hits[:top_k]),
        index.version,
    )


def _citations(hits: list[Hit]) -> tuple[Citation, ...]:
    return tuple(
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


def _previous_position(hit: Hit) -> int | None:
    """The position of the sentence before ``hit`` in its document, or None."""
    if hit.sentence.index == 0:
        return None
    return hit.position - 1


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

    # whether each hit holds an expression of the expected kind: looked for once a hit
    typed = (
        {h.position: bool(expressions(h.sentence.text, q)) for h in hits} if q.kind in TYPED else {}
    )

    def bonus(h: Hit) -> float:
        if q.asks_speech:
            return TYPE_BONUS if QUOTATION.search(h.sentence.text) else 0.0
        return TYPE_BONUS if typed[h.position] else 0.0

    boosted = sorted((replace(h, score=h.score + bonus(h)) for h in hits), key=lambda h: -h.score)
    if q.kind in TYPED:
        # the best sentence that holds an expression of the expected kind answers; the
        # others follow in their order
        first = next((h for h in boosted if typed[h.position]), None)
        if first is not None and first is not boosted[0]:
            boosted.remove(first)
            boosted.insert(0, first)
    return boosted


def _confidence(hit: Hit, calibration: Calibration) -> float:
    # the fused score before the rerank bonus: a bonus orders, it does not make relevant
    fused = hit.dense + LEXICAL_WEIGHT * hit.lexical
    return 1 / (1 + math.exp(-calibration.scale * (fused - calibration.threshold)))


def coverage(
    q: Question, hit: Hit, lexical, previous: int | None = None, extra: frozenset = frozenset()
) -> float:
    """The share of the question's words (and of ``extra``), weighted by rarity (IDF), that
    the sentence or the one before it (at position ``previous``) contains (light verbs
    such as "take" or "come" left out)."""
    terms = (set(q.terms) | extra) - LIGHT_VERBS
    if not terms:
        return 0.0
    # the stems the lexical index keeps for each sentence: no tokenising per question
    present = set(lexical.stems(hit.position))
    if previous is not None:
        present.update(lexical.stems(previous))
    total = sum(lexical.idf(t) for t in terms)
    found = sum(lexical.idf(t) for t in terms if t in present or _shares_root(t, present))
    return found / total if total else 0.0


def _shares_root(term: str, present: set[str]) -> bool:
    """Whether a stem of the sentence and ``term`` are one the beginning of the other, both
    at least ROOT letters long: the stemmer leaves "council" and "councillor", "terror"
    and "terrorist" apart."""
    return len(term) >= ROOT and any(
        len(s) >= ROOT and (s.startswith(term) or term.startswith(s)) for s in present
    )


def unknown_names(q: Question, lexical) -> list[str]:
    """Names in the question (capitalised words after the first) that no document uses:
    "Who is the president of Atlantis?" cannot be answered by documents without Atlantis."""
    return [
        t.text
        for t in q.tokens[1:]
        if t.stem and t.capitalised and t.stem not in lexical.vocabulary
    ]


def _abstains(
    q: Question,
    best: Hit,
    lexical,
    calibration: Calibration,
    confidence: float,
    previous: int | None = None,
    first: bool = True,
    carried: frozenset = frozenset(),
) -> bool:
    c = calibration
    covered = coverage(q, best, lexical, previous, carried)
    if confidence < 0.5 and not (
        covered >= c.full_coverage and confidence >= c.full_coverage_confidence
    ):
        return True  # a weak match, unless the sentence holds nearly all the question's words
    if unknown_names(q, lexical):
        return True
    typed = q.kind in TYPED and bool(expressions(best.sentence.text, q))
    needed = c.min_coverage if first else c.min_coverage_lower
    if typed and first:
        needed = min(needed, c.typed_coverage)
    if covered < needed:
        return True  # the sentence shares only common words with the question
    if (
        q.focus
        and q.focus_direct
        and q.kind not in TYPED  # for those, the expression of the kind is checked below
        and q.focus not in lexical.vocabulary
        and covered < 0.5
    ):
        return True  # "which currency ..." where no document mentions a currency
    if q.kind in TYPED and not typed:
        return True  # "how old ..." and the best sentence holds no age
    if q.kind == "person" and not _names_beyond(q, best):
        return True  # "who leads X?" and the sentence names no one but X
    return False


def _names_beyond(q: Question, hit: Hit) -> bool:
    """Whether the sentence holds a capitalised word (a name) that the question does not."""
    asked = {t.text.lower() for t in q.tokens}
    return any(
        t.capitalised and t.stem and t.text.lower() not in asked
        for t in tokenize(hit.sentence.text)
    )

"""Answering: retrieve, read, decide.

1. **Retrieve** (``retrieve.py``): hybrid dense and lexical retrieval proposes the sentences
   that best match the question; a follow-up carries the last turn into the query.
2. **Read** (``read.py``): the trained reader reads the first N of them (N chosen on
   validation, recorded in its model card) in one batched run: for each, the best span and
   its margin over no answer.
3. **Decide** (``decide.py``): the best span across sentences answers when its margin
   reaches the threshold fitted on validation; otherwise the documents do not say. The
   answering sentence is cited first, the others by the reader's score.

``confidence`` is the reader's margin through a calibration fitted on validation: for an
answer, the probability that it is right; for "the documents do not say", the probability
that they indeed do not.
"""

from __future__ import annotations

from collections.abc import Sequence

from .decide import decide
from .embed import Embedder
from .features import Candidate
from .index import Index
from .lexical import LexicalIndex
from .read import Reader
from .records import Answer, Citation, Turn
from .retrieve import Hit, make_query, retrieve


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long, not text)."""


def previous_text(index: Index, hit: Hit) -> str:
    """The sentence before ``hit`` in its document ("" for a first sentence)."""
    return "" if hit.sentence.index == 0 else index.sentences[hit.position - 1].text


def answer_question(
    index: Index,
    lexical: LexicalIndex,
    embedder: Embedder,
    reader: Reader,
    question: str,
    history: Sequence[Turn] = (),
    top_k: int = 3,
) -> Answer:
    """The answer to ``question``: a verbatim span of the first citation, or None."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    last = history[-1] if history else None
    query = make_query(question, last.question if last else "", last.answer if last else None)
    settings = reader.settings
    hits = retrieve(index, lexical, embedder, query, max(settings.candidates, top_k))
    if not hits:
        return Answer(question, None, None, None, 0.0, (), index.version)
    readings = reader.read(
        query.text,
        [Candidate(h.sentence.text, previous_text(index, h)) for h in hits],
        query.last_question,
        query.last_answer,
    )
    # the decision is made on the N sentences it was validated with; further citations
    # (a top_k over N) follow them by the reader's score
    decision = decide(readings[: settings.candidates], settings.threshold)
    rest = sorted(range(settings.candidates, len(readings)), key=lambda i: -readings[i].margin)
    citations = tuple(
        Citation(
            h.sentence.doc,
            h.sentence.index,
            h.sentence.start,
            h.sentence.end,
            h.sentence.text,
            settings.confidence(readings[i].margin, answered=True),
        )
        for i in [*decision.order, *rest][:top_k]
        for h in (hits[i],)
    )
    if not decision.answered:
        confidence = settings.confidence(decision.margin, answered=False)
        return Answer(question, None, None, None, confidence, citations, index.version)
    best = readings[decision.order[0]]
    sentence = hits[decision.order[0]].sentence
    return Answer(
        question,
        sentence.text[best.start : best.end],
        sentence.start + best.start,
        sentence.start + best.end,
        settings.confidence(decision.margin, answered=True),
        citations,
        index.version,
    )

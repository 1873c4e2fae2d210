"""Answering: retrieve, read, decide.

1. **Retrieve** (``retrieve.py``): hybrid dense and lexical retrieval proposes the sentences
   that best match the question; a follow-up carries the last turn into the query.
2. **Read** (``read.py``): the trained reader reads the first N of them (N chosen on
   validation, recorded in its model card) in one batched run: for each, the best span and
   its margin over no answer.
3. **Decide** (``decide.py``): the best span across sentences (by the reader's margin)
   answers when the decider, fitted on validation, finds the question answered: its score
   (the log-odds that the documents answer, from the readings and the retrieval) reaches
   the threshold; otherwise the documents do not say. The answering sentence is cited
   first, the others by the reader's margin.

``confidence`` is the decider's score through a calibration fitted on validation: for an
answer, the probability that it is right; for "the documents do not say", the probability
that they indeed do not. A citation's ``score`` is the probability that its sentence's
best span is right, from its margin.
"""

from __future__ import annotations

from collections.abc import Sequence

from .decide import Evidence, decide
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
    previous = [previous_text(index, h) for h in hits]
    candidates = [Candidate(h.sentence.text, p) for h, p in zip(hits, previous, strict=True)]
    # the decision is made on the N sentences it was validated with, read in one batch as
    # they were validated (dynamic int8 scales a batch as a whole, so reading more beside
    # them would move their scores, and the answer would depend on top_k); further
    # citations (a top_k over N) are read apart and follow them by the reader's score
    n = settings.candidates
    readings = [
        reading
        for part in (candidates[:n], candidates[n:])
        if part
        for reading in reader.read(query.text, part, query.last_question, query.last_answer)
    ]
    evidence = Evidence.of(query.text, hits[:n], previous[:n], followup=last is not None)
    decision = decide(readings[:n], settings.threshold, settings.decider, evidence)
    rest = sorted(range(settings.candidates, len(readings)), key=lambda i: -readings[i].margin)
    citations = tuple(
        Citation(
            h.sentence.doc,
            h.sentence.index,
            h.sentence.start,
            h.sentence.end,
            h.sentence.text,
            settings.citation_score(readings[i].margin),
        )
        for i in [*decision.order, *rest][:top_k]
        for h in (hits[i],)
    )
    if not decision.answered:
        confidence = settings.confidence(decision.score, answered=False)
        return Answer(question, None, None, None, confidence, citations, index.version)
    best = readings[decision.order[0]]
    sentence = hits[decision.order[0]].sentence
    return Answer(
        question,
        sentence.text[best.start : best.end],
        sentence.start + best.start,
        sentence.start + best.end,
        settings.confidence(decision.score, answered=True),
        citations,
        index.version,
    )

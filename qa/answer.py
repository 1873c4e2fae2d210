"""Answering: retrieve the relevant sentences and answer with text taken from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .index import Index
from .records import Answer, Citation
from .retrieve import dense_search


class QuestionError(ValueError):
    """The question cannot be asked (empty, too long, not text)."""


@dataclass(frozen=True)
class Turn:
    """An earlier turn of the conversation, as the client sends it back."""

    question: str
    answer: str | None = None


def answer_question(
    index: Index, embedder, question: str, history: Sequence[Turn] = (), top_k: int = 3
) -> Answer:
    """The answer to ``question`` from ``index``: a verbatim span of the first citation."""
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty")
    query = embedder.encode([question.strip()])[0]
    hits = dense_search(index, query, top_k)
    citations = tuple(
        Citation(h.sentence.doc, h.sentence.index, h.sentence.start, h.sentence.end,
                 h.sentence.text, h.score)
        for h in hits
    )
    if not citations:
        return Answer(question, None, None, None, 0.0, (), index.version)
    best = citations[0]
    confidence = min(1.0, max(0.0, best.score))
    return Answer(question, best.text, best.start, best.end, confidence, citations, index.version)

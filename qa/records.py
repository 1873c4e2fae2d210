"""Records that cross a boundary: sentences, citations and answers.

Each is a frozen dataclass with one ``to_dict()``; the JSON API and ``qa ask --json``
both serialise through it, so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One document of the corpus: its id is its path relative to the seeds folder."""

    id: str
    text: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "chars": len(self.text), "sha256": self.sha256}


@dataclass(frozen=True)
class Sentence:
    """A sentence of a document: ``document.text[start:end] == text``."""

    doc: str
    index: int
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc, "sentence": self.index, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Turn:
    """An earlier turn of the conversation, as the client sends it back."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Citation:
    """A cited sentence, with the reader's probability that it holds the answer."""

    doc: str
    sentence: int
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc": self.doc,
            "sentence": self.sentence,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class Answer:
    """The JSON answer: a verbatim span of the first citation, or None when the documents
    do not answer (the citations are then the closest passages, offered as related)."""

    question: str
    answer: str | None
    answer_start: int | None
    answer_end: int | None
    confidence: float
    citations: tuple[Citation, ...] = field(default_factory=tuple)
    index_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "answer_start": self.answer_start,
            "answer_end": self.answer_end,
            "confidence": round(float(self.confidence), 4),
            "citations": [c.to_dict() for c in self.citations],
            "index_version": self.index_version,
        }

"""Retrieval: dense (FAISS) and lexical (BM25) rankings fused into one.

The dense ranking finds paraphrases; the lexical one finds the exact names and numbers a
question mentions. Their scores are on comparable scales (cosine in [-1, 1], normalised
BM25 in [0, 1]) and are added with a weight, which keeps each score meaningful for the
abstention step (reciprocal-rank fusion would throw the magnitudes away).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .embed import Embedder
from .index import Index
from .lexical import LexicalIndex
from .rank import RANKED, Ranker
from .records import Sentence, Turn
from .text import content_stems
from .vectors import dense_search, reconstruct

LEXICAL_WEIGHT = 0.7
POOL = 100  # candidates taken from each ranking before fusing


@dataclass(frozen=True)
class Hit:
    position: int  # in index.sentences
    sentence: Sentence
    score: float  # fused
    dense: float
    lexical: float


def hybrid_search(
    index: Index,
    lexical: LexicalIndex,
    query: np.ndarray,
    terms: dict[str, float],
    k: int,
    ranker: Ranker | None = None,
) -> list[Hit]:
    """The ``k`` best sentences by dense score plus LEXICAL_WEIGHT times the lexical one;
    with a ``ranker``, the best RANKED of those in its order (``rank.py``)."""
    dense = dense_search(index.vectors, query, max(POOL, k))
    lex = lexical.top(terms, POOL)
    missing = [i for i in lex if i not in dense]
    if missing:
        vectors = reconstruct(index.vectors, missing)
        dense.update(zip(missing, (vectors @ query).tolist(), strict=False))
    # fuse and rank first; only the k kept become Hits (a stable sort, as before)
    fused = [(d + LEXICAL_WEIGHT * lex.get(i, 0.0), i, d) for i, d in dense.items()]
    fused.sort(key=lambda f: -f[0])
    kept = k if ranker is None else max(k, RANKED)
    hits = [Hit(i, index.sentences[i], s, d, lex.get(i, 0.0)) for s, i, d in fused[:kept]]
    return hits if ranker is None else ranker.order(index, hits, query)[:k]


# --- the query ---------------------------------------------------------------------------

HISTORY_WEIGHT = 0.35  # weight of the previous turn in a follow-up's query
SHORT_ANSWER = 60  # characters: a longer earlier answer is a sentence, not a name to follow


@dataclass(frozen=True)
class Query:
    """A question and what it carries from the last turn of the conversation."""

    text: str
    last_question: str = ""
    last_answer: str = ""  # only when it was a short span

    @property
    def context(self) -> str:
        return " ".join(x for x in (self.last_question, self.last_answer) if x)


# Words by which a question points back at the conversation: pronouns and determiners
# that need an antecedent, and words that continue a question asked before. A question with
# history that has none of them (and more than SHORT_QUESTION words) is asked as if alone.
REFERRING = frozenset(
    "it its itself they them their theirs themselves he him his himself she her hers "
    "herself this that these those there then one ones such same other another too else "
    "former latter".split()
)
CONTINUING = ("and", "also", "so", "but")  # as a question's first word
SHORT_QUESTION = 3  # words: "In what year?", "Why?", "From when?" lean on the last turn


def refers_back(question: str) -> bool:
    """Whether ``question``, asked after another turn, needs that turn to be understood:
    it holds a referring word (contractions too: "they're", "that's"), begins by
    continuing ("And how many?", "What about ..."), or is a fragment. Asked with history, a
    question that does not is answered as asked alone: the reader, trained on follow-ups
    that carry their last turn, answers far more unanswerable questions when handed a turn
    that has nothing to do with them (validation in docs/reader.md: abstain 0.78 alone,
    0.58 after another question). The words are English's: a question with no word in
    Latin letters is read with its last turn, as every question was before."""
    text = question.lower().replace("\u2019", "'")
    words = [w.partition("'")[0] for w in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text)]
    if not any(w.isascii() for w in words) or len(words) <= SHORT_QUESTION:
        return True
    if words[0] in CONTINUING or " ".join(words[:2]) in ("what about", "how about"):
        return True
    return not REFERRING.isdisjoint(words)


def make_query(question: str, last_question: str = "", last_answer: str | None = None) -> Query:
    """The query of ``question``; a follow-up carries its last turn's question, and its
    answer when that is a short span (a whole sentence would pull retrieval back to the
    previous answer)."""
    answer = last_answer if last_answer and len(last_answer) <= SHORT_ANSWER else ""
    return Query(" ".join(question.split()), last_question.strip(), answer.strip())


def query_of(question: str, last: Turn | None) -> Query:
    """The query of ``question`` asked after the turn ``last`` (None: asked first), as the
    service reads it: a follow-up carries its last turn only when it refers back to it."""
    if last is None or not refers_back(question):
        return make_query(question)
    return make_query(question, last.question, last.answer)


def query_terms(query: Query) -> dict[str, float]:
    """Lexical terms: the question's words, the last turn's at a lower weight."""
    terms = {stem: HISTORY_WEIGHT for stem in content_stems(query.context)}
    terms.update((stem, 1.0) for stem in content_stems(query.text))
    return terms


def query_vector(question: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
    """The dense query: the question's vector, plus the last turn's at a lower weight."""
    if context is None:
        return question
    mixed = question + HISTORY_WEIGHT * context
    return mixed / (np.linalg.norm(mixed) or 1.0)


def retrieve(
    index: Index,
    lexical: LexicalIndex,
    embedder: Embedder,
    query: Query,
    k: int,
    ranker: Ranker | None = None,
) -> list[Hit]:
    """The ``k`` sentences that best match ``query``, best first (by ``ranker``, if any)."""
    texts = [query.text] + ([query.context] if query.context else [])
    vectors = embedder.encode_questions(texts)
    vector = query_vector(vectors[0], vectors[1] if query.context else None)
    return hybrid_search(index, lexical, vector, query_terms(query), k, ranker)

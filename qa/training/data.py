"""Training and validation rows for the reader, from the labelled corpus and the service's
own retrieval.

Each question is asked of its own document exactly as the service would ask it (the same
embedding, the same hybrid retrieval, the same follow-up query): the sentences retrieval
returns are what the reader will meet. A training question gives its answering sentence,
with the span, and the wrong sentences retrieval ranks highest, with no answer; a
validation question keeps its top retrieved sentences, to be read as the service reads them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from ..answer import candidate, read_hits
from ..build import retrieval_texts, sentences_of, with_context
from ..corpus import Corpus, Example
from ..embed import Embedder
from ..engine import Engine
from ..evaluate import Item
from ..features import Candidate
from ..index import Index
from ..lexical import LexicalIndex
from ..markdown import read_span, table_headers
from ..rank import Ranker
from ..records import Document, Turn
from ..retrieve import (
    Hit,
    Query,
    hybrid_search,
    make_query,
    query_of,
    query_terms,
    query_vector,
    refers_back,
    retrieve,
)


@dataclass(frozen=True)
class Row:
    """One sentence for the reader to learn from: the span, or None for no answer."""

    question: str
    last_question: str
    last_answer: str
    candidate: Candidate
    span: tuple[int, int] | None  # character offsets in the sentence
    group: int = -1  # the question it is read for (its rows share it; --listwise)
    # whether it learns the teachers' logits too; False: its label only, where a teacher is
    # known to be wrong (a contrast question's sentence, ``contrast.py``)
    distilled: bool = True


@dataclass(frozen=True)
class Asked:
    """A question and the sentences the service's retrieval returned for it, best first."""

    example: Example
    question: str
    last_question: str
    last_answer: str
    hits: tuple[Hit, ...]
    previous: tuple[str, ...]  # what the decider takes as before each hit (previous_text)
    read: tuple[Candidate, ...]  # each hit as the reader reads it (answer.candidate)
    # the dense query (ask_all's; what a ranker is fitted on)
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)

    def candidates(self, n: int) -> list[Candidate]:
        return list(self.read[:n])


def subset(examples: list[Example], limit: int, rng: random.Random) -> list[Example]:
    """``limit`` of ``examples`` drawn at random (all of them when ``limit`` is 0): the
    training commands' smoke runs."""
    if not limit or len(examples) <= limit:
        return examples
    return rng.sample(examples, limit)


def document_indexes(corpus: Corpus, embedder: Embedder) -> dict[str, tuple[Index, LexicalIndex]]:
    """An in-memory index of each document on its own: the service answers from the
    documents it is given, and a question is about its own document."""
    docs = [Document(d, text, "") for d, text in sorted(corpus.documents.items())]
    sentences = {d.id: sentences_of(d) for d in docs}
    read = {
        d.id: retrieval_texts(sentences[d.id], table_headers(sentences[d.id], corpus.documents))
        for d in docs
    }
    vectors = embedder.encode([t for d in docs for t in read[d.id]])
    import faiss

    out, row = {}, 0
    for d in docs:
        sents = sentences[d.id]
        v = with_context(vectors[row : row + len(sents)], sents)
        row += len(sents)
        flat = faiss.IndexFlatIP(v.shape[1])
        flat.add(v)
        index = Index(corpus.root, {}, "", {d.id: d}, tuple(sents), flat)
        out[d.id] = (index, LexicalIndex(sents, read[d.id]))
    return out


def pools(documents: list[str], size: int, rng: random.Random) -> list[list[str]]:
    """``documents`` shuffled by ``rng`` into pools of ``size`` (a last pool under half that,
    or of one document, joins the one before): folders of documents, as a user gives the
    service."""
    order = sorted(documents)
    rng.shuffle(order)
    out = [order[i : i + size] for i in range(0, len(order), size)]
    if len(out) > 1 and (len(out[-1]) * 2 < size or len(out[-1]) < 2):
        last = out.pop()
        out[-1] += last
    return out


def pool_indexes(
    indexes: dict[str, tuple[Index, LexicalIndex]], groups: list[list[str]]
) -> dict[str, tuple[Index, LexicalIndex]]:
    """One index of each pool's documents together (the documents' own vectors, with their
    context, as one index of them all holds them), under each of its documents' names."""
    import faiss

    out: dict[str, tuple[Index, LexicalIndex]] = {}
    for group in groups:
        parts = [indexes[d][0] for d in group]
        sents = tuple(s for index in parts for s in index.sentences)
        flat = faiss.IndexFlatIP(parts[0].vectors.d)
        for index in parts:
            flat.add(index.vectors.reconstruct_n(0, index.vectors.ntotal))
        docs = {d: doc for index in parts for d, doc in index.documents.items()}
        index = Index(parts[0].path, {}, "", docs, sents, flat)
        pooled = (index, LexicalIndex(sents, retrieval_texts(sents, index.table_headers)))
        out.update((d, pooled) for d in group)
    return out


def ask_others(
    asked: list[Asked],
    pooled: dict[str, tuple[Index, LexicalIndex]],
    k: int,
    named_rows: bool,
    ranker: Ranker | None = None,
) -> list[tuple[Candidate, ...]]:
    """For each question asked, the sentences of other documents that retrieval ranks among
    the first ``k`` when it is asked of its document's pool (in ``ranker``'s order, if any,
    as the service would), best first, as the reader reads them; none that holds one of its
    acceptable answers."""
    out = []
    for a in asked:
        e = a.example
        index, lexical = pooled[e.doc]
        terms = query_terms(Query(a.question, a.last_question, a.last_answer))
        assert a.vector is not None  # ask_all keeps each question's dense query
        hits = [
            h
            for h in hybrid_search(index, lexical, a.vector, terms, k, ranker)
            if h.sentence.doc != e.doc and not (e.answerable and holds_answer(h.sentence.text, e))
        ]
        out.append(read_hits(index, [h.position for h in hits], named_rows)[1])
    return out


def ask_all(
    examples: list[Example],
    indexes: dict[str, tuple[Index, LexicalIndex]],
    embedder: Embedder,
    k: int,
    named_rows: bool = False,
    as_served: bool = False,
) -> list[Asked]:
    """Every example asked of its document; the question vectors embedded in one go. With
    ``named_rows``, Markdown table rows are read as named cells (``answer.candidate``).
    A follow-up carries its last turn; ``as_served``, only when it refers back to it, as
    the service asks (``retrieve.refers_back``); training rows keep every labelled turn."""
    queries = [
        make_query(e.question, e.turns[-2], e.history_answer)
        if e.followup and (refers_back(e.question) or not as_served)
        else make_query(e.question)
        for e in examples
    ]
    texts = [q.text for q in queries] + [q.context for q in queries if q.context]
    vectors = embedder.encode_questions(texts) if texts else np.zeros((0, 0))
    contexts = iter(vectors[len(queries) :])
    asked = []
    for e, q, v in zip(examples, queries, vectors, strict=False):
        vector = query_vector(v, next(contexts) if q.context else None)
        index, lexical = indexes[e.doc]
        hits = tuple(hybrid_search(index, lexical, vector, query_terms(q), k))
        previous, read = read_hits(index, [h.position for h in hits], named_rows)
        asked.append(Asked(e, q.text, q.last_question, q.last_answer, hits, previous, read, vector))
    return asked


def holds_answer(text: str, example: Example) -> bool:
    """Whether a sentence holds one of the example's acceptable answers: such a sentence is
    not taught as having none."""
    lower = text.lower()
    return any(a.lower() in lower for a in example.answer if a.strip())


def erase(text: str, span: tuple[int, int]) -> str:
    """``text`` without the characters of ``span``, the spaces around the cut tidied:
    the sentence still speaks of the question's topic but no longer holds its answer."""
    before, after = text[: span[0]].rstrip(), text[span[1] :].lstrip()
    if not before or not after or after[0] in ",.;:!?)”’'\"":
        return before + after
    return before + " " + after


def training_rows(
    asked: list[Asked],
    indexes: dict[str, tuple[Index, LexicalIndex]],
    negatives: int,
    rng: random.Random,
    erased: float = 0.0,
    named_rows: bool = False,
    others: list[tuple[Candidate, ...]] | None = None,
) -> list[Row]:
    """The answering sentence of each answerable question, with its span, and up to
    ``negatives`` wrong sentences from the top of its retrieval (drawn once, at random
    among the first 2 x ``negatives``: every epoch reads the same rows), with no answer.

    With ``erased``, that share of the answerable questions also gets its answering
    sentence with the span cut out, with no answer: the hardest unanswerable questions
    are those a sentence nearly answers, and this teaches that the asked detail itself
    must be there (the augmentation of SQuAD 2.0's unanswerable questions).

    With ``named_rows``, an answering table row is read as named cells, as the service
    would read it, and its span is taught where its characters are read (``read_span``).

    With ``others`` (``ask_others``: each question's sentences of other documents, best
    first), one of the ``negatives`` is drawn from the first 2 of those (when it has any),
    and the rest from the first 2 x (``negatives`` - 1) of its own document's."""
    rows = []
    for group, a in enumerate(asked):
        e = a.example
        head = (a.question, a.last_question, a.last_answer)
        if e.answerable:
            index, _ = indexes[e.doc]
            number, span = e.gold()
            gold = candidate(index, number, named_rows)  # as the service will read it
            if gold.source is not None:
                try:
                    span = read_span(gold.source, *span)
                except ValueError:  # a span of what named cells leave out (marks, bars)
                    gold = candidate(index, number)  # taught on the row as written
            rows.append(Row(*head, gold, span, group))
            if erased > 0 and rng.random() < erased and gold.source is None:
                cut = erase(gold.sentence, span)
                if len(cut.split()) >= 4 and not holds_answer(cut, e):
                    rows.append(Row(*head, Candidate(cut, gold.previous), None, group))
        other = others[group][:2] if others is not None and negatives else ()
        own = negatives - 1 if other else negatives
        wrong = [
            c
            for h, c in zip(a.hits, a.read, strict=True)
            if h.sentence.index != e.sentence
            and not (e.answerable and holds_answer(h.sentence.text, e))
        ][: 2 * own]
        for c in rng.sample(wrong, min(own, len(wrong))):
            rows.append(Row(*head, c, None, group))
        if other:
            rows.append(Row(*head, rng.choice(other), None, group))
    return rows


def ask_service(engine: Engine, items: list[Item], k: int) -> list[Asked]:
    """Questions of a ``shared/eval`` set asked of the service's own index, as it asks
    them: an earlier turn's answer is the one the engine gives."""
    snapshot = engine.snapshot
    asked = []
    for item in items:
        history: list[Turn] = []
        for turn in item.turns[:-1]:
            history.append(Turn(turn, engine.ask(turn, history=history).answer))
        query = query_of(item.turns[-1], history[-1] if history else None)
        ranker = engine.reader.settings.ranker  # as the service ranks them
        hits = tuple(retrieve(snapshot.index, snapshot.lexical, engine.embedder, query, k, ranker))
        positions = [h.position for h in hits]
        previous, read = read_hits(snapshot.index, positions, engine.named_rows)
        example = Example(item.id, "", item.turns, item.answerable, item.support, item.answer)
        asked.append(
            Asked(example, query.text, query.last_question, query.last_answer, hits, previous, read)
        )
    return asked

"""Answering: retrieve, read, decide.

1. **Retrieve** (``retrieve.py``): hybrid dense and lexical retrieval proposes the sentences
   that best match the question; a follow-up carries the last turn into the query. When
   the reader's card has a ranker (``rank.py``), it orders the best of them again.
2. **Read** (``read.py``): the trained reader reads the first N of them (N chosen on
   validation, recorded in its model card), each sentence in a run of its own (side by
   side on the cores for a question alone), so that a sentence's reading depends on the
   question and that sentence only: for each, the best span and its margin over no
   answer. Further citations (a ``top_k`` over N) are read N at a time after them, so
   that no reading, and so no answer, depends on how many were asked for.
3. **Decide** (``decide.py``): the best span across sentences (by the reader's margin)
   answers when the decider, fitted on validation, finds the question answered: its score
   (the log-odds that the documents answer, from the readings and the retrieval) reaches
   the threshold; otherwise the documents do not say. When the card has a further reading
   (``read.Further``) and the first N leave the decider unsure (a score in a band under the
   threshold), the next N are read too and all 2N decided on by a decider fitted on 2N
   readings. The answering sentence is cited first, the others of those decided on by the
   reader's margin, then each further batch likewise.

``confidence`` is a calibration fitted on validation (the first batch's and the further
reading's each their own): for an answer, the probability that it is right, from the best
span's inputs and the score that decided (``Settings.right``; an answer of a further
reading, from the score alone); for "the documents do not say", the probability that they
indeed do not, from the score.
A citation's ``score`` is the probability that its sentence's best span is right, from its
margin.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from .config import Config
from .decide import Evidence, decide
from .documents import is_markdown
from .embed import Embedder
from .errors import QAError
from .features import Candidate, Reading
from .index import Index
from .lexical import LexicalIndex
from .markdown import markdown_view, row_view, tidy_span
from .read import Reader
from .records import Answer, Citation, Sentence, Turn
from .retrieve import query_of, retrieve
from .text import balanced_span, whole_names


class QuestionError(QAError, ValueError):
    """The question cannot be asked as given: it is empty, too long or not text, or its
    history or ``top_k`` is out of bounds."""


def check_ask(
    question: object,
    history: Sequence[Turn],
    top_k: object,
    config: Config,
    name: str = "the question",
) -> int:
    """The number of citations to give (``top_k``; None: ``config.top_k``) if ``question``
    (called ``name`` in a message), ``history`` and ``top_k`` are within ``config``'s limits
    (max_question_chars, max_history, max_top_k), else QuestionError saying why: the one
    check of Engine.ask and the API."""
    check_question(question, config.max_question_chars, name)
    check_history(history, config.max_history, config.max_question_chars)
    return config.top_k if top_k is None else check_top_k(top_k, config.max_top_k)


def check_history(history: Sequence[Turn], limit: int, question_chars: int) -> None:
    """QuestionError unless ``history`` holds at most ``limit`` turns, each a Turn whose
    question could be asked (``check_question``) and whose answer is text or None."""
    if len(history) > limit:
        raise QuestionError(f"history holds at most {limit} turns")
    for i, turn in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(turn, Turn):
            raise QuestionError(f"{where} must be a Turn, not {type(turn).__name__}")
        check_question(turn.question, question_chars, f"{where}.question")
        if turn.answer is not None:
            if not isinstance(turn.answer, str):
                raise QuestionError(f"{where}.answer must be a string or None")
            check_text(turn.answer, f"{where}.answer")


def check_top_k(top_k: object, limit: int) -> int:
    """``top_k`` if it is a whole number from 1 to ``limit``, else QuestionError."""
    # bool is an int in Python, but True is not a number of citations
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise QuestionError("top_k must be an integer")
    if not 1 <= top_k <= limit:
        raise QuestionError(f"top_k must be between 1 and {limit}, not {top_k}")
    return top_k


def check_question(text: object, limit: int, name: str = "the question") -> str:
    """``text`` if it can be asked (a string, not blank, at most ``limit`` characters), else
    QuestionError saying why, naming it ``name``: the one check of `qa ask` and the API."""
    if not isinstance(text, str):
        raise QuestionError(f"{name} must be a string")
    if blank(text):
        raise QuestionError(f"{name} is empty")
    if len(text) > limit:
        raise QuestionError(f"{name} is over {limit} characters")
    return check_text(text, name)


# what shows nothing (spaces are caught by str.isspace): controls (NUL, ...), format
# characters (U+200B, U+FEFF), separators, and marks that alone belong to no letter
# (variation selectors, combining accents)
INVISIBLE = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"))
# letters and symbols that show nothing: the Hangul fillers and the blank braille pattern
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def blank(text: str) -> bool:
    """Whether ``text`` holds nothing to read: only spaces, invisible characters, marks
    on no letter and the letters that show nothing. (The chat page's ``blank`` says the
    same.)"""
    return all(
        c.isspace() or c in BLANK_LETTERS or unicodedata.category(c) in INVISIBLE for c in text
    )


def check_text(text: str, name: str) -> str:
    """``text`` if it is text the tokenizer can read, else QuestionError naming it ``name``:
    JSON's "\ud800", or command-line bytes that are not UTF-8, are no characters at all."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QuestionError(
            f"{name} holds an unpaired surrogate code point (text that is not UTF-8)"
        ) from None
    return text


def read_text(sentence: Sentence) -> str:
    """``sentence`` as the reader reads it: a Markdown document's with its code and emphasis
    marks blanked (``markdown_view``: the same length, so the reader's offsets are the
    sentence's), any other as it is."""
    return markdown_view(sentence.text) if is_markdown(sentence.doc) else sentence.text


def previous_text(index: Index, position: int) -> str:
    """What is read before the sentence at ``position`` of ``index`` (``read_text``): the
    sentence before it in its document ("" for a first sentence); for a row of a Markdown
    table, the table's header row, which says what its cells are."""
    sentence = index.sentences[position]
    if sentence.index == 0:
        return ""
    header = table_header(index, position)
    return read_text(index.sentences[position - 1 if header is None else header])


def table_header(index: Index, position: int) -> int | None:
    """The position of the header row of the Markdown table that the sentence at
    ``position`` is a row of (``Index.table_headers``), or None."""
    if not is_markdown(index.sentences[position].doc):
        return None  # (a text document's needs no look at the index's table headers)
    return index.table_headers[position]


def candidate(
    index: Index, position: int, named_rows: bool = False, previous: str | None = None
) -> Candidate:
    """The sentence at ``position`` of ``index`` as the reader reads it: ``read_text``
    after ``previous_text`` (``previous``, when the caller has it). With ``named_rows``, a
    row of a Markdown table (not its header) is read as its cells each after its column's
    name instead (``row_view``: 'Port: 2525'), after the sentence before the table. The
    reader's spans are offsets into the sentence as written either way."""
    sentence = index.sentences[position]
    header = table_header(index, position) if named_rows else None
    view = None if header is None else row_view(sentence.text, index.sentences[header].text)
    if header is None or view is None:
        before = previous_text(index, position) if previous is None else previous
        return Candidate(read_text(sentence), before)
    first = index.sentences[header].index == 0
    return Candidate(view[0], "" if first else read_text(index.sentences[header - 1]), view[1])


def read_hits(
    index: Index, positions: Sequence[int], named_rows: bool = False
) -> tuple[tuple[str, ...], tuple[Candidate, ...]]:
    """For the sentences at ``positions``: what the decider takes as before each
    (``previous_text``), and each as the reader reads it (``candidate``)."""
    previous = tuple(previous_text(index, p) for p in positions)
    read = tuple(
        candidate(index, p, named_rows, b) for p, b in zip(positions, previous, strict=True)
    )
    return previous, read


def answer_question(
    index: Index,
    lexical: LexicalIndex,
    embedder: Embedder,
    reader: Reader,
    question: str,
    history: Sequence[Turn] = (),
    top_k: int = 3,
    named_rows: bool = False,
) -> Answer:
    """The answer to ``question``: a verbatim span of the first citation, or None. With
    ``named_rows``, Markdown table rows are read as named cells (``candidate``)."""
    check_question(question, len(question) if isinstance(question, str) else 0)
    last = history[-1] if history else None
    if last is not None:  # the query reads the last turn too
        check_text(last.question, "the last turn's question")
        check_text(last.answer or "", "the last turn's answer")
    query = query_of(question, last)  # ... when the question points back at it
    settings = reader.settings
    n, further = settings.candidates, settings.further
    # further citations are read N at a time: retrieve whole batches of N, cut to top_k;
    # with a further reading, at least two batches
    batches = max(-(-max(n, top_k) // n), 2 if further else 1)
    hits = retrieve(index, lexical, embedder, query, n * batches, settings.ranker)
    if not hits:  # the documents hold no sentence at all: they surely do not say
        return Answer(question, None, None, None, 1.0, (), index.version)
    previous, candidates = read_hits(index, [h.position for h in hits], named_rows)
    followup = bool(query.last_question)

    def read(batch: int) -> list[Reading]:
        # N at a time, as the decision was validated: the first N decide, and further ones
        # follow them (each sentence is a run of its own, so its reading, and so the
        # answer or a citation's score, never depends on top_k)
        batch_of = candidates[batch * n : (batch + 1) * n]
        return reader.read(query.text, batch_of, query.last_question, query.last_answer)

    readings = read(0)
    evidence = Evidence.of(query.text, hits[:n], previous[:n], followup)
    decision = decide(readings, settings.threshold, settings.decider, evidence)
    confidence = settings.confidence
    if (
        further is not None
        and not decision.answered
        and decision.score >= further.below
        and len(hits) > n
    ):
        # unsure on the first N: the next N are read, and the 2N decided on together
        readings += read(1)
        evidence = Evidence.of(query.text, hits[: 2 * n], previous[: 2 * n], followup)
        decision = decide(readings, further.threshold, further.decider, evidence)
        confidence = further.confidence
    needed = min(len(hits), max(top_k, len(decision.order)))
    while len(readings) < needed:
        readings += read(len(readings) // n)
    # further citations batch by batch, each by the reader's margin: a prefix of a longer list
    decided = len(decision.order)
    rest = sorted(range(decided, len(readings)), key=lambda i: (i // n, -readings[i].margin))
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
    span = None
    if decision.answered:
        best = readings[decision.order[0]]
        sentence = hits[decision.order[0]].sentence
        span = whole_names(sentence.text, best.start, best.end)  # no 'TIDEPOOL' of a name
        span = balanced_span(sentence.text, *span)  # no quotation left open
        if is_markdown(sentence.doc):
            span = tidy_span(sentence.text, *span)  # no Markdown left broken at its edges
            if not any(c.isalnum() for c in sentence.text[slice(*span)]):
                span = None  # a bare mark ('|') answers nothing
    if span is None:
        abstained = confidence(decision.score, False)
        return Answer(question, None, None, None, abstained, citations, index.version)
    start, end = span
    return Answer(
        question,
        sentence.text[start:end],
        sentence.start + start,
        sentence.start + end,
        confidence(decision.score, True, decision.features),
        citations,
        index.version,
    )

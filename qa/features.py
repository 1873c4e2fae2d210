"""What the reader reads, and how its output becomes a span: shared by training and serving,
so that the two can never drift apart. Needs only numpy and ``tokenizers`` (no torch).

One row of a batch is one candidate sentence::

    [CLS] question [SEP] last question  last answer [SEP] previous sentence [SEP] sentence [SEP]
    `---------------- segment 0 -----------------------'  `----------- segment 1 -----------'

(the follow-up part only for a follow-up; the previous sentence only when there is one, and
only its end, or its start and its end: ``Limits``). The model gives a start and an end
logit for every token; the no-answer score of a row is the start plus the end logit of
[CLS], as in SQuAD 2.0 readers. A span's margin, its start plus end logit minus the
no-answer score, compares across sentences.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from .markdown import source_span

NEG = -1e4  # the logit of a position that can never start or end a span
# sentences whose tokens a featurizer keeps: the same sentences are read for question after
# question (the best of a document), and tokenising them was about 1 ms of a 24 ms answer
KEPT_SENTENCES = 1024


@dataclass(frozen=True)
class Limits:
    """Token budgets of each part of a row (recorded in the model card)."""

    question: int = 32
    last_question: int = 16
    last_answer: int = 12
    previous: int = 12  # the end of the previous sentence, nearest to the sentence
    # the start of the previous sentence (its subject, what "it" or "the group" often names)
    # read before its end; a previous sentence no longer than the two is read whole
    previous_head: int = 0
    sentence: int = 96
    span: int = 30  # the longest span, in tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Limits:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Candidate:
    """A sentence to read, with the sentence before it in its document ("" for none).

    A sentence may be read in another form than it is written (a Markdown table row, as
    its header's names and its cells: ``text.row_view``): ``source`` then says where each
    character read comes from in the sentence (-1 for what was put in), and the reader's
    spans are offsets into the sentence as written (``text.source_span``)."""

    sentence: str
    previous: str = ""
    source: tuple[int, ...] | None = None


@dataclass
class Batch:
    ids: np.ndarray  # (rows, width) int64
    mask: np.ndarray
    types: np.ndarray
    first: list[int]  # position of each row's first sentence token
    offsets: list[np.ndarray]  # (tokens, 2): character offsets in the sentence
    word_start: list[np.ndarray]  # bool (tokens,): the token begins a word
    word_end: list[np.ndarray]  # bool (tokens,): the token ends a word
    # each row's Candidate.source: a span read is mapped back through it (None: as read)
    sources: list[tuple[int, ...] | None] = field(default_factory=list)

    def feeds(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.ids, "attention_mask": self.mask, "token_type_ids": self.types}

    def rows(self) -> list[Batch]:
        """Each row as a batch of its own, cut to its own length (no padding)."""
        out = []
        for r in range(len(self.first)):
            n = int(self.mask[r].sum())
            out.append(
                Batch(
                    self.ids[r : r + 1, :n],
                    self.mask[r : r + 1, :n],
                    self.types[r : r + 1, :n],
                    self.first[r : r + 1],
                    self.offsets[r : r + 1],
                    self.word_start[r : r + 1],
                    self.word_end[r : r + 1],
                    self.sources[r : r + 1],
                )
            )
        return out


@dataclass(frozen=True)
class Reading:
    """The reader's view of one candidate: its best span and how it compares to no answer."""

    start: int  # character offsets of the best span in the sentence
    end: int
    span_score: float  # start + end logit
    null_score: float  # the no-answer score of this sentence

    @property
    def margin(self) -> float:
        return self.span_score - self.null_score


def _word_flags(word_ids: Sequence[int | None]) -> tuple[np.ndarray, np.ndarray]:
    w = list(word_ids)
    n = len(w)
    start = np.array([i == 0 or w[i] != w[i - 1] for i in range(n)], dtype=bool)
    end = np.array([i == n - 1 or w[i] != w[i + 1] for i in range(n)], dtype=bool)
    return start, end


class Featurizer:
    """Turns a question and its candidate sentences into one padded batch."""

    def __init__(self, tokenizer: Tokenizer, limits: Limits | None = None):
        # "[SEP]" written in a question or a document is text, not the row's separator
        tokenizer.encode_special_tokens = True
        self.tokenizer = tokenizer
        self.limits = limits or Limits()
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ValueError("the reader's tokenizer has no [CLS] or [SEP] token")
        self.cls, self.sep = cls, sep
        self.pad = tokenizer.token_to_id("[PAD]") or 0
        self._sentence = lru_cache(maxsize=KEPT_SENTENCES)(self._sentence_tokens)
        self._previous = lru_cache(maxsize=KEPT_SENTENCES)(self._previous_tokens)

    def _ids(self, text: str, limit: int, tail: bool = False) -> list[int]:
        if not text or limit <= 0:
            return []
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids[-limit:] if tail else ids[:limit]

    def _sentence_tokens(
        self, sentence: str
    ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
        """A sentence's tokens as read (at most ``limits.sentence``), their character
        offsets and which begin and end a word; the arrays are read-only (kept, shared)."""
        enc = self.tokenizer.encode(sentence, add_special_tokens=False)
        n = min(len(enc.ids), self.limits.sentence)
        offsets = np.asarray(enc.offsets[:n], dtype=np.int64).reshape(-1, 2)
        if not sentence.isascii():
            _cover_marks(sentence, offsets)
        starts, ends = _word_flags(enc.word_ids[:n])
        if n < len(enc.ids):
            ends[-1] = True  # a sentence cut short ends where it was cut
        for array in (offsets, starts, ends):
            array.setflags(write=False)
        return tuple(enc.ids[:n]), offsets, starts, ends

    def _previous_tokens(self, previous: str) -> tuple[int, ...]:
        head, tail = self.limits.previous_head, self.limits.previous
        if not head:
            return tuple(self._ids(previous, tail, tail=True))
        ids = self.tokenizer.encode(previous, add_special_tokens=False).ids if previous else []
        if len(ids) <= head + tail:
            return tuple(ids)
        return tuple(ids[:head] + (ids[-tail:] if tail else []))

    def encode(
        self,
        question: str,
        candidates: Sequence[Candidate],
        last_question: str = "",
        last_answer: str = "",
    ) -> Batch:
        lim = self.limits
        head = [self.cls, *self._ids(question, lim.question), self.sep]
        follow = self._ids(last_question, lim.last_question) + self._ids(
            last_answer, lim.last_answer
        )
        if follow:
            head += [*follow, self.sep]
        rows, types, first, offsets, starts, ends = [], [], [], [], [], []
        for cand in candidates:
            tokens, where, s, e = self._sentence(cand.sentence)
            prev = self._previous(cand.previous)
            tail = [*prev, self.sep] if prev else []
            row = head + tail + list(tokens) + [self.sep]
            first.append(len(head) + len(tail))
            rows.append(row)
            types.append([0] * len(head) + [1] * (len(row) - len(head)))
            offsets.append(where)
            starts.append(s)
            ends.append(e)
        width = max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), width), self.pad, dtype=np.int64)
        mask = np.zeros_like(ids)
        tt = np.zeros_like(ids)
        for r, (row, ty) in enumerate(zip(rows, types, strict=True)):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
            tt[r, : len(row)] = ty
        return Batch(ids, mask, tt, first, offsets, starts, ends, [c.source for c in candidates])


def concatenate(batches: Sequence[Batch], pad: int = 0) -> Batch:
    """One batch of the rows of ``batches``, padded to the widest."""
    width = max((b.ids.shape[1] for b in batches), default=0)

    def stack(arrays: list[np.ndarray], fill: int) -> np.ndarray:
        out = np.full((sum(a.shape[0] for a in arrays), width), fill, dtype=np.int64)
        row = 0
        for a in arrays:
            out[row : row + a.shape[0], : a.shape[1]] = a
            row += a.shape[0]
        return out

    return Batch(
        stack([b.ids for b in batches], pad),
        stack([b.mask for b in batches], 0),
        stack([b.types for b in batches], 0),
        [f for b in batches for f in b.first],
        [o for b in batches for o in b.offsets],
        [s for b in batches for s in b.word_start],
        [e for b in batches for e in b.word_end],
        [s for b in batches for s in (b.sources or [None] * len(b.offsets))],
    )


def span_tokens(batch: Batch, row: int, start: int, end: int) -> tuple[int, int] | None:
    """The token positions (in the row) of the whole words covering characters
    ``start:end`` of the row's sentence; None when they fall outside what was read."""
    off = batch.offsets[row]
    inside = np.nonzero((off[:, 1] > start) & (off[:, 0] < end))[0]
    if len(inside) == 0:
        return None
    i, j = int(inside[0]), int(inside[-1])
    while i > 0 and not batch.word_start[row][i]:
        i -= 1
    while j < len(off) - 1 and not batch.word_end[row][j]:
        j += 1
    return batch.first[row] + i, batch.first[row] + j


def _cover_marks(text: str, offsets: np.ndarray) -> None:
    """Widen each token's end over the combining marks after it that no token covers: the
    normaliser drops them (lowercasing strips accents), so "Zoe" + U+0308 would end an
    answer before its diaeresis, and a Devanagari word before its vowel sign."""
    for k in range(len(offsets)):
        end = int(offsets[k, 1])
        limit = int(offsets[k + 1, 0]) if k + 1 < len(offsets) else len(text)
        while end < limit and unicodedata.category(text[end]).startswith("M"):
            end += 1
        offsets[k, 1] = end


def read_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    batch: Batch,
    max_tokens: int,
    slack: float = 0.0,
) -> list[Reading]:
    """The best span of each row (whole words, at most ``max_tokens``) and its scores.
    With a ``slack``, the span widens to cover every span scoring within ``slack`` of the
    best (while that stays within ``max_tokens``): where the model hesitates between
    "£48" and "£48 million", the answer holds both. Its score is the best's."""
    out = []
    for r, off in enumerate(batch.offsets):
        null = float(start_logits[r, 0] + end_logits[r, 0])
        n = len(off)
        if n == 0:
            out.append(Reading(0, 0, NEG, null))
            continue
        a = batch.first[r]
        s = np.where(batch.word_start[r], start_logits[r, a : a + n], NEG)
        e = np.where(batch.word_end[r], end_logits[r, a : a + n], NEG)
        scores = s[:, None] + e[None, :]
        i, j = np.indices((n, n))
        scores = np.where((j >= i) & (j - i < max_tokens), scores, 2 * NEG)
        best = int(np.argmax(scores))
        i0, j0 = divmod(best, n)
        top = float(scores[i0, j0])
        if slack > 0 and top > NEG:
            near_i, near_j = np.nonzero(scores >= top - slack)
            if near_j.max() - near_i.min() < max_tokens:
                i0, j0 = int(near_i.min()), int(near_j.max())
        start, end = int(off[i0, 0]), int(off[j0, 1])
        source = batch.sources[r] if batch.sources else None
        if source is not None:  # read in another form: offsets into the sentence as written
            start, end = source_span(source, start, end)
        out.append(Reading(start, end, top, null))
    return out

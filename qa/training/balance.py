"""Training questions balanced by how much their words repeat a sentence of their document
(`qa train --balance-overlap`; docs/reader.md, "Questions that repeat their sentence's
words").

The corpus's writers made unanswerable questions by borrowing most of a real sentence's
words and answerable ones by paraphrase, so in the training split a question that repeats
its nearest sentence is more often unanswerable than the rest; users quoting a document,
and the sets written apart from the corpus, ask the other way round. Within each band of
that overlap the kind under its overall share is repeated, whole questions, toward it:
the reader then cannot learn "the question repeats the sentence, so nothing answers".
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..corpus import Example
from ..documents import is_markdown
from ..split import split_sentences
from ..text import content_stems
from .data import Asked

BANDS = 5  # of the overlap, as the datasheet's (train/README.md): 0-0.2, ..., 0.8-1
MOST = 3  # times a question may be asked in all


@lru_cache(maxsize=1024)
def _sentence_stems(text: str, markdown: bool) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(content_stems(text[a:b])) for a, b in split_sentences(text, markdown))


def nearest_overlap(question: str, text: str, markdown: bool = False) -> float:
    """The share of ``question``'s content words held by the sentence of ``text`` holding
    the most of them: ``qa.corpus.overlap`` with each document's sentences stemmed once."""
    asked = set(content_stems(question))
    stems = _sentence_stems(text, markdown)
    return max((len(asked & s) / len(asked) for s in stems), default=0.0) if asked else 0.0


def band(share: float) -> int:
    return min(BANDS - 1, int(share * BANDS))


def band_of(example: Example, documents: Mapping[str, str]) -> int:
    """The band of a question's overlap with its document's nearest sentence."""
    doc = example.doc
    return band(nearest_overlap(example.question, documents[doc], is_markdown(doc)))


def balanced(
    asked: Sequence[Asked], documents: Mapping[str, str], rng: random.Random
) -> tuple[list[Asked], dict[str, Any]]:
    """``asked`` with questions repeated so that each band of the overlap holds about the
    overall share of unanswerable questions (the kind short of it repeated, each at most
    MOST times in all; a seeded draw for the remainder); and what was done, for the log
    and the card. A band without both kinds is left as it is."""
    bands: list[list[list[Asked]]] = [[[], []] for _ in range(BANDS)]  # [answerable, not]
    for a in asked:
        bands[band_of(a.example, documents)][0 if a.example.answerable else 1].append(a)
    unanswerable = sum(len(b[1]) for b in bands) / max(1, len(asked))
    out, report = list(asked), []
    for k, (yes, no) in enumerate(bands):
        row = {"band": f"{k / BANDS:.1f}-{(k + 1) / BANDS:.1f}", "answerable": len(yes)}
        row |= {"unanswerable": len(no), "repeated": 0}
        report.append(row)
        if not yes or not no:
            continue
        few, many, share = (
            (no, yes, unanswerable)
            if len(no) / (len(yes) + len(no)) < unanswerable
            else (yes, no, 1 - unanswerable)
        )
        wanted = min(round(share * len(many) / (1 - share)), MOST * len(few))
        extra = wanted - len(few)
        if extra <= 0:
            continue
        whole, rest = divmod(extra, len(few))
        out += [a for a in few for _ in range(whole)] + rng.sample(few, rest)
        row["repeated"] = extra
    return out, {"unanswerable_share": round(unanswerable, 4), "bands": report}

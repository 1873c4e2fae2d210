"""Contrast questions: an answerable question changed in one detail its sentence states, so
that the sentence no longer answers it.

The reader's commonest wrong answer to a question the documents do not answer comes from a
sentence that states a detail of the asked kind about a neighbouring thing: "How many uploads
per day?" of "12 uploads per minute", "... for ten years of data?" of "about two seconds for
one year of data" (docs/reader.md). The corpus's writers wrote such questions, but a few
hundred. A contrast question is made from an answerable one by changing one word that the
question shares with its answering sentence into another of its kind that the sentence does
not hold: a number into another number, a unit of time or a weekday or a month into
another, a name into another name of the same document. Asked of that sentence, it has no
answer there. Nothing here names a document: the kinds of word are general.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

from ..answer import candidate
from ..index import Index
from ..lexical import LexicalIndex
from .data import Asked, Row

NUMBER_WORDS = (
    # not "one": a pronoun as often as a number ("Which one of ...")
    "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty "
    "forty fifty hundred"
).split()
# words of one kind: one is changed into another of its group, plural kept
GROUPS = (
    ("minute", "hour", "day", "week", "month", "year"),
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("january february march april june july august september october november december").split(),
    ("morning", "afternoon", "evening", "night"),
    ("daily", "weekly", "monthly", "yearly"),
    ("third", "fourth", "fifth"),  # not "first", "second" or "last": other words too
    ("north", "south", "east", "west"),
    ("minimum", "maximum"),
    ("before", "after"),
    ("adults", "children"),
    ("men", "women"),
)
KINDS = frozenset(w for group in GROUPS for w in group)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d[\d,.]*\d|\d")
# a name: a capitalised word; the document's names are those it writes after a small letter
_NAME = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z]+)*")
_NAME_IN_TEXT = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+(?:[A-Z][a-z]+)*")
# a name of several words: another of its words is no other name ("Orla" of "Orla Penhallow")
_NAMES = re.compile(r"[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+")
# a range or a bound: a number inside it may still be answered ("groups of 10 to 20")
_RANGE = re.compile(
    r"\b(?:between|over|under|above|below|up to|at least|at most|more than|less than|"
    r"fewer than|or more|or less|or fewer|minimum|maximum)\b|\d\s*(?:to|-|–|—)\s*\d",
    re.IGNORECASE,
)
# words that are capitalised without being names
_NOT_NAMES = frozenset(
    "I What Which Who Whom Whose When Where Why How Is Are Was Were Do Does Did Can Could "
    "Will Would Should Has Have Had The A An In On At Of For By To And Or But If "
    # a title: "Ms Brackwell" may be "Helen Brackwell"
    "Mr Mrs Ms Miss Mx Dr Sir Dame Lord Lady Prof Professor Rev Judge Councillor Captain".split()
)


def _case_like(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def _other_number(token: str, rng: random.Random) -> str:
    """Another number written as ``token`` is: digits for digits, a word for a word."""
    if token.lower() in NUMBER_WORDS:
        choices = [w for w in NUMBER_WORDS if w != token.lower()]
        return _case_like(rng.choice(choices), token)
    digits = token.replace(",", "")
    if "." in digits:
        whole, _, frac = digits.partition(".")
        value = int(whole or "0") + rng.choice((1, 2, 3, 5))
        return f"{value}.{frac}"
    value = int(digits)
    other = value + rng.choice((1, 2, 3, 5, 10)) if value < 100 else value * 2
    return f"{other:,}" if "," in token else str(other)


def _other_of_group(token: str, rng: random.Random) -> str | None:
    low = token.lower()
    plural = low.endswith("s") and low[:-1] in KINDS
    stem = low[:-1] if plural else low
    for group in GROUPS:
        if stem in group:
            choices = [w for w in group if w != stem]
            word = rng.choice(choices) + ("s" if plural else "")
            return _case_like(word, token)
    return None


def _stem(word: str) -> str:
    """A word without case and a plural's "s": "Hours" and "hour" are one word here."""
    low = word.lower()
    return low[:-1] if len(low) > 3 and low.endswith("s") and not low.endswith("ss") else low


def contrast(question: str, sentence: str, document: str, rng: random.Random) -> str | None:
    """``question`` with one word it shares with ``sentence`` (its answering sentence in
    ``document``) changed into another of its kind that ``sentence`` does not hold; None
    when it shares no such word. The word is drawn at random among those it could change.
    A number is not changed when the sentence states a range or a bound (the new number
    may lie inside it), nor a name into another word of a longer name it is part of."""
    said = {_stem(w) for w in _WORD.findall(sentence)}
    bounded = _RANGE.search(sentence) is not None
    options: list[tuple[int, int, str]] = []  # start, end, replacement
    names = sorted(
        {
            n
            for n in _NAME_IN_TEXT.findall(document)
            if n.lower() not in KINDS and n not in _NOT_NAMES
        }
    )
    for m in _WORD.finditer(question):
        token = m.group()
        if _stem(token) not in said:
            continue
        other: str | None = None
        if token[0].isdigit() or token.lower() in NUMBER_WORDS:
            other = None if bounded else _other_number(token, rng)
        elif (other := _other_of_group(token, rng)) is None and m.start() > 0:
            if _NAME.fullmatch(token) and token not in _NOT_NAMES:
                longer = (re.split(r"[ -]", n) for n in _NAMES.findall(document))
                partners = {w for words in longer if token in words for w in words}
                others = [n for n in names if _stem(n) not in said and n not in partners]
                other = rng.choice(others) if others else None
        if other is not None and _stem(other) not in said:
            options.append((m.start(), m.end(), other))
    if not options:
        return None
    start, end, other = rng.choice(options)
    return question[:start] + other + question[end:]


def contrast_rows(
    asked: Sequence[Asked],
    documents: Mapping[str, str],
    indexes: Mapping[str, tuple[Index, LexicalIndex]],
    share: float,
    rng: random.Random,
    first_group: int,
    named_rows: bool = False,
) -> list[Row]:
    """For ``share`` of the answerable one-turn questions ``asked`` (drawn by ``rng``), a
    contrast question (``contrast``) with their answering sentence, read as the service reads
    it, taught as holding no answer: each a question of its own (groups from
    ``first_group``), learnt from its label only, since a teacher answers it as the reader
    it taught would."""
    rows: list[Row] = []
    for a in asked:
        e = a.example
        if not e.answerable or e.followup or rng.random() >= share:
            continue
        text = documents[e.doc]
        question = contrast(e.question, text[e.sentence_start : e.sentence_end], text, rng)
        if question is None:
            continue
        index, _ = indexes[e.doc]
        sentence = candidate(index, e.gold()[0], named_rows)
        rows.append(Row(question, "", "", sentence, None, first_group + len(rows), False))
    return rows

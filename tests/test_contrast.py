"""Contrast questions (``qa train --contrast``): an answerable question with one detail its
sentence states changed, taught on that sentence as holding no answer."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from qa.corpus import Example
from qa.features import Candidate
from qa.training.contrast import contrast, contrast_rows
from qa.training.data import Asked, Row
from qa.training.model import Encoded
from qa.training.teachers import LABEL_LOGIT, add_teacher_logits

SENTENCE = "Write keys have a separate allowance of 12 uploads per minute for Ledgerline users."
DOCUMENT = f"The service is run by the team of Orla Penhallow in Harrowgate. {SENTENCE}"
WORD = re.compile(r"[\w'-]+")


def _changed(before: str, after: str) -> list[tuple[str, str]]:
    a, b = WORD.findall(before), WORD.findall(after)
    assert len(a) == len(b), (before, after)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How many uploads per minute does a write key allow?", {"minute"}),
        ("Write keys allow how many uploads, 12?", {"12"}),
        ("How many uploads may Ledgerline users make with a write key?", {"Ledgerline"}),
    ],
)
def test_one_word_the_sentence_states_becomes_another_of_its_kind(question, kind):
    seen = set()
    for seed in range(20):
        made = contrast(question, SENTENCE, DOCUMENT, random.Random(seed))
        assert made is not None
        [(old, new)] = _changed(question, made)
        assert old in kind and new.lower() not in SENTENCE.lower()
        seen.add(new)
        if old == "minute":
            assert new in {"hour", "day", "week", "month", "year"}
        elif old == "12":
            assert new.isdigit()
        else:  # a name becomes another name the document writes, not a word of the sentence
            assert new in {"Orla", "Penhallow", "Harrowgate"}
    assert len(seen) > 1  # drawn at random, reproducibly by the seed
    assert contrast(question, SENTENCE, DOCUMENT, random.Random(3)) == contrast(
        question, SENTENCE, DOCUMENT, random.Random(3)
    )


def test_what_the_sentence_may_still_answer_is_not_changed():
    """A number inside a stated range or bound, another word of a longer name, a title
    (which may name the same person): each changed, the sentence could still answer."""
    ranged = "Groups of 10 to 20 people get a discount of 15 per cent."
    bound = "Groups of at least 10 people get a discount."
    for sentence in (ranged, bound):
        question = "What discount do groups of 10 people get?"
        made = {contrast(question, sentence, sentence, random.Random(s)) for s in range(10)}
        assert made == {None}
    document = (
        "The team is led by Orla Penhallow. Ms Penhallow joined in 2019, with Idris Vane; "
        "the plan was drawn up by Penhallow."  # "Penhallow" alone: still Orla
    )
    sentence = "Orla starts on Monday."
    for seed in range(30):
        made = contrast(
            "When does Orla start?", sentence, document + " " + sentence, random.Random(seed)
        )
        assert made is not None
        [(old, new)] = _changed("When does Orla start?", made)
        # "Monday" is not in the question; of the names only "Idris" and "Vane" are others
        assert old == "Orla" and new in {"Idris", "Vane"}
    # a unit in the plural is the same word as in the singular, and stays in the plural
    made = contrast("How many hours a week?", "It is open ten hour a week.", "", random.Random(2))
    assert made is not None
    [(old, new)] = _changed("How many hours a week?", made)
    assert (old == "hours" and new.endswith("s")) or old in {"week"}


def test_a_question_that_shares_no_such_word_with_its_sentence_has_no_contrast():
    rng = random.Random(1)
    assert contrast("What is the allowance for write keys?", SENTENCE, DOCUMENT, rng) is None
    # the first word of a question is capitalised without being a name
    assert contrast("Write keys have what allowance?", SENTENCE, DOCUMENT, rng) is None


def _asked(question: str, answerable: bool = True, turns: tuple[str, ...] = ()) -> Asked:
    at = SENTENCE.index("12 uploads")
    start = DOCUMENT.index(SENTENCE)
    example = Example(
        id="doc-1",
        doc="doc.txt",
        turns=(*turns, question),
        answerable=answerable,
        support=(SENTENCE[:20],),
        answer=("12 uploads",),
        span="12 uploads",
        sentence=1,
        sentence_start=start,
        sentence_end=start + len(SENTENCE),
        answer_start=start + at,
        answer_end=start + at + 10,
    )
    return Asked(example, question, "", "", (), (), ())


def _indexes():  # what answer.candidate reads of an index: its sentences, in order
    first = DOCUMENT[: DOCUMENT.index(SENTENCE)].strip()
    sentences = [
        SimpleNamespace(doc="doc.txt", index=0, text=first, position=0),
        SimpleNamespace(doc="doc.txt", index=1, text=SENTENCE, position=1),
    ]
    return {"doc.txt": (SimpleNamespace(sentences=sentences), None)}


def test_contrast_rows_teach_the_changed_question_on_its_sentence_with_no_answer():
    question = "How many uploads per minute does a write key allow?"
    asked = [
        _asked(question),
        _asked("How many uploads per minute does a write key allow?", answerable=False),
        _asked("And per minute?", turns=("Who runs the service?",)),  # a follow-up: not
        _asked("How many uploads, 12 or more, per minute?"),
    ]
    rows = contrast_rows(asked, {"doc.txt": DOCUMENT}, _indexes(), 1.0, random.Random(1), 10)
    assert len(rows) == 2
    for row, source in zip(rows, (asked[0], asked[3]), strict=True):
        assert row.span is None and row.distilled is False
        assert row.candidate.sentence == SENTENCE
        assert len(_changed(source.question, row.question)) == 1
    assert [r.group for r in rows] == [10, 11]  # each a question of its own
    none = contrast_rows(asked, {"doc.txt": DOCUMENT}, _indexes(), 0.0, random.Random(1), 10)
    assert none == []


def test_a_row_taught_its_label_only_gets_logits_on_its_label_and_the_rest_the_teachers(
    featurizer,
):
    other = "Traffic stopped while the bridge was repaired."
    rows = [
        Row("When did the bridge reopen?", "", "", Candidate(SENTENCE), (39, 49)),
        Row("How many uploads per hour?", "", "", Candidate(SENTENCE), None, 1, False),
        Row("How long were the repairs?", "", "", Candidate(other), None, 2),
    ]
    data = Encoded(rows, featurizer)
    assert data.own == {1}

    def run(batch):
        ids = batch.ids.astype(np.float32)
        return ids, -ids

    add_teacher_logits(data, [run], size=2)
    assert data.teacher is not None
    for i in (0, 2):
        np.testing.assert_allclose(data.teacher[i][0], data.ids[i])
    own = data.teacher[1]
    assert own.shape == (2, len(data.ids[1]))
    assert own[:, 0].tolist() == [LABEL_LOGIT, LABEL_LOGIT] and not own[:, 1:].any()
    # the same rows without the label-only one: the teachers' logits are as before
    alone = Encoded([rows[0], replace(rows[2], group=1)], featurizer)
    add_teacher_logits(alone, [run], size=2)
    assert alone.teacher is not None
    np.testing.assert_allclose(alone.teacher[0], data.teacher[0])

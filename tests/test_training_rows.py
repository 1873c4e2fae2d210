"""The rows the reader is trained on: the answering sentence with its span, and, with
``erased``, the same sentence with the answer cut out, taught as holding no answer."""

from __future__ import annotations

import random
from dataclasses import replace
from types import SimpleNamespace

from qa.corpus import Example
from qa.training.data import Asked, erase, training_rows

SENTENCE = "The painting measures 30 by 41 centimetres and was sold at Hallam's in 1998."
DOC = "gallery"


def _asked(question: str, answer: str) -> Asked:
    at = SENTENCE.index(answer)
    example = Example(
        id=f"{DOC}-1",
        doc=DOC,
        turns=(question,),
        answerable=True,
        support=(SENTENCE[:20],),
        answer=(answer,),
        span=answer,
        sentence=1,
        sentence_start=0,
        sentence_end=len(SENTENCE),
        answer_start=at,
        answer_end=at + len(answer),
    )
    return Asked(example, question, "", "", (), (), ())


def _indexes():  # the one attribute training_rows reads: the document's sentences
    sentences = [
        SimpleNamespace(doc=DOC, index=0, text="Hallam's held its spring sale on Monday."),
        SimpleNamespace(doc=DOC, index=1, text=SENTENCE),
    ]
    return {DOC: (SimpleNamespace(sentences=sentences), None)}


def test_erase_cuts_the_span_and_tidies_the_spaces():
    size = SENTENCE.index("30 by 41 centimetres")
    cut = erase(SENTENCE, (size, size + len("30 by 41 centimetres")))
    assert cut == "The painting measures and was sold at Hallam's in 1998."
    end = SENTENCE.index("1998")
    assert (
        erase(SENTENCE, (end, end + 4))
        == "The painting measures 30 by 41 centimetres and was sold at Hallam's in."
    )


def test_erased_rows_teach_the_cut_sentence_as_holding_no_answer():
    asked = [_asked("How big is the painting?", "30 by 41 centimetres")]
    plain = training_rows(asked, _indexes(), 0, random.Random(1))
    assert [(r.candidate.sentence, r.span) for r in plain] == [(SENTENCE, (22, 42))]

    rows = training_rows(asked, _indexes(), 0, random.Random(1), erased=1.0)
    assert len(rows) == 2 and rows[0] == plain[0]
    cut = rows[1]
    assert cut.span is None
    assert "30 by 41" not in cut.candidate.sentence and "sold at Hallam's" in cut.candidate.sentence
    assert cut.candidate.previous == plain[0].candidate.previous
    assert cut.question == "How big is the painting?"


def test_a_sentence_that_still_holds_an_acceptable_answer_once_cut_is_not_taught_as_none():
    asked = _asked("When and where was it sold?", "Hallam's")
    both = replace(asked.example, answer=("Hallam's", "in 1998"))
    rows = training_rows([replace(asked, example=both)], _indexes(), 0, random.Random(1), 1.0)
    assert [r.span is None for r in rows] == [False]  # "in 1998" is still there once cut

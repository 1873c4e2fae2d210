"""Training questions balanced by their overlap with their document's nearest sentence
(qa/training/balance.py, `qa train --balance-overlap`)."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, replace

from qa.corpus import Example, overlap
from qa.split import split_sentences
from qa.training.balance import MOST, balanced, band, nearest_overlap
from qa.training.overlaps import bands_by_kind, set_bands

DOC = (
    "The harbour board approved a new ferry terminal on Tuesday. "
    "Construction will cost 40 million euros and last two years. "
    "The mayor praised the plan in a short statement."
)


@dataclass(frozen=True)
class Asked:  # what balanced() reads of training.data.Asked: its example
    example: Example


def ask(i: int, question: str, answerable: bool) -> Asked:
    return Asked(Example(f"q{i}", "harbour.txt", (question,), answerable, (), ()))


# repeating a sentence: 1.0 of the content words; a paraphrase: none of them
REPEATS = "When did the harbour board approve a new ferry terminal?"
PARAPHRASE = "What do people think of it?"


def corpus(repeat_yes: int, repeat_no: int, para_yes: int, para_no: int) -> list[Asked]:
    kinds = [(REPEATS, True)] * repeat_yes + [(REPEATS, False)] * repeat_no
    kinds += [(PARAPHRASE, True)] * para_yes + [(PARAPHRASE, False)] * para_no
    return [ask(i, q, yes) for i, (q, yes) in enumerate(kinds)]


def test_the_overlap_is_with_the_sentence_holding_most_of_the_questions_words():
    assert nearest_overlap(REPEATS, DOC) == 1.0
    assert nearest_overlap(PARAPHRASE, DOC) == 0.0
    assert [band(x) for x in (0.0, 0.19, 0.2, 0.79, 0.8, 1.0)] == [0, 0, 1, 3, 4, 4]
    # the corpus's own measure, sentence by sentence (each sentence stemmed once here)
    sentences = [DOC[a:b] for a, b in split_sentences(DOC)]
    for question in (REPEATS, PARAPHRASE, "How much will construction of the terminal cost?"):
        expected = max(overlap(question, s) for s in sentences)
        assert nearest_overlap(question, DOC) == expected


def test_the_kind_short_of_its_share_in_a_band_is_repeated_toward_it():
    """The corpus's habit: questions repeating a sentence mostly unanswerable, paraphrases
    mostly answerable. Balanced, each band holds about the overall share, no question
    is dropped, and none is asked more than MOST times."""
    asked = corpus(repeat_yes=4, repeat_no=8, para_yes=16, para_no=4)
    share = 12 / 32
    out, report = balanced(asked, {"harbour.txt": DOC}, random.Random(1))
    assert set(asked) <= set(out) and len(out) > len(asked)
    counts = Counter(out)
    assert max(counts.values()) <= MOST
    for text in (REPEATS, PARAPHRASE):
        kinds = [a.example.answerable for a in out if a.example.question == text]
        assert abs(kinds.count(False) / len(kinds) - share) < 0.05, text
    # the answerable repeats asked 3 times (12 of 20), the unanswerable paraphrases 10 of 26
    high, low = report["bands"][4], report["bands"][0]
    assert (high["answerable"], high["unanswerable"], high["repeated"]) == (4, 8, 8)
    assert (low["answerable"], low["unanswerable"], low["repeated"]) == (16, 4, 6)
    assert report["unanswerable_share"] == round(share, 4)


def test_a_band_with_one_kind_or_already_balanced_is_left_as_it_is_and_the_draw_is_seeded():
    asked = corpus(repeat_yes=0, repeat_no=5, para_yes=6, para_no=4)
    out, report = balanced(asked, {"harbour.txt": DOC}, random.Random(1))
    assert report["bands"][4]["repeated"] == 0  # no answerable question to repeat there
    # both bands at the overall share (1 in 4 unanswerable): nothing to repeat
    even = corpus(repeat_yes=3, repeat_no=1, para_yes=6, para_no=2)
    same, untouched = balanced(even, {"harbour.txt": DOC}, random.Random(1))
    assert same == even and all(b["repeated"] == 0 for b in untouched["bands"])
    assert [a.example.id for a in out] == [
        a.example.id for a in balanced(asked, {"harbour.txt": DOC}, random.Random(1))[0]
    ]
    # at most MOST times: one answerable repeat among many unanswerable ones
    few = corpus(repeat_yes=1, repeat_no=20, para_yes=20, para_no=1)
    out, _ = balanced(few, {"harbour.txt": DOC}, random.Random(1))
    assert Counter(out)[few[0]] == MOST


def test_the_table_of_bands_by_kind_counts_each_kind_apart():
    examples = [a.example for a in corpus(repeat_yes=1, repeat_no=3, para_yes=3, para_no=1)]
    table = bands_by_kind(examples, {"harbour.txt": DOC})
    assert table == {
        "answerable": [0.75, 0.0, 0.0, 0.0, 0.25],
        "unanswerable": [0.25, 0.0, 0.0, 0.0, 0.75],
    }


def test_a_markdown_documents_sentences_are_split_as_markdown():
    """A heading is a sentence of its own in Markdown: the question repeating the paragraph
    under it finds that paragraph, not a sentence run together with the heading."""
    text = "# Harbour news\nThe harbour board approved a new ferry terminal on Tuesday."
    assert nearest_overlap("Who approved the ferry terminal?", text, markdown=True) == 1.0
    asked = [ask(0, REPEATS, True), ask(1, REPEATS, False)]
    moved = [Asked(replace(a.example, doc="harbour.md")) for a in asked]
    _, report = balanced(moved, {"harbour.md": text}, random.Random(1))
    assert report["bands"][4]["answerable"] == 1  # found whole in the paragraph


def test_a_question_set_is_banded_against_the_nearest_sentence_of_its_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "harbour.txt").write_text(DOC, encoding="utf-8")
    rows = [
        {
            "id": "a",
            "turns": [REPEATS],
            "answerable": True,
            "support": ["ferry"],
            "answer": ["Tuesday"],
        },
        {"id": "b", "turns": ["What is it?", PARAPHRASE], "answerable": False},
    ]
    questions = tmp_path / "set.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert set_bands(questions, tmp_path / "docs") == {
        "answerable": [0.0, 0.0, 0.0, 0.0, 1.0],
        "unanswerable": [1.0, 0.0, 0.0, 0.0, 0.0],
    }

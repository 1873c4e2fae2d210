"""Retrieval: the query a question makes, and the fusion of the dense and lexical
rankings."""

from __future__ import annotations

import numpy as np
import pytest

from qa.retrieve import (
    HISTORY_WEIGHT,
    LEXICAL_WEIGHT,
    hybrid_search,
    make_query,
    query_terms,
    query_vector,
    refers_back,
    retrieve,
)
from qa.text import content_stems


def test_a_follow_up_carries_the_last_question_and_a_short_answer():
    q = make_query("  Where  does she work? ", "Who led the team?", "Dr Ilse Varga")
    assert q.text == "Where does she work?"
    assert q.context == "Who led the team? Dr Ilse Varga"
    long = make_query("Why?", "What happened?", "x " * 100)
    assert long.last_answer == "" and long.context == "What happened?"
    assert make_query("Who?").context == ""


@pytest.mark.parametrize(
    "question, back",
    [
        ("Who is its director?", True),  # a referring word
        ("When was she suspended?", True),
        ("What did they say about that?", True),
        ("It\u2019s open until when?", True),  # a typographic apostrophe
        ("They're building the new bridge where exactly?", True),  # contractions
        ("He's the mayor of which town exactly?", True),
        ("Where does the new bridge cross the river too?", True),
        ("Где находится центральный вокзал города?", True),  # no English word: as before
        ("And how many last year?", True),  # continuing the last question
        ("What about the second ship?", True),
        ("In what year?", True),  # a fragment
        ("Why?", True),
        ("", True),
        ("How many members does the gang have?", False),
        ("When was the bridge across the river finished?", False),
        ("Which company bought Harbourline Bank in 2019?", False),
    ],
)
def test_a_question_refers_back_by_a_referring_word_a_continuation_or_as_a_fragment(question, back):
    assert refers_back(question) is back


def test_the_last_turn_weighs_less_than_the_question():
    terms = query_terms(make_query("Where does the keeper live?", "Who was the keeper's wife?"))
    (keeper,) = content_stems("keeper")
    (wife,) = content_stems("wife")
    assert terms[keeper] == 1.0  # a word of both keeps the question's weight
    assert terms[wife] == HISTORY_WEIGHT
    assert set(terms) == set(content_stems("keeper live wife"))


def test_the_query_vector_leans_towards_the_question():
    a, b = np.eye(3, dtype=np.float32)[:2]
    assert query_vector(a) is a
    mixed = query_vector(a, b)
    assert np.linalg.norm(mixed) == pytest.approx(1.0)
    assert mixed @ a > mixed @ b > 0


def test_fused_scores_add_the_lexical_score_with_its_weight(engine):
    s = engine.snapshot
    q = make_query("How many members does the Clan del Golfo have?")
    vector = engine.embedder.encode_questions([q.text])[0]
    hits = hybrid_search(s.index, s.lexical, vector, query_terms(q), 5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert h.score == pytest.approx(h.dense + LEXICAL_WEIGHT * h.lexical)
        assert h.sentence is s.index.sentences[h.position]
    assert any("7,500" in h.sentence.text for h in hits)
    assert retrieve(s.index, s.lexical, engine.embedder, q, 5) == hits


def test_a_name_only_the_lexical_side_knows_is_still_found(engine):
    """A rare exact word (a number) brings its sentence in even when it is not among the
    dense side's nearest: the lexical candidates get their dense score reconstructed."""
    s = engine.snapshot
    q = make_query("7,500")
    hits = retrieve(s.index, s.lexical, engine.embedder, q, 3)
    assert any("7,500" in h.sentence.text for h in hits)


def _menu(name: str, column: str) -> str:
    return (
        f"# {name}\n\nThe café lists its drinks below.\n\n"
        f"| Drink | {column} |\n| --- | --- |\n| Coffee | 4 |\n| Milk | 2 |\n| Tea | 3 |\n"
    )


def test_a_table_row_is_found_by_its_column_names(tmp_path, embedder):
    """Two documents' rows read alike ('| Tea | 3 |', after alike rows), but their columns
    differ: retrieval reads a Markdown row with its header's names ('Drink: Tea; Price:
    3.'), so the question asking for the price finds the price list and the one asking for
    calories the other, where bare rows would put the same one first for both."""
    from helpers import build

    from qa.build import retrieval_texts
    from qa.engine import Snapshot

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "calories.md").write_text(_menu("Nutrition", "Calories"), encoding="utf-8")
    (seeds / "prices.md").write_text(_menu("Price list", "Price"), encoding="utf-8")
    (seeds / "plain.txt").write_text("| Drink | Price |\n| --- | --- |\n| Tea | 3 |\n")
    snapshot = Snapshot.of(build(seeds, tmp_path / "index", embedder))
    index = snapshot.index
    texts = retrieval_texts(index.sentences, index.table_headers)
    read = {(s.doc, s.text): t for s, t in zip(index.sentences, texts, strict=True)}
    assert read["prices.md", "| Tea | 3 |"] == "Drink: Tea; Price: 3."
    assert read["prices.md", "| Drink | Price |"] == "| Drink | Price |"  # the header
    assert (
        read["prices.md", "The café lists its drinks below."] == "The café lists its drinks below."
    )
    assert all(
        t == s.text for s, t in zip(index.sentences, texts, strict=True) if s.doc == "plain.txt"
    )
    for question, doc in [
        ("How many calories are in a tea?", "calories.md"),
        ("What is the price of a tea?", "prices.md"),
    ]:
        (first, *_) = retrieve(index, snapshot.lexical, embedder, make_query(question), 3)
        assert (first.sentence.doc, first.sentence.text) == (doc, "| Tea | 3 |"), question


def test_a_long_table_is_read_in_linear_time():
    """Each row's header is found from the row above's: a table of 20,000 rows took 2
    minutes to build when each row walked up to its header (4,000 rows: 5 s)."""
    import time

    from qa.build import retrieval_texts, sentences_of
    from qa.markdown import table_headers
    from qa.records import Document

    rows = "\n".join(f"| item {i} | {i} |" for i in range(20_000))
    text = f"# Prices\n\n| Item | Price |\n| --- | --- |\n{rows}\n"
    sentences = sentences_of(Document("big.md", text, ""))
    started = time.perf_counter()
    read = retrieval_texts(sentences, table_headers(sentences, {"big.md": text}))
    assert time.perf_counter() - started < 10.0  # about 0.3 s; 100 times that was the bug
    assert read[-1] == "Item: item 19999; Price: 19999." and read[1] == "| Item | Price |"

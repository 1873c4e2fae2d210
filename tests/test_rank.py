"""The ranker: the features it computes over the fused ranking's best, the order it gives
them (its pool only, a prefix whatever k), its card entry, and its fit."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa.answer import answer_question, candidate
from qa.cards import CARD
from qa.config import DEFAULT_READER
from qa.corpus import load_corpus
from qa.rank import FEATURES, RANKED, Ranker, pool_features
from qa.read import OnnxReader, ReaderError
from qa.retrieve import Query, hybrid_search, make_query, query_terms
from qa.training.card import write_card
from qa.training.data import ask_all, document_indexes
from qa.training.ranking import fit_ranker, ranking_rows, reordered
from qa.vectors import reconstruct

QUESTION = "Who was instructed to use military force?"
# a dot product of unit float32 vectors, summed in another order: near 0 a relative
# tolerance is too tight (-0.00062690 against -0.00062691 on an AVX-512 machine)
FLOAT32 = 1e-6


def ask(engine, k, ranker=None, question=QUESTION):
    s = engine.snapshot
    q = make_query(question)
    vector = engine.embedder.encode_questions([q.text])[0]
    return vector, hybrid_search(s.index, s.lexical, vector, query_terms(q), k, ranker)


def only(feature: str, weight: float = 1.0) -> Ranker:
    """A ranker that weighs one feature alone."""
    n = len(FEATURES)
    weights = [0.0] * n
    weights[FEATURES.index(feature)] = weight
    return Ranker((0.0,) * n, (1.0,) * n, tuple(weights))


def test_the_features_come_from_the_pool_and_the_sentences_around_each(engine):
    index = engine.snapshot.index
    vector, hits = ask(engine, 10)
    x = pool_features(index, hits, vector)
    assert x.shape == (10, len(FEATURES))
    column = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert np.allclose(column["dense"], [h.dense for h in hits])
    assert np.allclose(column["lexical"], [h.lexical for h in hits])
    assert (column["found by the lexical ranking"] == [h.lexical > 0 for h in hits]).all()
    assert 0.0 < column["found by the lexical ranking"].mean() < 1.0  # both kinds in the pool
    assert np.allclose(column["fused"], [h.score for h in hits])
    assert np.allclose(column["log1p(rank fused)"], np.log1p(np.arange(10)))  # fused order
    assert np.allclose(column["fused - best fused"], [h.score - hits[0].score for h in hits])
    dense = np.array([h.dense for h in hits])

    def neighbour(position: int) -> float:
        return float(reconstruct(index.vectors, [position])[0] @ vector)

    assert np.allclose(np.exp(column["log1p(rank by dense)"]) - 1, np.argsort(np.argsort(-dense)))
    for h, before, after, place, first in zip(
        hits,
        column["dense of the sentence before"],
        column["dense of the sentence after"],
        column["place in the document (0 first, 1 last)"],
        column["first of its document"],
        strict=True,
    ):
        if h.sentence.index > 0:  # the article is one document
            assert before == pytest.approx(neighbour(h.position - 1), abs=FLOAT32)
        else:
            assert before == pytest.approx(dense.min())
        assert first == (1.0 if h.sentence.index == 0 else 0.0)
        if h.position + 1 < len(index.sentences):
            assert after == pytest.approx(neighbour(h.position + 1), abs=FLOAT32)
        assert place == pytest.approx(h.sentence.index / (len(index.sentences) - 1))
    assert np.allclose(column["log(characters)"], np.log([len(h.sentence.text) for h in hits]))


def test_the_ranker_orders_its_pool_only_and_the_first_k_are_a_prefix(engine):
    count = len(engine.snapshot.index.sentences)
    assert count > RANKED  # the article has sentences past the pool
    _, fused = ask(engine, count)
    by_length = only("log(characters)")
    _, ranked = ask(engine, count, by_length)
    pool = fused[:RANKED]
    assert ranked[:RANKED] == sorted(pool, key=lambda h: -len(h.sentence.text))
    assert ranked[RANKED:] == fused[RANKED:]  # the rest keep the fused order
    for k in (1, 3, 6):
        assert ask(engine, k, by_length)[1] == ranked[:k]
    # a ranker that weighs nothing leaves the fused order (ties keep it)
    assert ask(engine, 10, only("dense", 0.0))[1] == fused[:10]


def test_a_card_ranker_orders_what_the_service_reads_and_a_bad_one_is_refused(engine, tmp_path):
    """The shipped reader with a ranker that puts each document's first sentence (the
    headline) first: every answer cites it; one that reads other features is refused."""
    reader = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER, reader)
    card = json.loads((reader / CARD).read_text())
    headline = only("first of its document", 100.0)
    write_card(reader, {**card, "ranker": headline.to_dict()})
    loaded = OnnxReader(reader)
    assert loaded.settings.ranker == headline
    s = engine.snapshot
    for question in (QUESTION, "What did the report say about the weather?"):
        answer = answer_question(s.index, s.lexical, engine.embedder, loaded, question)
        assert 0 in [c.sentence for c in answer.citations]
    for broken, why in (
        ({"features": ["dense"]}, "other features"),
        ({"weights": [float("nan")] * len(FEATURES)}, "finite"),
        ({"scale": [0.0] * len(FEATURES)}, "scales"),
        ({"ranked": 10}, "ranks 10 sentences"),
        ({"mean": "0" * len(FEATURES)}, "not lists of numbers"),
        ({"weights": [10**400] * len(FEATURES)}, "not lists of numbers"),
        ({"weights": None}, "not lists of numbers"),
    ):
        write_card(reader, {**card, "ranker": {**headline.to_dict(), **broken}})
        with pytest.raises(ReaderError, match=why) as caught:
            OnnxReader(reader)
        assert "\n" not in str(caught.value)
    write_card(reader, {**card, "ranker": [1, 2]})
    with pytest.raises(ReaderError, match="ranker is not an object"):
        OnnxReader(reader)


def test_fit_ranker_learns_which_signal_marks_the_answering_sentence():
    """Pools where the answering sentence is the one with the highest value of one feature
    (others noise): the fitted ranker ranks it first on new pools of the same kind."""
    rng = np.random.default_rng(0)
    tell = FEATURES.index("dense after - dense")

    def pools(n):
        rows = []
        for _ in range(n):
            x = rng.normal(size=(int(rng.integers(5, 20)), len(FEATURES)))
            rows.append((x, int(np.argmax(x[:, tell]))))
        return rows

    ranker = fit_ranker(pools(400))
    fresh = pools(200)
    first = np.mean([np.argmax(ranker.score(x)) == g for x, g in fresh])
    assert first > 0.9
    assert np.argmax(np.abs(ranker.weights)) == tell
    with pytest.raises(ValueError, match="no answerable"):
        fit_ranker([])


def test_training_ranks_its_pools_as_the_service_ranks_them(tiny_corpus, embedder):
    """What the reader's settings are chosen on (pools asked once, then ``reordered``) is
    what the service's retrieval returns with the same ranker, sentence for sentence."""
    corpus = load_corpus(tiny_corpus)
    indexes = document_indexes(corpus, embedder)
    examples = corpus.split("train")[:20]
    pools = ask_all(examples, indexes, embedder, RANKED)
    ranker = fit_ranker(ranking_rows(pools, indexes))
    ranked = reordered(pools, indexes, ranker, 3)
    for asked, pool in zip(ranked, pools, strict=True):
        index, lexical = indexes[asked.example.doc]
        query = Query(asked.question, asked.last_question, asked.last_answer)
        served = hybrid_search(index, lexical, pool.vector, query_terms(query), 3, ranker)
        assert [h.position for h in asked.hits] == [h.position for h in served]
        assert list(asked.previous) == [
            "" if h.sentence.index == 0 else index.sentences[h.position - 1].text for h in served
        ]
        # and what the reader reads of each, with it
        assert list(asked.read) == [candidate(index, h.position) for h in served]
    assert any(a.hits != p.hits[:3] for a, p in zip(ranked, pools, strict=True))  # it reorders

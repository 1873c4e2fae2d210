"""``qa train --pool N``: each training question is also asked of a pool of N training
documents, as the service asks a folder of them, and one of its negatives is another
document's sentence that retrieval ranks high there."""

from __future__ import annotations

import random

from qa.corpus import load_corpus
from qa.training.data import (
    ask_all,
    ask_others,
    document_indexes,
    holds_answer,
    pool_indexes,
    pools,
    training_rows,
)


def test_pools_hold_every_document_once_by_the_seed_and_fold_a_small_last_one_in():
    docs = [f"kind/d{i}.txt" for i in range(7)]
    groups = pools(docs, 3, random.Random(5))
    assert sorted(d for g in groups for d in g) == docs
    assert sorted(len(g) for g in groups) == [3, 4]  # a last pool of 1 joins the one before
    assert pools(list(reversed(docs)), 3, random.Random(5)) == groups  # the seed decides
    assert [len(g) for g in pools(docs[:6], 3, random.Random(5))] == [3, 3]
    assert sorted(len(g) for g in pools(docs, 2, random.Random(5))) == [2, 2, 3]  # none alone
    assert [sorted(g) for g in pools(docs[:2], 8, random.Random(5))] == [docs[:2]]


def test_a_pools_negatives_come_from_the_other_documents_and_never_hold_the_answer(
    tiny_corpus, embedder
):
    corpus = load_corpus(tiny_corpus)
    indexes = document_indexes(corpus, embedder)
    docs = sorted(corpus.documents)
    assert len(docs) == 2
    examples = corpus.examples
    asked = ask_all(examples, indexes, embedder, 7)
    pooled = pool_indexes(indexes, pools(docs, 2, random.Random(1)))
    assert pooled[docs[0]] is pooled[docs[1]]  # one index of both
    assert len(pooled[docs[0]][0].sentences) == sum(len(indexes[d][0].sentences) for d in docs)
    others = ask_others(asked, pooled, 7, False)
    own_text = {d: {s.text for s in indexes[d][0].sentences} for d in docs}
    assert any(others)  # some meet the other document among their first 7
    for a, found in zip(asked, others, strict=True):
        e = a.example
        assert len(found) <= 7
        for c in found:
            assert c.sentence not in own_text[e.doc] or all(c.sentence in own_text[d] for d in docs)
            assert not (e.answerable and holds_answer(c.sentence, e))

    rng = random.Random(3)
    rows = training_rows(asked, indexes, 3, rng, others=others)
    for group, found in enumerate(others):
        mine = [r for r in rows if r.group == group]
        wrong = [r for r in mine if r.span is None]
        from_others = [r for r in wrong if r.candidate in found[:2]]
        assert len(from_others) == (1 if found else 0)
        assert len(wrong) <= 3
    # without pools, every negative is one its own question retrieved from its document, and
    # a pool that brings no other document's sentence changes nothing, draws included
    plain = training_rows(asked, indexes, 3, random.Random(3))
    assert all(r.candidate in asked[r.group].read for r in plain if r.span is None)
    assert training_rows(asked, indexes, 3, random.Random(3), others=[()] * len(asked)) == plain

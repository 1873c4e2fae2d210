from qa.lexical import LexicalIndex
from qa.records import Sentence
from qa.text import content_stems

TEXTS = [
    "The council approved the new budget on Monday.",
    "It said the budget would fund two schools.",
    "The United States sent a delegation.",
    "Schools and the council met again.",
    "The budget, the council and the schools: the same words again.",
    "Nothing here matches.",
]


def sentences(texts=TEXTS):
    return [Sentence("doc", i, 0, len(t), t) for i, t in enumerate(texts)]


def test_stems_are_each_sentences_distinct_content_stems():
    lexical = LexicalIndex(sentences())
    for i, text in enumerate(TEXTS):
        assert lexical.stems(i) == tuple(dict.fromkeys(content_stems(text)))
    assert "us" in lexical.stems(2)  # the acronym of "United States"


def test_top_is_the_n_best_of_search_with_ties_in_search_order():
    # many tied scores: the cut at n falls inside a run of equal scores
    texts = ["budget council"] * 7 + ["budget"] * 5 + ["council schools budget"] * 3
    lexical = LexicalIndex([Sentence(f"d{i}", 0, 0, len(t), t) for i, t in enumerate(texts)])
    terms = {"budget": 1.0, "council": 1.0, "school": 0.5}
    everything = lexical.search(terms)
    ranked = sorted(everything.items(), key=lambda kv: -kv[1])  # stable: search order on ties
    for n in range(1, len(everything)):
        assert list(lexical.top(terms, n).items()) == ranked[:n]
    # no cut: every sentence found, in search's order
    assert lexical.top(terms, len(everything)) == everything

"""Fitting the ranker (``qa/rank.py``) on the training split. Torch-free.

Each answerable training question is asked of its own document as the service asks it; the
fused ranking's best RANKED sentences are its pool, and the answering sentence, when the
pool holds it, is the one to rank first. The ranker is a conditional logit over the pool
(a softmax of a linear score): fitted by Newton steps on the mean log loss plus an L2
penalty on the standardised weights. Validation documents never enter it: the reader's
settings, chosen on validation, are chosen on what it ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..answer import answer_question
from ..config import Config
from ..corpus import CorpusError, Example
from ..embed import Embedder
from ..index import Index
from ..lexical import LexicalIndex
from ..rank import FEATURES, RANKED, Ranker, pool_features
from ..read import Reader
from ..records import Turn
from .data import Asked, ask_all

Indexes = dict[str, tuple[Index, LexicalIndex]]  # each document's own (``document_indexes``)
PENALTY = 0.01  # L2 on the standardised weights (fixed before it was measured)
STEPS = 100  # Newton steps at most


def ranking_rows(asked: Sequence[Asked], indexes: Indexes) -> list[tuple[np.ndarray, int]]:
    """(features of each question's pool, where its answering sentence is in it), for the
    answerable questions whose pool holds that sentence."""
    rows = []
    for a in asked:
        gold = a.example.sentence
        if not a.example.answerable or gold is None or a.vector is None:
            continue
        pool = a.hits[:RANKED]  # what the service ranks
        at = [i for i, h in enumerate(pool) if h.sentence.index == gold]
        if at and len(pool) > 1:
            index, _ = indexes[a.example.doc]
            rows.append((pool_features(index, pool, a.vector), at[0]))
    return rows


def fit_ranker(rows: Sequence[tuple[np.ndarray, int]], penalty: float = PENALTY) -> Ranker:
    """The conditional logit of ``rows`` (see ``ranking_rows``). ValueError without rows."""
    if not rows:
        raise ValueError("no answerable training question to fit a ranker on")
    stacked = np.concatenate([x for x, _ in rows])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale[scale < 1e-9] = 1.0
    width = max(len(x) for x, _ in rows)
    q, f = len(rows), len(FEATURES)
    z = np.zeros((q, width, f))
    mask = np.zeros((q, width), dtype=bool)
    gold = np.array([g for _, g in rows])
    for i, (x, _) in enumerate(rows):
        z[i, : len(x)] = (x - mean) / scale
        mask[i, : len(x)] = True
    chosen = z[np.arange(q), gold]
    flat = z.reshape(q * width, f)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = np.where(mask, z @ w, -np.inf)
        top = s.max(axis=1, keepdims=True)
        p = np.exp(s - top)
        total = p.sum(axis=1, keepdims=True)
        logp_gold = (chosen @ w) - (top[:, 0] + np.log(total[:, 0]))
        return float(-logp_gold.mean() + penalty * w @ w), p / total

    w = np.zeros(f)
    value, p = loss(w)
    for _ in range(STEPS):
        expected = np.einsum("qs,qsf->qf", p, z)
        grad = -(chosen - expected).mean(axis=0) + 2 * penalty * w
        weighted = flat * p.reshape(-1, 1)
        second = (flat.T @ weighted - expected.T @ expected) / q + 2 * penalty * np.eye(f)
        step = np.linalg.solve(second, grad)
        # Newton with backtracking: the loss is convex, but a full step can overshoot
        for _ in range(30):
            new_value, new_p = loss(w - step)
            if new_value <= value:
                break
            step /= 2
        else:
            break
        w, gain, value, p = w - step, value - new_value, new_value, new_p
        if gain < 1e-10:
            break
    return Ranker(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()))


def recall_at(asked: Sequence[Asked], k: int) -> float:
    """The share of answerable questions whose answering sentence is among their first k."""
    known = [a for a in asked if a.example.answerable and a.example.sentence is not None]
    if not known:
        return 0.0
    found = sum(any(h.sentence.index == a.example.sentence for h in a.hits[:k]) for a in known)
    return found / len(known)


def reordered(asked: Sequence[Asked], indexes: Indexes, ranker: Ranker, k: int) -> list[Asked]:
    """``asked`` (each with its pool, best fused first) with its first ``k`` sentences as
    ``ranker`` orders them: what ``ask_all`` with the ranker returns, without asking again."""
    out = []
    for a in asked:
        assert a.vector is not None
        index, _ = indexes[a.example.doc]
        hits = tuple(ranker.order(index, a.hits, a.vector)[:k])
        at = {h.position: i for i, h in enumerate(a.hits)}
        kept = [at[h.position] for h in hits]
        out.append(
            replace(
                a,
                hits=hits,
                previous=tuple(a.previous[i] for i in kept),
                read=tuple(a.read[i] for i in kept),
            )
        )
    return out


def ask_ranked(
    train: Sequence[Example],
    validation: Sequence[Example],
    indexes: Indexes,
    embedder: Embedder,
    ks: tuple[int, int],
    log: Callable[[str], None] = print,
    named_rows: bool = False,
) -> tuple[Ranker, list[Asked], list[Asked]]:
    """The ranker fitted on the ``train`` questions, and the ``train`` and ``validation``
    questions asked in its order with ``ks`` sentences each (``ks[0]`` 0: the training
    questions only fit it, and none is returned): what ``ask_all`` gives, ranked as the
    service will rank them. Logs how it moves validation's recall of the answering
    sentence."""
    pools = ask_all(list(train), indexes, embedder, max(RANKED, ks[0]), named_rows)
    val_pools = ask_all(list(validation), indexes, embedder, max(RANKED, ks[1]), named_rows)
    rows = ranking_rows(pools, indexes)
    try:
        ranker = fit_ranker(rows)
    except ValueError as exc:
        raise CorpusError(f"{exc}: train without --ranker, or on more questions") from None
    val_asked = reordered(val_pools, indexes, ranker, ks[1])
    figures = ", ".join(
        f"@{k} {recall_at(val_pools, k):.3f} -> {recall_at(val_asked, k):.3f}"
        for k in (1, 3, 6)
        if k <= ks[1]
    )
    log(f"ranker fitted on {len(rows)} training questions; validation recall {figures}")
    train_asked = reordered(pools, indexes, ranker, ks[0]) if ks[0] else []
    return ranker, train_asked, val_asked


def ask_followups_again(
    asked: Sequence[Asked],
    indexes: Indexes,
    embedder: Embedder,
    reader: Reader,
    k: int,
    ranker: Ranker | None = None,
    named_rows: bool = False,
) -> list[Asked]:
    """``asked`` (the validation documents' questions) with each follow-up asked as the
    service asks it: its earlier turns answered by ``reader`` on its document, where the
    corpus gives the labelled answer, then retrieved (and ranked) as before. The other
    questions stay as they are."""
    where, again = [], []
    for i, a in enumerate(asked):
        e = a.example
        if not e.followup:
            continue
        index, lexical = indexes[e.doc]
        history: list[Turn] = []
        for turn in e.turns[:-1]:
            answer = answer_question(
                index, lexical, embedder, reader, turn, history, Config.top_k, named_rows
            ).answer
            history.append(Turn(turn, answer))
        where.append(i)
        again.append(replace(e, history_answer=history[-1].answer))
    out = list(asked)
    if again:
        depth = max(RANKED, k) if ranker else k
        pools = ask_all(again, indexes, embedder, depth, named_rows, as_served=True)
        asked_again = reordered(pools, indexes, ranker, k) if ranker else pools
        for i, a in zip(where, asked_again, strict=True):
            out[i] = a
    return out

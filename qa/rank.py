"""The ranker: which of the retrieved sentences the reader reads first.

Retrieval fuses a dense and a lexical score into one (``retrieve.py``). The ranker looks
again at the best RANKED of that fusion with a few more cheap signals, and orders them by a
score learned on the training corpus (``qa/training/ranking.py``): a conditional logit,
the probability that each sentence of the pool is the one that answers. The signals are
the dense, lexical and fused scores, their ranks in the pool and their gaps to its best,
the dense scores of the sentences before and after (an answer often follows the sentence
that matches the question's words), the sentence's length and its place in its document.
Its weights are in the reader's model card: the reader's other settings were chosen on
what it ranked first. numpy only; a few microseconds a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from .records import Sentence
from .vectors import reconstruct

if TYPE_CHECKING:
    from .index import Index


class Scored(Protocol):
    """A retrieved sentence with its scores (``retrieve.Hit``)."""

    @property
    def position(self) -> int: ...
    @property
    def sentence(self) -> Sentence: ...
    @property
    def score(self) -> float: ...
    @property
    def dense(self) -> float: ...
    @property
    def lexical(self) -> float: ...


H = TypeVar("H", bound=Scored)

RANKED = 30  # the fused ranking's best this many are ranked again; the rest keep their order

FEATURES = (
    "dense",
    "lexical",
    "fused",
    "log1p(rank by dense)",
    "log1p(rank by lexical)",
    "log1p(rank fused)",
    "dense - best dense",
    "lexical - best lexical",
    "fused - best fused",
    "dense of the sentence before",
    "dense of the sentence after",
    "dense before - dense",
    "dense after - dense",
    "log(characters)",
    "place in the document (0 first, 1 last)",
    "first of its document",
    "found by the lexical ranking",
)


def _ranks(x: np.ndarray) -> np.ndarray:
    """0 for the largest, then 1, ... (ties by order)."""
    order = np.argsort(-x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def pool_features(index: Index, hits: Sequence[Scored], query: np.ndarray) -> np.ndarray:
    """The FEATURES of each of ``hits`` (a pool, best fused first) for ``query``, the
    dense query vector: one row a hit."""
    dense = np.array([h.dense for h in hits], dtype=np.float64)
    lexical = np.array([h.lexical for h in hits], dtype=np.float64)
    fused = np.array([h.score for h in hits], dtype=np.float64)
    sentences = index.sentences
    neighbours: dict[int, float] = {}
    wanted = {
        p
        for h in hits
        for p in (h.position - 1, h.position + 1)
        if 0 <= p < len(sentences) and sentences[p].doc == h.sentence.doc
    }
    if wanted:
        ids = sorted(wanted)
        scores = reconstruct(index.vectors, ids) @ query
        neighbours = dict(zip(ids, scores.tolist(), strict=True))
    floor = float(dense.min())
    before = np.array([neighbours.get(h.position - 1, floor) for h in hits])
    after = np.array([neighbours.get(h.position + 1, floor) for h in hits])
    sizes = index.document_sizes
    place = np.array([h.sentence.index / max(sizes.get(h.sentence.doc, 1) - 1, 1) for h in hits])
    first = np.array([h.sentence.index == 0 for h in hits], dtype=np.float64)
    chars = np.log([max(len(h.sentence.text), 1) for h in hits])
    columns = [
        dense,
        lexical,
        fused,
        np.log1p(_ranks(dense)),
        np.log1p(_ranks(lexical)),
        np.log1p(_ranks(fused)),
        dense - dense.max(),
        lexical - lexical.max(),
        fused - fused.max(),
        before,
        after,
        before - dense,
        after - dense,
        chars,
        place,
        first,
        (lexical > 0).astype(np.float64),
    ]
    return np.stack(columns, axis=1)


@dataclass(frozen=True)
class Ranker:
    """A conditional logit over FEATURES, standardised: ``score`` orders a pool."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]

    def score(self, features: np.ndarray) -> np.ndarray:
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(z @ np.asarray(self.weights))

    def order(self, index: Index, hits: Sequence[H], query: np.ndarray) -> list[H]:
        """``hits`` (best fused first) with their first RANKED in the ranker's order (ties
        keep the fused order), the rest after them as they were."""
        pool = list(hits[:RANKED])
        if len(pool) < 2:
            return list(hits)
        scores = self.score(pool_features(index, pool, query))
        ranked = [pool[i] for i in np.argsort(-scores, kind="stable")]
        return ranked + list(hits[RANKED:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "ranked": RANKED,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ranker:
        """The ranker a card records; ValueError when it is not one this version reads."""
        if list(d.get("features", [])) != list(FEATURES):
            raise ValueError("its ranker has other features than this version of qa computes")
        if d.get("ranked") != RANKED:
            raise ValueError(f"its ranker ranks {d.get('ranked')} sentences, not {RANKED}")
        try:
            if not all(isinstance(d[k], list) for k in ("mean", "scale", "weights")):
                raise TypeError
            parts = [tuple(float(x) for x in d[k]) for k in ("mean", "scale", "weights")]
        except (KeyError, TypeError, ValueError, OverflowError):
            problem = "its ranker's mean, scale and weights are not lists of numbers"
            raise ValueError(problem) from None
        if any(len(p) != len(FEATURES) for p in parts) or not all(
            math.isfinite(x) for p in parts for x in p
        ):
            raise ValueError("its ranker's weights are not one finite number per feature")
        if any(s <= 0 for s in parts[1]):
            raise ValueError("its ranker's scales are not all positive")
        return cls(*parts)

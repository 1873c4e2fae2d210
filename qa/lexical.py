"""BM25 over sentences, so that names and numbers in a question find their sentence.

Each sentence is scored with its own words plus, at a lower weight, the words of the
sentence before it: a sentence that says "she said" can still be found by the name the
previous sentence gave.

Postings are numpy arrays (sentence numbers, term weights), so a common word in a corpus
of 100,000 sentences costs one vectorised pass rather than a Python loop; the arithmetic
is the same expression in the same order, so the scores are the same to the last bit.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .records import Sentence
from .text import content_stems

K1 = 1.2
B = 0.75
CONTEXT_WEIGHT = 0.3  # weight of the previous sentence's words


class LexicalIndex:
    def __init__(self, sentences: Sequence[Sentence], texts: Sequence[str] | None = None):
        """BM25 over ``sentences``, each read as its ``texts`` entry when given (what
        retrieval reads of it: ``build.retrieval_texts``), else as its text."""
        read = [s.text for s in sentences] if texts is None else texts
        own = [Counter(map(sys.intern, content_stems(t))) for t in read]
        # each sentence's distinct stems, kept so that answering never tokenises a sentence
        # again (interned: one string object per word, shared by every sentence using it)
        self._stems = [tuple(counts) for counts in own]
        ids: dict[str, list[int]] = defaultdict(list)
        tfs: dict[str, list[float]] = defaultdict(list)
        lengths = []
        for i, (s, counts) in enumerate(zip(sentences, own, strict=False)):
            weights = {w: float(c) for w, c in counts.items()}
            if i > 0 and sentences[i - 1].doc == s.doc:
                for w, c in own[i - 1].items():
                    weights[w] = weights.get(w, 0.0) + CONTEXT_WEIGHT * c
            for w, tf in weights.items():
                ids[w].append(i)
                tfs[w].append(tf)
            lengths.append(sum(counts.values()))
        self.size = len(sentences)
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.avg_length = (sum(lengths) / self.size) if self.size else 1.0
        # the length normalisation of each sentence, as BM25 writes it
        self._norm = K1 * (1 - B + B * self.lengths / self.avg_length)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            w: (np.asarray(ids[w], dtype=np.int64), np.asarray(tfs[w], dtype=np.float64))
            for w in ids
        }

    def stems(self, position: int) -> tuple[str, ...]:
        """The distinct content stems of sentence ``position`` (``content_stems`` of what
        was read of it)."""
        return self._stems[position]

    def idf(self, word: str) -> float:
        posting = self.postings.get(word)
        df = len(posting[0]) if posting is not None else 0
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def _scores(
        self, weighted_terms: dict[str, float]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], float]:
        """(sentence numbers in first-seen order, their raw scores, the normaliser)."""
        acc = np.zeros(self.size, dtype=np.float64)
        seen = np.zeros(self.size, dtype=bool)
        order = []
        total = 0.0
        for word, qw in weighted_terms.items():
            idf = self.idf(word)
            total += qw * idf * (K1 + 1)
            posting = self.postings.get(word)
            if posting is None:
                continue
            ids, tf = posting
            acc[ids] += qw * idf * tf * (K1 + 1) / (tf + self._norm[ids])
            new = ids[~seen[ids]]
            if len(new):
                seen[new] = True
                order.append(new)
        found = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
        return found, acc[found], total

    def search(self, weighted_terms: dict[str, float]) -> dict[int, float]:
        """Sentence number -> BM25 score normalised to [0, 1] (1 = every term, at full
        weight, saturated), for the sentences that contain any of the terms."""
        found, raw, total = self._scores(weighted_terms)
        if total <= 0:
            return {}
        return dict(zip(found.tolist(), (raw / total).tolist(), strict=True))

    def top(self, weighted_terms: dict[str, float], n: int) -> dict[int, float]:
        """``search`` when it finds at most ``n`` sentences (in its order); else its ``n``
        best, best first, ties in ``search``'s order (a stable sort)."""
        found, raw, total = self._scores(weighted_terms)
        if total <= 0:
            return {}
        scores = raw / total
        if len(found) > n:
            # only the scores that can be among the n best are sorted: those at least the
            # n-th best (every tie included, in search order, so the stable sort keeps the
            # order a sort of them all would give)
            nth = np.partition(scores, len(scores) - n)[len(scores) - n]
            candidates = np.flatnonzero(scores >= nth)
            keep = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
            found, scores = found[keep], scores[keep]
        return dict(zip(found.tolist(), scores.tolist(), strict=True))

"""BM25 over sentences, so that names and numbers in a question find their sentence.

Each sentence is scored with its own words plus, at a lower weight, the words of the
sentence before it: a sentence that says "she said" can still be found by the name the
previous sentence gave.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from .records import Sentence
from .text import content_stems

K1 = 1.2
B = 0.75
CONTEXT_WEIGHT = 0.3  # weight of the previous sentence's words


class LexicalIndex:
    def __init__(self, sentences: Sequence[Sentence]):
        own = [Counter(content_stems(s.text)) for s in sentences]
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.lengths = []
        for i, (s, counts) in enumerate(zip(sentences, own, strict=False)):
            weights = {w: float(c) for w, c in counts.items()}
            if i > 0 and sentences[i - 1].doc == s.doc:
                for w, c in own[i - 1].items():
                    weights[w] = weights.get(w, 0.0) + CONTEXT_WEIGHT * c
            for w, tf in weights.items():
                self.postings[w].append((i, tf))
            self.lengths.append(sum(counts.values()))
        self.size = len(sentences)
        self.avg_length = (sum(self.lengths) / self.size) if self.size else 1.0
        self.vocabulary = frozenset(self.postings)

    def idf(self, word: str) -> float:
        df = len(self.postings.get(word, ()))
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def search(self, weighted_terms: dict[str, float]) -> dict[int, float]:
        """Sentence number -> BM25 score normalised to [0, 1] (1 = every term, at full
        weight, saturated), for the sentences that contain any of the terms."""
        scores: dict[int, float] = defaultdict(float)
        total = 0.0
        for word, qw in weighted_terms.items():
            idf = self.idf(word)
            total += qw * idf * (K1 + 1)
            for i, tf in self.postings.get(word, ()):
                norm = K1 * (1 - B + B * self.lengths[i] / self.avg_length)
                scores[i] += qw * idf * tf * (K1 + 1) / (tf + norm)
        if total <= 0:
            return {}
        return {i: s / total for i, s in scores.items()}

"""The QA engine: one embedding model and one loaded index per process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .answer import Turn, answer_question
from .config import Config
from .embed import load_embedder
from .index import Index, build_index, load_index, stale_reason
from .lexical import LexicalIndex
from .records import Answer


def open_index(
    config: Config,
    embedder,
    notify: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
) -> Index:
    """Load the index, rebuilding it first (with a one-line notice) when it is missing or
    stale. A damaged index raises IndexProblem with a message that says how to rebuild."""
    reason = stale_reason(config.index_dir, config.seeds_dir, config.model)
    if reason:
        notify(f"{reason}: building the index in {config.index_dir} ...")
        return build_index(config.seeds_dir, config.index_dir, embedder, progress=progress)
    return load_index(config.index_dir)


class Engine:
    """Answers questions from the index in ``config.index_dir``."""

    def __init__(self, config: Config, notify: Callable[[str], None] = print):
        self.config = config
        self.embedder = load_embedder(config.model)
        self.index = open_index(config, self.embedder, notify)
        self.lexical = LexicalIndex(self.index.sentences)

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        return answer_question(
            self.index,
            self.embedder,
            self.lexical,
            question,
            history,
            top_k or self.config.top_k,
        )

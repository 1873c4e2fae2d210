"""Small helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

from qa.build import build_index
from qa.config import Config

# the kind of text the training commands' tests train on (see conftest.tiny_corpus)
TINY_KIND = "news-crime"


def build(seeds: Path, index: Path, embedder, progress=None, **settings):
    """Build the index of ``seeds`` into ``index`` with the default configuration (and
    any ``settings`` given)."""
    config = Config(seeds_dir=Path(seeds), index_dir=Path(index), **settings)
    return build_index(config, embedder, progress=progress)

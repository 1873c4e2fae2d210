"""Shared fixtures: the real bundled model, loaded once per test session, and indexes
built in temporary folders from copies of the documents."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from helpers import TINY_KIND

from qa.features import Featurizer, Limits

# A shell ignores SIGINT in the jobs it starts in the background, and the ignore passes on
# to every process they start: a test run started so (`bash .ci/run &`) would start servers
# that ignore Ctrl-C, and the test that stops one with SIGINT would wait in vain. The
# default handler here is reset to the default action in each child, as a terminal gives.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
ARTICLE = next(p for p in sorted(SEEDS.glob("*.txt")))
DATA = Path(__file__).resolve().parent / "data"
TRAIN = ROOT / "train"


@pytest.fixture(scope="session")
def embedder():
    from qa.config import Config
    from qa.embed import load_embedder

    return load_embedder(Config())


@pytest.fixture(scope="session")
def article_text() -> str:
    return ARTICLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def article_index(tmp_path_factory, embedder):
    """An index of the project's seeds, built once for the session (read-only)."""
    from qa.build import build_index
    from qa.config import Config

    base = tmp_path_factory.mktemp("article")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    return build_index(Config(seeds_dir=seeds, index_dir=base / "index"), embedder)


@pytest.fixture(scope="session")
def engine(article_index, embedder):
    """An Engine over the session's article index."""
    from qa.config import Config
    from qa.engine import Engine

    config = Config.load(
        seeds_dir=article_index.path.parent / "seeds", index_dir=article_index.path
    )
    return Engine(config, notify=lambda m: None, embedder=embedder)


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A writable copy of the project's seeds, for tests that change documents."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    return seeds


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Two documents of one kind (one for training, one for validation) and their
    questions, copied from the project's corpus: for the training commands' tests, which
    copy it before they change it."""
    root = tmp_path_factory.mktemp("corpus")
    for part, suffix in (("documents", ".txt"), ("questions", ".jsonl")):
        for path in sorted((TRAIN / part / TINY_KIND).glob(f"*{suffix}"))[:2]:
            (root / part / TINY_KIND).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / part / TINY_KIND / path.name)
    return root


@pytest.fixture(scope="session")
def featurizer() -> Featurizer:
    """How the reader tokenises, from the bundled model's tokenizer, with default limits."""
    from tokenizers import Tokenizer

    from qa.embed import resolve_model

    tokenizer = Tokenizer.from_file(str(Path(resolve_model("all-MiniLM-L6-v2")) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return Featurizer(tokenizer, Limits())

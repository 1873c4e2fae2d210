"""The engine: a configuration passed in reaches every part, and each question is answered
from one snapshot of the index."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qa.answer import QuestionError
from qa.config import Config
from qa.engine import Engine, Snapshot
from qa.errors import QAError
from qa.records import Turn

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_a_non_default_configuration_reaches_every_part(tmp_path, monkeypatch):
    """Backend, cache folder and HNSW size come from the Config given, not from the
    environment (which says otherwise here)."""
    monkeypatch.setenv("QA_BACKEND", "torch")
    monkeypatch.setenv("QA_HNSW_MIN", "100000")
    shutil.copytree(SEEDS, tmp_path / "seeds")
    config = Config(
        seeds_dir=tmp_path / "seeds",
        index_dir=tmp_path / "index",
        backend="onnx-int8",
        questions="off",  # a question encoder would embed the questions instead
        cache_dir=tmp_path / "cache",
        hnsw_min_sentences=10,
        embed_threads=1,
    )
    engine = Engine(config, notify=lambda m: None)
    assert engine.embedder.backend == "onnx-int8"
    exported = list((tmp_path / "cache" / "onnx").glob("*/model-int8.onnx"))
    assert len(exported) == 1  # the export went into the cache folder given
    faiss = engine.index.manifest["faiss"]
    assert faiss["kind"] == "IndexRefineFlat" and faiss["hnsw_min_sentences"] == 10
    assert engine.reader.folder == config.reader.resolve()
    answer = engine.ask("Who was instructed to use military force?")
    assert answer.index_version == engine.index.version


def test_a_snapshot_groups_the_sentences_by_document(engine):
    snapshot = Snapshot.of(engine.index)
    assert set(snapshot.by_document) == set(engine.index.documents)
    for doc, sentences in snapshot.by_document.items():
        assert [s.index for s in sentences] == list(range(len(sentences)))
        text = engine.index.documents[doc].text
        assert all(text[s.start : s.end] == s.text for s in sentences)
    assert sum(map(len, snapshot.by_document.values())) == len(engine.index.sentences)


def test_a_swap_in_the_middle_of_a_question_does_not_mix_indexes(engine, embedder, tmp_path):
    """The index is swapped while the question is being read: the answer, its citations
    and its index_version all come from the index in place when the question arrived."""
    from helpers import build

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "other.txt").write_text("The other index holds one sentence.\n")
    other = Snapshot.of(build(tmp_path / "seeds", tmp_path / "index", embedder))
    before = engine.snapshot
    real = engine.reader.read

    def read(*args, **kwargs):
        engine._snapshot = other  # what a rebuild does, mid-question
        return real(*args, **kwargs)

    engine.reader.read = read
    try:
        answer = engine.ask("Who was instructed to use military force?")
    finally:
        del engine.reader.read
        engine._snapshot = before
    assert answer.index_version == before.index.version != other.index.version
    assert all(c.doc in before.index.documents for c in answer.citations)


# --- what ask refuses, as the API does --------------------------------------------------

MANY_TURNS = [Turn("Who spoke?", None)] * 21


@pytest.mark.parametrize(
    ("question", "kwargs", "says"),
    [
        ("", {}, "the question is empty"),
        ("\u200b \ufeff", {}, "the question is empty"),  # nothing to read
        ("why " * 251, {}, "the question is over 1000 characters"),
        ("Who?", {"history": MANY_TURNS}, "history holds at most 20 turns"),
        ("Who?", {"history": [Turn(" ")]}, "history[0].question is empty"),
        ("Who?", {"history": [{"question": "Who?"}]}, "history[0] must be a Turn, not dict"),
        ("Who?", {"top_k": 0}, "top_k must be between 1 and 10, not 0"),
        ("Who?", {"top_k": -2}, "top_k must be between 1 and 10, not -2"),
        ("Who?", {"top_k": 11}, "top_k must be between 1 and 10, not 11"),
        ("Who?", {"top_k": True}, "top_k must be an integer"),
        ("Who?", {"top_k": 2.0}, "top_k must be an integer"),
    ],
)
def test_ask_refuses_what_the_api_refuses(engine, question, kwargs, says):
    with pytest.raises(QuestionError) as refused:
        engine.ask(question, **kwargs)
    assert str(refused.value) == says
    assert isinstance(refused.value, QAError) and isinstance(refused.value, ValueError)


def test_ask_gives_the_default_top_k_for_none_and_takes_each_allowed_one(engine):
    question = "Who was instructed to use military force?"
    assert len(engine.ask(question).citations) == engine.config.top_k == 3
    assert len(engine.ask(question, top_k=None).citations) == 3
    assert len(engine.ask(question, top_k=1).citations) == 1
    assert len(engine.ask(question, top_k=10).citations) == 10
    assert engine.ask("why " * 250, history=[Turn("Who spoke?")] * 20).question  # at the limits


def test_ask_refuses_by_the_engines_own_limits(engine, monkeypatch):
    tight = replace(engine.config, max_question_chars=8, max_history=1, max_top_k=2, top_k=2)
    monkeypatch.setattr(engine, "config", tight)
    with pytest.raises(QuestionError, match="over 8 characters"):
        engine.ask("Who spoke then?")
    with pytest.raises(QuestionError, match="at most 1 turns"):
        engine.ask("Who?", history=[Turn("Who?"), Turn("Why?")])
    with pytest.raises(QuestionError, match="between 1 and 2, not 3"):
        engine.ask("Who?", top_k=3)
    with pytest.raises(QuestionError, match=r"history\[0\].question is over 8 characters"):
        engine.ask("Who?", history=[Turn("Who spoke then?")])
    assert len(engine.ask("Who?").citations) == 2  # the tight configuration's own top_k


def test_by_default_the_engine_logs_its_notices_and_prints_nothing(
    tmp_path, embedder, capsys, caplog
):
    """A library does not write to stdout: building a missing index is logged (info), a
    file left out of it too (a warning), on this module's logger."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "one.txt").write_text("The only document holds one sentence.\n")
    (seeds / "empty.md").write_text("")
    caplog.set_level(logging.INFO, logger="qa.engine")
    engine = Engine(Config(seeds_dir=seeds, index_dir=tmp_path / "index"), embedder=embedder)
    assert capsys.readouterr().out == ""
    said = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert said == [
        (
            "qa.engine",
            logging.INFO,
            f"no index in {tmp_path / 'index'}: building the index in {tmp_path / 'index'} ...",
        ),
        ("qa.engine", logging.WARNING, "warning: skipped empty.md: the document is empty"),
    ]
    assert list(engine.index.documents) == ["one.txt"]


# --- closing ------------------------------------------------------------------------------


def test_an_engine_is_a_context_manager_that_stops_watching(tmp_path, embedder):
    """``with Engine(...) as engine`` closes it at the end: its watcher stops, so a rebuilt
    index is no longer picked up, and the engine still answers from the one it holds."""
    from helpers import build

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "one.txt").write_text("Ivy Holt founded the society in 1921.\n")
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    with Engine(config, embedder=embedder) as engine:
        engine.watch(interval=0.02)
        watcher = engine._watcher
        assert watcher is not None and watcher.is_alive()
        version = engine.index.version
    assert not watcher.is_alive()
    (seeds / "one.txt").write_text("Tom Reed founded the society in 1930.\n")
    assert build(seeds, tmp_path / "index", embedder).version != version
    time.sleep(0.3)  # many times the interval it watched at
    assert engine.index.version == version
    assert engine.ask("Who founded the society?").index_version == version
    engine.close()  # again: nothing to stop, no error


def test_closing_on_an_error_lets_the_error_through(engine):
    with pytest.raises(RuntimeError, match="in the block"):
        with engine as same:
            assert same is engine
            engine.watch(interval=0.02)
            watcher = engine._watcher
            raise RuntimeError("in the block")
    assert watcher is not None and not watcher.is_alive()
    assert engine._watcher is None

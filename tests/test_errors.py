"""One base error: whatever the library raises on purpose is a ``qa.QAError``, and still
what it was before (a QuestionError is a ValueError), so that old ``except`` clauses hold."""

from __future__ import annotations

import click
import pytest

import qa
from qa.answer import QuestionError, check_question
from qa.build import build_index
from qa.cli_options import library_errors
from qa.config import Config
from qa.corpus import CorpusError, label_file
from qa.documents import DocumentError, NotUTF8, utf8_text
from qa.embed import load_embedder
from qa.errors import QAError
from qa.index import IndexProblem, load_index
from qa.read import ReaderError, load_reader
from qa.runner import ModelError

# each error, with the bases it had before QAError
ERRORS = [
    (QuestionError, ValueError),
    (DocumentError, Exception),
    (NotUTF8, ValueError),
    (ModelError, Exception),
    (IndexProblem, Exception),
    (ReaderError, Exception),
    (CorpusError, ValueError),
]


@pytest.mark.parametrize(("error", "before"), ERRORS, ids=[e.__name__ for e, _ in ERRORS])
def test_each_error_is_a_qa_error_and_still_what_it_was(error, before):
    assert issubclass(error, QAError) and issubclass(error, before)


def test_qa_exports_the_base_and_the_errors_a_user_meets():
    assert qa.QAError is QAError
    for error in (QuestionError, DocumentError, IndexProblem, ModelError, ReaderError):
        assert getattr(qa, error.__name__) is error


def test_what_the_library_raises_is_caught_as_qa_error(tmp_path):
    """Real failures, each caught by the one base (and as before, by its own class)."""
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{\n", encoding="utf-8")
    nowhere = Config(seeds_dir=tmp_path / "none", index_dir=tmp_path / "index")
    failures = [
        (QuestionError, lambda: check_question("  ", 100)),
        (DocumentError, lambda: build_index(nowhere, None)),
        (NotUTF8, lambda: utf8_text(b"caf\xe9")),
        (IndexProblem, lambda: load_index(tmp_path / "empty")),
        (ReaderError, lambda: load_reader(Config(reader=tmp_path / "empty"))),
        (ModelError, lambda: load_embedder(Config(questions=str(tmp_path / "empty")))),
        (CorpusError, lambda: label_file(bad, tmp_path)),
    ]
    for error, fail in failures:
        with pytest.raises(QAError) as caught:
            fail()
        assert type(caught.value) is error, caught.value
        assert str(caught.value)  # says what is wrong


def test_the_cli_says_any_qa_error_in_one_line():
    class Unforeseen(QAError):
        pass

    @library_errors
    def command() -> None:
        raise Unforeseen("the index is on fire")

    with pytest.raises(click.ClickException, match="the index is on fire"):
        command()

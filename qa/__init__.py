"""qa: extractive question answering over documents, with exact sentence citations.

The public face of the library; each name is imported from its module on first use, so
that ``import qa`` (and ``qa --help``) stay fast. Type checkers and editors read the same
names from the imports under ``TYPE_CHECKING``, which never run.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .answer import QuestionError, answer_question
    from .build import build_index
    from .config import Config
    from .documents import DocumentError
    from .embed import load_embedder
    from .engine import Engine
    from .errors import QAError
    from .index import IndexProblem, load_index
    from .read import ReaderError, load_reader
    from .records import Answer, Citation, Document, Sentence, Turn
    from .runner import ModelError
    from .split import split_sentences

__version__ = "0.1.0"

# name -> the module it is imported from on first use (tests/test_init.py checks that the
# imports above say the same)
_EXPORTS = {
    "Answer": "records",
    "Citation": "records",
    "Config": "config",
    "Document": "records",
    "DocumentError": "documents",
    "Engine": "engine",
    "IndexProblem": "index",
    "ModelError": "runner",
    "QAError": "errors",
    "QuestionError": "answer",
    "ReaderError": "read",
    "Sentence": "records",
    "Turn": "records",
    "answer_question": "answer",
    "build_index": "build",
    "load_embedder": "embed",
    "load_index": "index",
    "load_reader": "read",
    "split_sentences": "split",
}
# written out, not computed from _EXPORTS, so that type checkers read it as the re-exports
__all__ = [
    "Answer",
    "Citation",
    "Config",
    "Document",
    "DocumentError",
    "Engine",
    "IndexProblem",
    "ModelError",
    "QAError",
    "QuestionError",
    "ReaderError",
    "Sentence",
    "Turn",
    "__version__",
    "answer_question",
    "build_index",
    "load_embedder",
    "load_index",
    "load_reader",
    "split_sentences",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

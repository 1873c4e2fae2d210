"""qa: extractive question answering over documents, with exact sentence citations.

The public face of the library; each name is imported from its module on first use, so
that ``import qa`` (and ``qa --help``) stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

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
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")

"""The one base of the library's errors: ``except qa.QAError`` catches every error that
qa raises on purpose (a question it refuses, a damaged index, a model that does not load,
an unusable document), each still a subclass of what it was before (QuestionError a
ValueError, ...), so that code catching those keeps working."""

from __future__ import annotations


class QAError(Exception):
    """An error of the qa library; its message says what is wrong and, where it can, how
    to put it right."""

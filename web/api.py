"""The JSON API: ask, health, documents and example questions. Stateless: the client
sends the conversation so far as ``history``."""

from __future__ import annotations

import json
import unicodedata
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, Response, current_app, jsonify, request

from qa.answer import QuestionError, check_ask
from qa.documents import NotUTF8, utf8_text
from qa.records import Turn

from .problems import APIProblem

if TYPE_CHECKING:
    from qa.config import Config
    from qa.index import Index
    from qa.records import Sentence

bp = Blueprint("api", __name__, url_prefix="/api")

ASK_FIELDS = {"question", "history", "top_k"}


def _qa() -> dict[str, Any]:
    state: dict[str, Any] = current_app.extensions["qa"]
    return state


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.post("/ask")
def ask() -> Response:
    config = _qa()["config"]
    wait = _qa()["rate_limiter"].retry_after(request.remote_addr or "")
    if wait:
        raise APIProblem(429, f"too many questions; try again in {wait} s", retry_after=wait)
    if request.mimetype != "application/json":
        raise APIProblem(415, "send the question as JSON (Content-Type: application/json)")
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):  # ASCII is UTF-8 too
        raise APIProblem(415, f"send the body as UTF-8 (charset {charset} is not read)")
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise APIProblem(415, f"send the body uncompressed (Content-Encoding {coding} is not read)")
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        raise APIProblem(413, f"the request body is over {config.max_body_bytes} bytes")
    # get_data enforces MAX_CONTENT_LENGTH even when no Content-Length was sent; UTF-8 as
    # the 415 check says (json.loads would take UTF-16 and UTF-32 bytes too), a byte order
    # mark read, as before
    try:
        text = utf8_text(request.get_data(cache=False))
    except NotUTF8 as exc:
        raise APIProblem(400, f"the body is not UTF-8 (at byte offset {exc.at})") from None
    try:
        body = json.loads(text, object_pairs_hook=_once)
    except json.JSONDecodeError as exc:
        raise APIProblem(400, f"the body is not valid JSON: {exc}") from None
    except TwiceGiven as exc:
        raise APIProblem(400, str(exc)) from None
    except RecursionError:  # [[[[...: deeper than any ask request is
        raise APIProblem(400, "the body is nested too deeply") from None
    except ValueError:  # Python's cap on the digits of an integer read from text
        raise APIProblem(400, "the body holds a number too long to read") from None
    question, history, top_k = parse_ask(body, config)
    try:
        answer = _qa()["engine"].ask(question, history=history, top_k=top_k)
    except QuestionError as exc:
        raise APIProblem(400, str(exc)) from None
    return jsonify(answer.to_dict())


class TwiceGiven(Exception):
    """A JSON object of the body names a field twice (which one counts would be a guess)."""


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, each field given once (``json.loads``' ``object_pairs_hook``)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise TwiceGiven(f"the body gives the field {json.dumps(key)} twice")
        out[key] = value
    return out


def parse_ask(body: Any, config: Config) -> tuple[str, list[Turn], int]:
    """Check an ask request against the limits of ``config``; APIProblem(400) says why not.
    Here the body's shape as JSON; the limits are ``check_ask``'s, which Engine.ask applies
    to library calls too."""
    if not isinstance(body, dict):
        raise APIProblem(400, "the body must be a JSON object")
    unknown = sorted(set(body) - ASK_FIELDS)
    if unknown:
        raise APIProblem(400, f"unknown field(s): {', '.join(unknown)}")

    question = body.get("question")
    if question is None:
        raise APIProblem(400, "the question is missing")

    history = body.get("history")
    if history is None:
        history = []
    if not isinstance(history, list):
        raise APIProblem(400, "history must be a list of {question, answer} turns")
    turns = []
    for i, turn in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(turn, dict):
            raise APIProblem(
                400, f"{where} must be an object with a question (and its answer, or null)"
            )
        unknown = sorted(set(turn) - {"question", "answer"})
        if unknown:
            raise APIProblem(400, f"{where} has unknown field(s): {', '.join(unknown)}")
        answer = turn.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise APIProblem(400, f"{where}.answer must be a string or null")
        # its question, any JSON value here, is checked by check_ask below
        turns.append(Turn(cast(str, turn.get("question")), answer))

    top_k = body.get("top_k")
    if isinstance(top_k, float) and top_k.is_integer():
        top_k = int(top_k)  # JSON has one kind of number: 3.0 is the integer 3, as the spec says
    try:
        # the question named as the body's field, as history[i].question and top_k are
        return question, turns, check_ask(question, turns, top_k, config, "question")
    except QuestionError as exc:
        raise APIProblem(400, str(exc)) from None


@bp.get("/health")
def health() -> Response:
    """200 while the service answers. "degraded" (still 200: the last good index keeps
    answering) when the index on disk was rebuilt or changed and does not load; "problem"
    then names the file and says how to rebuild."""
    engine = _qa()["engine"]
    index = engine.index
    counts = index.manifest["counts"]
    problem = getattr(engine, "problem", None)
    body = {
        "status": "degraded" if problem else "ok",
        "index_version": index.version,
        "documents": counts["documents"],
        "sentences": counts["sentences"],
        "reader": getattr(engine.reader, "name", None),
        "questions": getattr(getattr(engine, "embedder", None), "questions_name", None),
        # how Markdown table rows are read (QA_TABLE_ROWS, or the reader's card)
        "table_rows": engine.table_rows,
        # the seeds folder's files left out of the index, each named with why
        "skipped": list(index.manifest.get("skipped", [])),
    }
    if problem:
        body["problem"] = problem
    return jsonify(body)


def _index_and_sentences() -> tuple[Index, dict[str, tuple[Sentence, ...]]]:
    """The engine's current index and its sentences grouped by document (one snapshot: a
    rebuild may replace it while serving)."""
    snapshot = _qa()["engine"].snapshot
    return snapshot.index, snapshot.by_document


@bp.get("/documents")
def documents() -> Response:
    index, sentences = _index_and_sentences()
    return jsonify(
        documents=[
            {**doc.to_dict(), "sentences": len(sentences.get(doc_id, []))}
            for doc_id, doc in index.documents.items()
        ]
    )


@bp.get("/documents/<path:doc>")
def document(doc: str) -> Response:
    # Only ids of the index are served: nothing here ever touches the file system.
    index, sentences = _index_and_sentences()
    found = index.documents.get(doc)
    if found is None:
        # a name's accents composed or not ("é" or "e" + "◌́": macOS writes the second) are
        # the same name to a reader, whichever form the URL and the file system chose
        same = unicodedata.normalize("NFC", doc)
        alike = [d for d in index.documents if unicodedata.normalize("NFC", d) == same]
        if len(alike) != 1:
            raise APIProblem(404, "there is no document with this id in the index")
        found = index.documents[alike[0]]
    return jsonify(
        {
            **found.to_dict(),
            "text": found.text,
            "sentences": [s.to_dict() for s in sentences.get(found.id, [])],
            "index_version": index.version,
        }
    )


@bp.get("/examples")
def examples() -> Response:
    return jsonify(examples=_qa()["examples"])

"""The OpenAPI 3.1 description of the API, served at /openapi.json. Its schemas are JSON
Schema 2020-12, and the tests check real responses against them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify

from qa import __version__

if TYPE_CHECKING:
    from qa.config import Config

bp = Blueprint("openapi", __name__)

PROBLEM = "application/problem+json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


def spec(config: Config) -> dict[str, Any]:
    """The spec, with the limits of ``config`` written into it."""
    nonneg = {"type": "integer", "minimum": 0}
    question = {
        "type": "string",
        "minLength": 1,
        "maxLength": config.max_question_chars,
        "pattern": r"\S",
        "description": "Text with something to read: one of only white space, invisible "
        "characters (zero-width spaces) or marks on no letter (a lone variation selector) is "
        'refused, as is an unpaired surrogate escape ("\\ud800").',
    }
    schemas = {
        "AskRequest": {
            "type": "object",
            "required": ["question"],
            "additionalProperties": False,
            "properties": {
                "question": question,
                "history": {
                    "type": ["array", "null"],
                    "maxItems": config.max_history,
                    "description": "Earlier turns of the conversation, oldest first; null or "
                    "left out: none.",
                    "items": _ref("Turn"),
                },
                "top_k": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": config.max_top_k,
                    "default": config.top_k,
                    "description": "Citations to return; null or left out: the default.",
                },
            },
        },
        "Turn": {
            "type": "object",
            "required": ["question"],
            "additionalProperties": False,
            "properties": {"question": question, "answer": {"type": ["string", "null"]}},
        },
        "Citation": {
            "type": "object",
            "required": ["doc", "sentence", "start", "end", "text", "score"],
            "additionalProperties": False,
            "properties": {
                "doc": {"type": "string"},
                "sentence": nonneg,
                "start": nonneg,
                "end": nonneg,
                "text": {"type": "string"},
                "score": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "the probability that this sentence's best span is right, "
                    "from the reader's reading of it alone",
                },
            },
        },
        "Answer": {
            "type": "object",
            "description": "answer is a verbatim span of the first citation, with its offsets "
            "in the document; null when the documents do not say, and the citations are "
            "then only related passages.",
            "required": [
                "question",
                "answer",
                "answer_start",
                "answer_end",
                "confidence",
                "citations",
                "index_version",
            ],
            "additionalProperties": False,
            "properties": {
                "question": {"type": "string"},
                "answer": {"type": ["string", "null"]},
                "answer_start": {"type": ["integer", "null"], "minimum": 0},
                "answer_end": {"type": ["integer", "null"], "minimum": 0},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "citations": {"type": "array", "items": _ref("Citation")},
                "index_version": {"type": "string"},
            },
        },
        "Health": {
            "type": "object",
            "required": [
                "status",
                "index_version",
                "documents",
                "sentences",
                "reader",
                "questions",
                "table_rows",
                "skipped",
            ],
            "additionalProperties": False,
            "description": "The service answers from the index `index_version`, with the "
            "reader `reader` and the question encoder `questions` (the hashes of their model "
            "cards; `questions` is null when the embedding model embeds questions too), "
            "reading Markdown table rows as `table_rows` says (`header`: after their "
            "table's header row; `named`: each cell after its column's name). "
            "`degraded`: "
            "the index on disk was rebuilt or changed but does not load, so the last good "
            "index keeps answering (still HTTP 200); `problem` names the file and says how "
            "to rebuild. The server switches to a rebuilt index on its own within seconds. "
            "`skipped`: the files of the seeds folder left out of the index (not UTF-8, "
            "empty, unreadable...), each message naming the file and why.",
            "properties": {
                "status": {"enum": ["ok", "degraded"]},
                "index_version": {"type": "string"},
                "documents": nonneg,
                "sentences": nonneg,
                "reader": {"type": ["string", "null"]},
                "table_rows": {"enum": ["header", "named"]},
                "questions": {"type": ["string", "null"]},
                "problem": {"type": "string"},
                "skipped": {"type": "array", "items": {"type": "string"}},
            },
        },
        "DocumentSummary": {
            "type": "object",
            "required": ["id", "chars", "sha256", "sentences"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "chars": nonneg,
                "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The sha256 of the file's bytes (a leading UTF-8 "
                    "byte-order mark included, which `text` leaves out).",
                },
                "sentences": nonneg,
            },
        },
        "DocumentList": {
            "type": "object",
            "required": ["documents"],
            "additionalProperties": False,
            "properties": {"documents": {"type": "array", "items": _ref("DocumentSummary")}},
        },
        "SentenceOffsets": {
            "type": "object",
            "required": ["doc", "sentence", "start", "end"],
            "additionalProperties": False,
            "properties": {
                "doc": {"type": "string"},
                "sentence": nonneg,
                "start": nonneg,
                "end": nonneg,
            },
        },
        "Document": {
            "type": "object",
            "required": ["id", "chars", "sha256", "text", "sentences", "index_version"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "chars": nonneg,
                "sha256": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The sha256 of the file's bytes (a leading UTF-8 "
                    "byte-order mark included, which `text` leaves out).",
                },
                "text": {"type": "string"},
                "sentences": {"type": "array", "items": _ref("SentenceOffsets")},
                "index_version": {
                    "type": "string",
                    "description": "The index this text and these offsets are from.",
                },
            },
        },
        "Examples": {
            "type": "object",
            "required": ["examples"],
            "additionalProperties": False,
            "properties": {"examples": {"type": "array", "items": {"type": "string"}}},
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
            },
        },
    }
    not_found = _problem("No such document (or no such path).")
    # what any request may get, from the server before the app (or from its last resort)
    common = {
        "408": _problem("The request's headers or body came too slowly; the connection closes."),
        "429": _problem(
            "Too many open connections from the client's address (closed at once, with "
            "Retry-After)."
        ),
        "500": _problem("An unexpected failure, logged on the server."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qa",
            "version": __version__,
            "description": "Extractive question answering over documents, with exact "
            "sentence citations. Every error is application/problem+json. A method a path "
            "does not list gets 405 with an Allow header (OPTIONS: 200 and Allow).",
        },
        "paths": {
            "/api/ask": {
                "post": {
                    "summary": "Answer a question from the documents",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("AskRequest")}},
                    },
                    "responses": {
                        "200": _json("Answer", "The answer with its citations."),
                        "400": _problem("Invalid JSON, question, history or top_k."),
                        "413": _problem(f"Body over {config.max_body_bytes} bytes."),
                        "415": _problem(
                            "The body is not application/json in UTF-8, or is sent compressed."
                        ),
                        **common,
                        "429": _problem(
                            "Over the per-client limit of questions (when one is set), or too "
                            "many open connections from the client's address; with Retry-After."
                        ),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "summary": "Liveness and the loaded index",
                    "responses": {
                        "200": _json(
                            "Health",
                            "The service is up and answering; status is degraded when a "
                            "rebuilt index on disk could not be loaded.",
                        ),
                        **common,
                    },
                }
            },
            "/api/documents": {
                "get": {
                    "summary": "List the indexed documents",
                    "responses": {"200": _json("DocumentList", "The documents."), **common},
                }
            },
            "/api/documents/{doc}": {
                "get": {
                    "summary": "A document's text and the offsets of its sentences",
                    "parameters": [
                        {
                            "name": "doc",
                            "in": "path",
                            "required": True,
                            "description": "Document id (its path in the seeds folder; may "
                            "contain '/').",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json("Document", "The document."),
                        "404": not_found,
                        **common,
                    },
                }
            },
            "/api/examples": {
                "get": {
                    "summary": "Example questions (from examples.json beside the documents)",
                    "responses": {"200": _json("Examples", "The example questions."), **common},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document.",
                            "content": {"application/json": {}},
                        },
                        **common,
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(spec(current_app.extensions["qa"]["config"]))

"""Errors as RFC 9457 problem details (``application/problem+json``), never a traceback."""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, title: str | None = None) -> Response:
    """A problem+json response; ``type`` is about:blank, so ``title`` is the status phrase."""
    if title is None:
        title = HTTPStatus(status).phrase
    response = jsonify(type="about:blank", title=title, status=status, detail=detail)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


class APIProblem(HTTPException):
    """Raised by the API for a request it refuses; rendered as a problem."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(description=detail)
        self.code = status
        self.retry_after = retry_after


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = problem(exc.code or 500, exc.description or "")
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        # Logged in full on the server; the client only learns that it failed.
        current_app.logger.exception("unhandled error")
        return problem(500, InternalServerError.description)

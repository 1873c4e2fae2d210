"""The chat page: one HTML page; the script in static/ does the rest through the API."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from qa.config import LOW_CONFIDENCE

bp = Blueprint("pages", __name__)


@bp.get("/")
def chat() -> ResponseReturnValue:
    config = current_app.extensions["qa"]["config"]
    return render_template(
        "chat.html",
        max_question_chars=config.max_question_chars,
        max_history=config.max_history,
        max_body_bytes=config.max_body_bytes,
        low_confidence=LOW_CONFIDENCE,
    )

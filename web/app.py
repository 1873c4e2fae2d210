"""The Flask app factory: loads the QA engine once and wires the page, the API and errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider

from qa.clients import SECURITY_HEADERS
from qa.config import Config

from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from qa.engine import Engine

log = logging.getLogger(__name__)

EXAMPLES_FILE = "examples.json"


def create_app(config: Config | None = None, *, engine: Engine | None = None) -> Flask:
    """The web app. ``config`` defaults to the environment's (QA_*); ``engine`` is the
    engine that answers (by default one is loaded from ``config``; tests pass theirs, so
    that a test session loads the model once)."""
    if config is None:
        config = engine.config if engine is not None else Config.load()
    settings = config
    if engine is None:
        from qa.engine import Engine

        engine = Engine(settings, notify=lambda m: log.warning("%s", m))

    app = Flask(__name__)
    # Never the debugger, whatever FLASK_DEBUG or a config file says: it runs code.
    app.debug = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Flask's default provider (app.json is typed as the base JSONProvider)
    cast(DefaultJSONProvider, app.json).sort_keys = False
    # Document ids are taken literally: no redirect from /api/documents//x to /x.
    app.url_map.merge_slashes = False
    app.extensions["qa"] = {
        "config": settings,
        "engine": engine,
        "examples": load_examples(Path(settings.seeds_dir)),
        "rate_limiter": RateLimiter(settings.rate_limit),
    }

    from . import api, openapi, pages, problems

    problems.register(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def load_examples(seeds_dir: Path) -> list[str]:
    """Example questions from ``examples.json`` beside the documents: a JSON list of
    strings. A missing or malformed file gives no examples, never an error."""
    path = seeds_dir / EXAMPLES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []
    if not isinstance(data, list):
        log.warning("ignoring %s: not a JSON list", path)
        return []
    return [q.strip() for q in data if isinstance(q, str) and q.strip()]

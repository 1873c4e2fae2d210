"""One source of configuration: defaults, then environment variables, then flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# environment variable -> field name
ENV_VARS = {
    "QA_SEEDS": "seeds_dir",
    "QA_INDEX": "index_dir",
    "QA_MODEL": "model",
    "QA_TOP_K": "top_k",
    "QA_HOST": "host",
    "QA_PORT": "port",
    "QA_THREADS": "threads",
    "QA_MAX_QUESTION_CHARS": "max_question_chars",
    "QA_MAX_HISTORY": "max_history",
    "QA_MAX_BODY_BYTES": "max_body_bytes",
    "QA_RATE_LIMIT": "rate_limit",
    "QA_BACKEND": "backend",
    "QA_EMBED_THREADS": "embed_threads",
    "QA_EMBED_LANES": "embed_lanes",
    "QA_CACHE": "cache_dir",
    "QA_HNSW_MIN": "hnsw_min_sentences",
    "QA_READER": "reader",
    "QA_QUESTIONS": "questions",
    "QA_TABLE_ROWS": "table_rows",
    "QA_MAX_CONNECTIONS": "max_connections",
    "QA_MAX_CONN_PER_CLIENT": "max_conn_per_client",
    "QA_HEADER_TIMEOUT": "header_timeout",
    "QA_BODY_TIMEOUT": "body_timeout",
    "QA_BODY_MIN_RATE": "body_min_rate",
    "QA_IDLE_TIMEOUT": "idle_timeout",
    "QA_FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
}
# the trained reader that ships inside the package (see qa/read.py and `qa train`)
DEFAULT_READER = Path(__file__).resolve().parent / "models" / "reader"
# the question encoder that ships inside the package (see qa/questions.py)
DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "models" / "questions"
# Under this confidence (as shown, to two places) `qa ask` and the chat page flag an answer
# as low: the threshold chosen on validation may lie under the calibration curve's midpoint.
LOW_CONFIDENCE = 0.5
# how a Markdown table row may be read (Config.table_rows)
TABLE_ROWS = ("header", "named")
# what may embed (Config.backend; see qa/embed.py)
BACKENDS = ("onnx", "onnx-int8", "torch")


def table_reading(configured: str, card: dict[str, Any] | None = None) -> str:
    """How Markdown table rows are read: as QA_TABLE_ROWS says (``configured``), else as
    the reader's ``card`` says it was chosen to read them (``table_rows``; a card from
    before that key recorded it as ``figures.validation.table_rows``), else after their
    header row."""
    if configured:
        return configured
    card = card or {}
    older = ((card.get("figures") or {}).get("validation") or {}).get("table_rows")
    return str(card.get("table_rows") or older or TABLE_ROWS[0])


@dataclass(frozen=True)
class Config:
    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    model: str = DEFAULT_MODEL
    top_k: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    # waitress workers: most wait on the embedder, and more of them make larger micro-batches
    # (measured by qa bench on 2 cores: 16 clients get 1.8x the 1-client throughput with
    # 16 threads, 1.5x with 4)
    threads: int = 16
    max_question_chars: int = 1000
    max_history: int = 20
    max_top_k: int = 10
    max_body_bytes: int = 64 * 1024
    # requests per minute per client; 0 turns the limit off (the default, for local use)
    rate_limit: int = 0
    # embedding backend: "onnx" (ONNX Runtime, exported once into cache_dir), "onnx-int8"
    # (the same, with questions through its int8 quantisation; documents stay at full
    # precision) or "torch" (sentence-transformers on PyTorch)
    backend: str = "onnx"
    # threads of each model run that embeds questions, and how many such runs go at once
    # (0: one per core); questions that arrive together share a run
    embed_threads: int = 1
    embed_lanes: int = 0
    cache_dir: Path = Path.home() / ".cache" / "qa"
    # FAISS: exact search below this many sentences, HNSW (approximate) from it on
    hnsw_min_sentences: int = 20_000
    # the folder of the reader (model.onnx, tokenizer.json, card.json)
    reader: Path = DEFAULT_READER
    # what embeds questions: "auto" (the shipped question encoder, with the bundled embedding
    # model), "off" (the embedding model itself) or the folder of a question encoder
    questions: str = "auto"
    # how the reader reads a row of a Markdown table (not its header): "header" (after its
    # table's header row) or "named" (each cell after its column's name: 'Port: 2525';
    # measured in the README under "Adding documents"); empty: as the reader's card says
    table_rows: str = ""
    # `qa serve` against slow and idle clients (qa/server.py; the reasons are in the README
    # under "Exposing it to the internet"). An idle connection costs waitress a socket and
    # a few kilobytes, never a thread, so the total is high and one address's share small.
    max_connections: int = 1000
    max_conn_per_client: int = 20  # 0: no cap
    header_timeout: int = 5  # seconds from connecting to the end of the headers
    body_timeout: int = 5  # seconds the body may take before body_min_rate applies
    body_min_rate: int = 1000  # bytes a second
    idle_timeout: int = 10  # seconds a connection may sit with nothing moving
    # reverse proxies whose X-Forwarded-For names the client: addresses or networks,
    # comma-separated, or "*"; empty: the header is ignored
    forwarded_allow_ips: str = ""
    # how often the deadlines above are checked, in seconds
    cleanup_interval: float = 1.0

    @classmethod
    def load(cls, only: tuple[str, ...] = (), **overrides: Any) -> Config:
        """Defaults, overridden by QA_* environment variables (with ``only``, those of these
        fields alone), overridden by ``overrides`` (flags; a value of None means "not
        given")."""
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for var, name in ENV_VARS.items():
            raw = os.environ.get(var)
            if raw not in (None, "") and (not only or name in only):
                values[name] = _coerce(name, types[name], raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = _coerce(name, types[name], value)
        return replace(cls(), **values)

    def __post_init__(self) -> None:
        self.check()  # however it is made: load(), replace() or directly

    def check(self) -> None:
        """ValueError when a setting that takes one of a few words has another, or a number
        is out of its range (``RANGES``), naming the environment variable that sets it."""
        if self.table_rows and self.table_rows not in TABLE_ROWS:
            raise ValueError(
                f"invalid value for {SETTING_NAMES['table_rows']}: {self.table_rows!r} "
                f"(use one of: {', '.join(TABLE_ROWS)})"
            )
        if self.backend not in BACKENDS:
            raise ValueError(
                f"invalid value for {SETTING_NAMES['backend']}: {self.backend!r} "
                f"(use one of: {', '.join(BACKENDS)})"
            )
        for name, (low, high) in RANGES.items():
            high = self.max_top_k if name == "top_k" else high
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
                raise ValueError(
                    f"invalid value for {SETTING_NAMES.get(name, name)}: {value} "
                    f"(it must be {allowed})"
                )


# the numeric settings' ranges (low, high; None: no upper bound); top_k's top is max_top_k
RANGES: dict[str, tuple[int, int | None]] = {
    "max_top_k": (1, None),
    "top_k": (1, None),
    "port": (0, 65535),
    "threads": (1, 64),
    "max_question_chars": (1, None),
    "max_history": (0, None),
    "max_body_bytes": (1, None),
    "rate_limit": (0, None),
    "embed_threads": (1, 64),
    "embed_lanes": (0, 64),
    "hnsw_min_sentences": (0, None),
    "max_connections": (1, None),
    "max_conn_per_client": (0, None),
    "header_timeout": (1, None),
    "body_timeout": (1, None),
    "body_min_rate": (0, None),
    "idle_timeout": (1, None),
}
SETTING_NAMES = {name: var for var, name in ENV_VARS.items()}


def _coerce(name: str, kind: object, value: Any) -> Path | int | str:
    try:
        if kind == "Path":
            return Path(value)
        if kind == "int":
            return int(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid value for {SETTING_NAMES.get(name, name)}: {value!r}") from exc

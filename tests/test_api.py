"""The JSON API through Flask's test client: the answer contract, every error status,
the security headers, and real responses checked against the OpenAPI spec."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from jsonschema import Draft202012Validator

from qa.config import LOW_CONFIDENCE
from web.app import SECURITY_HEADERS, create_app


@pytest.fixture(scope="module")
def app(engine):
    app = create_app(engine=engine)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def check_against_spec(spec, path, method, response):
    """The response's body matches the schema the spec gives for its path, method,
    status and content type."""
    operation = spec["paths"][path][method]
    declared = operation["responses"][str(response.status_code)]
    content = declared["content"][response.mimetype]
    schema = {"components": spec["components"], **content["schema"]}
    Draft202012Validator(schema).validate(response.get_json(force=True))


def ask(client, body, **kw):
    return client.post("/api/ask", json=body, **kw)


def test_ask_returns_the_json_answer(client, spec, article_text):
    r = ask(client, {"question": "When was Trump's first day back in the White House?"})
    assert r.status_code == 200 and r.mimetype == "application/json"
    check_against_spec(spec, "/api/ask", "post", r)
    data = r.get_json()
    assert data["question"] == "When was Trump's first day back in the White House?"
    assert "January 20" in data["answer"]
    assert len(data["citations"]) == 3  # the default top_k
    first = data["citations"][0]
    assert article_text[first["start"] : first["end"]] == first["text"]
    assert first["start"] <= data["answer_start"] < data["answer_end"] <= first["end"]
    assert article_text[data["answer_start"] : data["answer_end"]] == data["answer"]


def test_ask_takes_history_and_top_k(client, spec):
    body = {
        "question": "And what did they say about it?",
        "history": [{"question": "What did Mexico's foreign ministry stress?", "answer": None}],
        "top_k": 5,
    }
    r = ask(client, body)
    assert r.status_code == 200, r.get_json()
    check_against_spec(spec, "/api/ask", "post", r)
    assert len(r.get_json()["citations"]) == 5


BAD_REQUESTS = [
    {},
    {"question": ""},
    {"question": "   \n"},
    {"question": 42},
    {"question": None},
    {"question": "x" * 1001},
    {"question": "ok", "history": "not a list"},
    {"question": "ok", "history": [{"answer": "no question"}]},
    {"question": "ok", "history": [{"question": "q", "answer": 3}]},
    {"question": "ok", "history": [{"question": "q", "extra": 1}]},
    {"question": "ok", "history": [{"question": "q", "answer": None}] * 21},
    {"question": "ok", "top_k": 0},
    {"question": "ok", "top_k": 11},
    {"question": "ok", "top_k": "3"},
    {"question": "ok", "top_k": True},
    {"question": "ok", "top_k": 2.5},
    {"question": "ok", "unknown": 1},
    ["question"],
    "question",
]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"question": "ok", "unknown": 1}, "unknown field(s): unknown"),
        (
            {"question": "ok", "history": [{"question": "q", "z": 1}]},
            "history[0] has unknown field(s): z",
        ),
        (
            {"question": "ok", "history": ["q"]},
            "history[0] must be an object with a question (and its answer, or null)",
        ),
        (
            {"question": "ok", "history": [{"question": "q", "answer": 3}]},
            "history[0].answer must be",
        ),
        # nothing to read: zero-width spaces, a byte-order mark, controls, a line separator
        ({"question": "\u200b\u200b"}, "question is empty"),
        ({"question": "\ufeff"}, "question is empty"),
        ({"question": "\u0000 \u0001\u0002"}, "question is empty"),
        ({"question": "\u200e\u2063"}, "question is empty"),  # marks and separators, no text
        # a variation selector, combining accents: marks on no letter
        ({"question": "\ufe0f"}, "question is empty"),
        # letters and symbols that show nothing: Hangul fillers, the blank braille pattern
        ({"question": "\u3164 \u115f\u1160 \uffa0\u2800"}, "question is empty"),
        ({"question": "\u0301\u0301 \u20dd"}, "question is empty"),
        ({"question": "ok", "history": [{"question": "\u200d"}]}, "history[0].question is empty"),
    ],
)
def test_a_bad_request_says_which_field_is_wrong(client, body, detail):
    r = ask(client, body)
    assert r.status_code == 400 and detail in r.get_json()["detail"]


def request_schema(spec):
    schema = spec["components"]["schemas"]["AskRequest"]
    return Draft202012Validator({"components": spec["components"], **schema})


@pytest.mark.parametrize("body", BAD_REQUESTS, ids=range(len(BAD_REQUESTS)))
def test_bad_requests_are_400_problems(client, spec, body):
    r = ask(client, body)
    assert r.status_code == 400
    check_against_spec(spec, "/api/ask", "post", r)
    problem = r.get_json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request" and problem["detail"]
    assert not request_schema(spec).is_valid(body)  # the spec refuses it too


def test_a_null_top_k_or_history_is_as_if_left_out(client, spec):
    """What the server accepts, its spec admits: null means the default."""
    question = {"question": "Who is the White House spokeswoman?"}
    body = {**question, "top_k": None, "history": None}
    assert request_schema(spec).is_valid(body)
    given, plain = ask(client, body), ask(client, question)
    assert given.status_code == plain.status_code == 200
    assert given.get_json() == plain.get_json()
    assert len(given.get_json()["citations"]) == 3  # the default top_k
    # and a whole number written as a float is that integer, as JSON Schema reads it
    assert request_schema(spec).is_valid({**question, "top_k": 2.0})
    two = ask(client, {**question, "top_k": 2.0})
    assert two.status_code == 200 and len(two.get_json()["citations"]) == 2


def test_a_question_of_exactly_the_limit_is_accepted(client):
    assert ask(client, {"question": "why " * 250}).status_code == 200


@pytest.mark.parametrize(
    "raw, says",
    [
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"question": "a",}', "not valid JSON"),
        (b"\xff\xfe", "the body is not UTF-8 (at byte offset 0)"),
        (b'{"question": "caf\xe9?"}', "the body is not UTF-8 (at byte offset 17)"),
        (b'\xef\xbb\xbf{"question": "caf\xe9?"}', "not UTF-8 (at byte offset 20)"),  # after a mark
        (b'{"question": "a?", "question": "b?"}', 'the body gives the field "question" twice'),
        (b'{"question": "a?", "history": [{"question": "b", "question": "c"}]}', "twice"),
    ],
)
def test_invalid_json_is_400(client, spec, raw, says):
    r = client.post("/api/ask", data=raw, content_type="application/json")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    check_against_spec(spec, "/api/ask", "post", r)
    assert says in r.get_json()["detail"]
    assert "codec" not in r.get_json()["detail"]  # said in our words, not Python's


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/problem+json"],
)
def test_a_body_that_is_not_json_is_415(client, spec, content_type):
    r = client.post("/api/ask", data='{"question": "x"}', content_type=content_type)
    assert r.status_code == 415
    check_against_spec(spec, "/api/ask", "post", r)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_body_in_utf16_or_utf32_without_a_charset_is_400_not_read(client, spec, encoding):
    body = json.dumps({"question": "When did Trump sign the directive?"}).encode(encoding)
    r = client.post("/api/ask", data=body, content_type="application/json")
    assert r.status_code == 400 and "the body is not UTF-8" in r.get_json()["detail"]
    check_against_spec(spec, "/api/ask", "post", r)
    bom = b"\xef\xbb\xbf" + json.dumps({"question": "When did Trump sign it?"}).encode()
    assert client.post("/api/ask", data=bom, content_type="application/json").status_code == 200


@pytest.mark.parametrize("charset", ["latin-1", "utf-16"])
def test_a_body_in_another_charset_is_415_naming_it(client, spec, charset):
    body = '{"question": "Où est-il né ?"}'.encode(charset)
    r = client.post("/api/ask", data=body, content_type=f"application/json; charset={charset}")
    assert r.status_code == 415
    check_against_spec(spec, "/api/ask", "post", r)
    assert f"UTF-8 (charset {charset} is not read)" in r.get_json()["detail"]
    for utf8 in ("utf-8", "UTF-8", "utf8", "us-ascii"):  # ASCII is UTF-8 too
        body = b'{"question": "When did Trump sign the directive?"}'
        r = client.post("/api/ask", data=body, content_type=f"application/json; charset={utf8}")
        assert r.status_code == 200


@pytest.mark.parametrize("where", ['"top_k": {}', '"history": [{}]', '"extra": -{}'])
def test_a_number_too_long_to_read_is_400(client, spec, where):
    body = '{"question": "x", ' + where.format("1" + "0" * 5000) + "}"
    r = client.post("/api/ask", data=body, content_type="application/json")
    assert r.status_code == 400
    check_against_spec(spec, "/api/ask", "post", r)
    assert r.get_json()["detail"] == "the body holds a number too long to read"


def test_a_compressed_body_is_415_saying_to_send_it_uncompressed(client, spec):
    import gzip

    body = gzip.compress(b'{"question": "When did Trump sign the directive?"}')
    headers = {"Content-Encoding": "gzip"}
    r = client.post("/api/ask", data=body, content_type="application/json", headers=headers)
    assert r.status_code == 415
    check_against_spec(spec, "/api/ask", "post", r)
    assert "uncompressed (Content-Encoding gzip is not read)" in r.get_json()["detail"]
    plain = b'{"question": "When did Trump sign the directive?"}'
    headers = {"Content-Encoding": "identity"}
    r = client.post("/api/ask", data=plain, content_type="application/json", headers=headers)
    assert r.status_code == 200


def test_a_body_over_64_kb_is_413(client, spec):
    body = json.dumps({"question": "x", "history": [], "pad": "y" * 70_000})
    r = client.post("/api/ask", data=body, content_type="application/json")
    assert r.status_code == 413
    check_against_spec(spec, "/api/ask", "post", r)


def test_unknown_path_is_404_and_wrong_method_is_405(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert r.get_json()["status"] == 404
    r = client.get("/api/ask")
    assert r.status_code == 405 and r.mimetype == "application/problem+json"
    assert "POST" in r.headers["Allow"]
    assert client.delete("/api/health").status_code == 405


def test_health(client, spec, engine):
    r = client.get("/api/health")
    assert r.status_code == 200
    check_against_spec(spec, "/api/health", "get", r)
    data = r.get_json()
    assert data["status"] == "ok" and data["index_version"] == engine.index.version
    assert data["documents"] == 1 and data["sentences"] == len(engine.index.sentences)
    assert data["reader"] == engine.reader.name
    assert data["questions"] == engine.embedder.questions_name
    assert data["table_rows"] == engine.reader.settings.table_rows == "named"  # the card's
    assert data["skipped"] == engine.index.manifest["skipped"] == []


def test_health_says_how_table_rows_are_read(client, spec, engine, monkeypatch):
    monkeypatch.setattr(engine, "config", replace(engine.config, table_rows="named"))
    r = client.get("/api/health")
    check_against_spec(spec, "/api/health", "get", r)
    assert r.get_json()["table_rows"] == "named"


def test_documents_list_and_one_document(client, spec, article_text):
    r = client.get("/api/documents")
    check_against_spec(spec, "/api/documents", "get", r)
    (listed,) = r.get_json()["documents"]
    r = client.get(f"/api/documents/{listed['id']}")
    assert r.status_code == 200
    check_against_spec(spec, "/api/documents/{doc}", "get", r)
    doc = r.get_json()
    assert doc["text"] == article_text and doc["chars"] == len(article_text)
    # the index it is read from: an answer's citations are offsets into that version
    assert doc["index_version"] == client.get("/api/health").get_json()["index_version"]
    assert len(doc["sentences"]) == listed["sentences"] > 20
    assert [s["sentence"] for s in doc["sentences"]] == list(range(len(doc["sentences"])))


@pytest.mark.parametrize(
    "path",
    [
        "missing.txt",
        "../pyproject.toml",
        "..%2F..%2Fpyproject.toml",
        "%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "sub/dir/file.txt",
    ],
)
def test_only_indexed_documents_are_served(client, spec, path):
    r = client.get(f"/api/documents/{path}")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    assert "root:" not in r.get_data(as_text=True)


def test_document_ids_may_contain_slashes(engine, embedder, tmp_path, article_text):
    from qa.config import Config
    from qa.engine import Engine

    (tmp_path / "seeds" / "news" / "2025").mkdir(parents=True)
    (tmp_path / "seeds" / "news" / "2025" / "article.txt").write_text(article_text)
    config = Config.load(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    app = create_app(engine=Engine(config, notify=lambda m: None))
    r = app.test_client().get("/api/documents/news/2025/article.txt")
    assert r.status_code == 200 and r.get_json()["id"] == "news/2025/article.txt"
    assert app.test_client().get("/api/examples").get_json() == {"examples": []}


def test_examples_come_from_the_seeds_folder(client, spec, engine):
    r = client.get("/api/examples")
    check_against_spec(spec, "/api/examples", "get", r)
    saved = json.loads((engine.config.seeds_dir / "examples.json").read_text())
    assert r.get_json()["examples"] == saved and len(saved) >= 3


@pytest.mark.parametrize(
    "path", ["/", "/api/health", "/api/documents", "/openapi.json", "/static/chat.js", "/nope"]
)
def test_every_response_carries_the_security_headers(client, path):
    r = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp


def test_security_headers_on_errors_and_posts_too(client):
    for r in (ask(client, {"question": ""}), client.post("/api/ask", data="x")):
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_a_failure_inside_the_engine_is_a_500_problem_without_traceback(engine, spec):
    class Broken:
        config = engine.config
        index = engine.index

        def ask(self, *args, **kwargs):
            raise RuntimeError("secret internal detail")

    client = create_app(engine=Broken()).test_client()
    r = ask(client, {"question": "anything"})
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    check_against_spec(spec, "/api/ask", "post", r)  # the spec declares it
    text = r.get_data(as_text=True)
    assert "Traceback" not in text and "secret internal detail" not in text


def test_the_page_has_no_inline_script(client):
    html = client.get("/").get_data(as_text=True)
    assert '<script src="/static/chat.js"' in html
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html


def test_the_page_flags_low_confidence_where_qa_ask_does(client):
    # one threshold for both: the page reads it from the server, `qa ask` from qa.config
    html = client.get("/").get_data(as_text=True)
    assert f'data-low-confidence="{LOW_CONFIDENCE}"' in html


def test_openapi_is_3_1_and_describes_every_route(app, spec):
    assert spec["openapi"].startswith("3.1")
    for name, schema in spec["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    routes = {
        rule.rule.replace("<path:doc>", "{doc}")
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and rule.rule != "/"
    }
    assert routes == set(spec["paths"])


def test_the_rate_limit_is_a_429_problem_with_retry_after(engine, spec):
    from dataclasses import replace

    limited = replace(engine.config, rate_limit=2)

    class Limited:
        config = limited
        index = engine.index
        reader = engine.reader
        table_rows = engine.table_rows
        ask = engine.ask

    client = create_app(engine=Limited()).test_client()
    assert [ask(client, {"question": "Who?"}).status_code for _ in range(2)] == [200, 200]
    r = ask(client, {"question": "Who?"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    check_against_spec(spec, "/api/ask", "post", r)
    assert client.get("/api/health").status_code == 200  # only questions are limited


def test_rate_limiter_window():
    from web.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 60]
    assert limiter.retry_after("b") == 0
    now[0] = 60.5
    assert limiter.retry_after("a") == 0
    assert RateLimiter(0).retry_after("a") == 0


def test_health_lists_skipped_files_and_a_name_is_found_however_its_accents_are_written(
    embedder, tmp_path, spec
):
    import unicodedata
    from urllib.parse import quote

    from qa.config import Config
    from qa.engine import Engine

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    decomposed = unicodedata.normalize("NFD", "piscine-été.txt")  # as macOS names it
    (seeds / decomposed).write_text("The pool opens at six.", encoding="utf-8")
    (seeds / "latin1.txt").write_bytes("Caf\xe9 upstairs.".encode("latin-1"))
    config = Config.load(seeds_dir=seeds, index_dir=tmp_path / "index")
    client = create_app(
        engine=Engine(config, notify=lambda m: None, embedder=embedder)
    ).test_client()
    r = client.get("/api/health")
    check_against_spec(spec, "/api/health", "get", r)
    assert r.get_json()["skipped"] == [
        "latin1.txt: not valid UTF-8 (at byte offset 3); save it as UTF-8"
    ]
    for name in (decomposed, unicodedata.normalize("NFC", decomposed)):
        got = client.get("/api/documents/" + quote(name))
        assert got.status_code == 200, name
        assert got.get_json()["id"] == decomposed
        body = got.get_json()
        first = body["sentences"][0]
        assert body["text"][first["start"] : first["end"]] == "The pool opens at six."
    assert client.get("/api/documents/" + quote("piscine-ete.txt")).status_code == 404

"""Hostile input: generated requests to /api/ask (random JSON shapes and types, huge and
control-character strings, lone surrogates, deep or huge history, out-of-range numbers,
bodies that are not JSON, wrong content types) never give a 5xx, every error is a
problem+json, and the service is healthy afterwards. Also path traversal on
/api/documents and Flask's debug mode, which no configuration turns on."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.app import create_app

SENT = {"requests": 0, "answered": 0}
PROBLEM_KEYS = {"type", "title", "status", "detail"}
FAST = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def client(engine):
    app = create_app(engine=engine)
    return app.test_client()


def check(response) -> None:
    """The contract for any response to /api/ask."""
    SENT["requests"] += 1
    assert response.status_code < 500, response.get_data()[:300]
    if response.status_code == 200:
        SENT["answered"] += 1
        answer = response.get_json()
        assert set(answer) >= {"answer", "confidence", "citations", "index_version"}
        return
    assert response.mimetype == "application/problem+json", response.status_code
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == response.status_code
    assert isinstance(body["detail"], str) and body["detail"]


# --- strategies ---------------------------------------------------------------------------

# every kind of character: controls, NUL, surrogate halves, astral planes
any_char = st.characters(codec=None, exclude_categories=())
surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
control = st.sampled_from(["\x00", "\x07", "\x1b", "\u202e", "\ufeff", "\r", "\n", "\t", "\x7f"])
huge = st.builds(lambda c, n: c * n, any_char, st.integers(900, 80_000))
strings = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.one_of(any_char, surrogate, control), min_size=1, max_size=60),
    huge,
    st.sampled_from(["", " ", "\n\t ", "?", "null", "<script>alert(1)</script>", "../../"]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 10, 11, 2**31, 2**63, 10**400]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=25,
)
words = st.sampled_from(["Who", "What", "When", "Where", "the", "said", "attack", "did", "?"])
plain_question = st.lists(words, min_size=1, max_size=12).map(" ".join)
turn = st.one_of(
    st.fixed_dictionaries({"question": plain_question, "answer": st.one_of(st.none(), strings)}),
    st.fixed_dictionaries({"question": strings}),
    json_values,
)
ask_bodies = st.fixed_dictionaries(
    {},
    optional={
        "question": st.one_of(plain_question, strings, json_values),
        "history": st.one_of(
            st.lists(turn, max_size=4),
            st.lists(turn, min_size=19, max_size=40),
            json_values,
        ),
        "top_k": st.one_of(st.integers(-3, 14), numbers, json_values),
        "extra": json_values,
    },
)
valid_bodies = st.fixed_dictionaries(
    {"question": st.one_of(plain_question, st.text(any_char, min_size=1, max_size=200))},
    optional={
        "history": st.lists(
            st.fixed_dictionaries(
                {"question": plain_question, "answer": st.one_of(st.none(), plain_question)}
            ),
            max_size=20,
        ),
        "top_k": st.integers(1, 10),
    },
)


def encode(body) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape "\ud800": valid JSON text
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


# --- generated requests -------------------------------------------------------------------


@settings(FAST, max_examples=400)
@given(body=json_values)
def test_any_json_value_as_the_body(client, body):
    check(client.post("/api/ask", data=encode(body), content_type="application/json"))


@settings(FAST, max_examples=400)
@given(body=ask_bodies)
def test_ask_shaped_bodies_with_hostile_fields(client, body):
    check(client.post("/api/ask", data=encode(body), content_type="application/json"))


@settings(FAST, max_examples=250)
@given(body=valid_bodies)
def test_valid_questions_of_every_character_are_answered(client, body):
    response = client.post("/api/ask", data=encode(body), content_type="application/json")
    check(response)
    question = body["question"]
    # something to read: not only spaces, controls, format characters such as U+200B, marks
    # on no letter, or the Hangul fillers and blank braille that show nothing
    shows_nothing = ("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me")
    visible = any(
        not c.isspace()
        and unicodedata.category(c) not in shows_nothing
        and c not in "\u115f\u1160\u3164\uffa0\u2800"
        for c in question
    )
    if visible and all(not 0xD800 <= ord(c) <= 0xDFFF for c in question):
        assert response.status_code == 200, response.get_json()
    elif question:
        assert response.status_code == 400


@settings(FAST, max_examples=200)
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(any_char, max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.integers(1, 30_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 30_000).map(lambda n: b'{"question": ' * n),
        st.sampled_from(
            [
                b'{"question": "\\ud800"}',
                b'{"question": "\\udfff?", "history": []}',
                b'{"question": "ok", "history": [{"question": "\\ud83d", "answer": "x"}]}',
                b'{"question": "x", "top_k": 1e999}',
                b'{"question": "x", "top_k": NaN}',
                b'{"question": "x", "top_k": -Infinity}',
                b'{"question": "x"',
                b"\xff\xfe{\x00}",
                b'{"question": "x", "question": 5}',
            ]
        ),
    ),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "application/problem+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
)
def test_raw_bodies_and_content_types(client, raw, content_type):
    check(client.post("/api/ask", data=raw, content_type=content_type))


@pytest.mark.parametrize(
    "raw, detail",
    [
        (b'{"question": "\\ud800"}', "unpaired surrogate"),
        (b'{"question": "ok", "history": [{"question": "a\\udfff"}]}', "unpaired surrogate"),
        (b'{"question": "ok", "history": [{"question": "a", "answer": "\\ud83d"}]}', "surrogate"),
        (b"[" * 50_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"question": "x", "top_k": 1e999}', "top_k"),
    ],
)
def test_known_hostile_bodies_are_400(client, raw, detail):
    r = client.post("/api/ask", data=raw, content_type="application/json")
    check(r)
    assert r.status_code == 400 and detail in r.get_json()["detail"]


def test_over_a_thousand_requests_were_sent_and_the_service_is_healthy(client):
    assert SENT["requests"] >= 1000 and SENT["answered"] >= 200, SENT
    r = client.get("/api/health")
    assert r.status_code == 200 and r.get_json()["status"] == "ok"
    r = client.post("/api/ask", json={"question": "What happened?"})
    assert r.status_code == 200


# --- documents, rate limit, debug mode -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../seeds/examples.json",
        "..%2fseeds%2fexamples.json",
        "%2e%2e%2f%2e%2e%2fpyproject.toml",
        "%252e%252e%252fpyproject.toml",
        "..%255c..%255cpyproject.toml",
        "..\\..\\pyproject.toml",
        "%2fetc%2fpasswd",
        "/etc/passwd",
        "//etc/passwd",
        "C:\\Windows\\win.ini",
        "file:///etc/passwd",
        "examples.json",
        "seeds/examples.json",
        "%00",
        "x%00.txt",
        "./",
    ],
)
def test_path_traversal_on_documents_is_404(client, path):
    r = client.get(f"/api/documents/{path}")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    text = r.get_data(as_text=True)
    assert "root:" not in text and "[project]" not in text


def test_an_indexed_document_is_still_served(client, engine):
    doc = next(iter(engine.index.documents))
    assert client.get(f"/api/documents/{doc}").status_code == 200


def test_flask_debug_can_not_be_turned_on(engine, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("FLASK_ENV", "development")
    app = create_app(engine=engine)
    assert app.debug is False and app.config["DEBUG"] is False

    class Broken:
        config = engine.config
        index = engine.index

        def ask(self, *args, **kwargs):
            raise RuntimeError("secret internal detail")

    r = create_app(engine=Broken()).test_client().post("/api/ask", json={"question": "x"})
    text = r.get_data(as_text=True)
    assert r.status_code == 500 and "Werkzeug Debugger" not in text and "secret" not in text


def test_qa_serve_never_runs_in_debug_mode(engine, monkeypatch):
    from click.testing import CliRunner

    from qa import server
    from qa.cli import cli

    apps = []

    def create_server(app, config):
        apps.append(app)
        raise OSError("not listening in this test")

    monkeypatch.setattr(server, "create_server", create_server)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    config = engine.config
    args = ["serve", "--seeds", str(config.seeds_dir), "--index", str(config.index_dir)]
    result = CliRunner().invoke(cli, args)
    assert "not listening" in result.output, result.output
    (app,) = apps
    assert app.debug is False
    apps[0].extensions["qa"]["engine"].close()

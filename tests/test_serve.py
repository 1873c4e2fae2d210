"""`qa serve`: the real waitress server in a subprocess; it builds a missing index, prints
its URL, serves the page and the API, and stops cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import http.client
import json
import signal
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from live_server import start_server

from qa.cli import cli


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve"))
    yield server
    server.stop()


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_serve_builds_the_index_and_serves_page_and_api(server):
    assert "building the index" in server.text()
    status, headers, body = get(server.url + "/api/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["Server"] == "qa"  # waitress, not the development server
    status, headers, body = get(server.url + "/")
    assert status == 200 and b'id="question"' in body
    assert (
        headers["X-Frame-Options"] == "DENY"
        and "default-src 'self'" in headers["Content-Security-Policy"]
    )


def test_a_chunked_body_over_the_limit_is_413(server):
    # no Content-Length: the limit holds while the body streams in
    host = urlsplit(server.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    pad = b"y" * 80_000
    chunks = [b'{"question": "x", "pad": "', pad, b'"}']
    conn.request(
        "POST",
        "/api/ask",
        body=iter(chunks),
        encode_chunked=True,
        headers={"Content-Type": "application/json"},
    )
    r = conn.getresponse()
    assert r.status == 413 and r.getheader("Content-Type") == "application/problem+json"
    assert b"Traceback" not in r.read()


def test_404_from_the_real_server_is_a_problem(server):
    status, headers, body = get(server.url + "/api/documents/../../etc/passwd")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly(tmp_path, sig):
    other = start_server(tmp_path)
    assert get(other.url + "/api/health")[0] == 200
    assert other.stop(sig) == 0
    assert "stopped" in other.text() and "Traceback" not in other.text()


def test_serve_help_lists_its_options():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        *("--host", "--port", "--seeds", "--index", "--threads", "--max-connections"),
        *("--max-conn-per-client", "--header-timeout", "--body-timeout", "--body-min-rate"),
        *("--idle-timeout", "--forwarded-allow-ips"),
    ):
        assert option in result.output

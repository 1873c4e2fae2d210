"""qa/clients.py: the per-address count, its log of a line a minute, the trusted proxies and
the client they name, the problem responses and the descriptor limit."""

from __future__ import annotations

import json
import logging

import pytest

from qa.clients import (
    Clients,
    TrustedProxies,
    client_key,
    fit_descriptor_limit,
    problem_response,
)


def test_an_address_holds_at_most_its_limit_and_gives_back():
    clients = Clients(2, logging.getLogger("test"))
    assert [clients.take("a") for _ in range(3)] == [True, True, False]
    assert clients.take("b")
    clients.give_back("a")
    assert clients.take("a") and clients.held("a") == 2
    for _ in range(5):
        clients.give_back("b")  # more than it took: never negative
    assert clients.held("b") == 0
    assert all(Clients(0, logging.getLogger("test")).take("a") for _ in range(100))


def test_an_ipv6_client_is_its_64_network():
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::7")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"
    clients = Clients(1, logging.getLogger("test"))
    assert clients.take("2001:db8::1") and not clients.take("2001:db8::2")


def test_refusals_are_logged_once_a_minute(caplog):
    now = [0.0]
    clients = Clients(1, logging.getLogger("test.clients"), clock=lambda: now[0])
    clients.take("10.0.0.1")
    with caplog.at_level(logging.INFO, logger="test.clients"):
        for _ in range(100):
            clients.take("10.0.0.1")
        clients.take("10.0.0.2")  # holds none: let in
        for _ in range(3):
            clients.take("10.0.0.2")
        now[0] = 59.0
        clients.report()
        assert len(caplog.records) == 1
        assert "refused a connection from 10.0.0.1" in caplog.records[0].getMessage()
        now[0] = 61.0
        clients.report()
        clients.report()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[1].startswith("refused 102 connection(s) in the last minute")
    assert "the most from 10.0.0.1 (99)" in lines[1]


@pytest.mark.parametrize(
    "spec, peer, forwarded, client",
    [
        ("", "127.0.0.1", "203.0.113.9", "127.0.0.1"),  # no proxy trusted: ignored
        ("127.0.0.1", "127.0.0.2", "203.0.113.9", "127.0.0.2"),  # not from the proxy
        ("127.0.0.1", "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "127.0.0.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # forged first
        ("127.0.0.1", "127.0.0.1", None, "127.0.0.1"),  # the proxy's own request
        ("127.0.0.1", "127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1", "junk, 203.0.113.9", "203.0.113.9"),
        ("10.0.0.0/8, 127.0.0.1", "127.0.0.1", "203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("*", "192.0.2.7", "203.0.113.9", "203.0.113.9"),
        ("::1", "::1", "2001:db8::5", "2001:db8::5"),
        ("::1", "::1", "[2001:db8::5]:4711", "2001:db8::5"),
    ],
)
def test_the_client_is_the_last_address_no_trusted_proxy_added(spec, peer, forwarded, client):
    assert TrustedProxies(spec).client(peer, forwarded) == client


def test_a_bad_proxy_list_is_a_value_error():
    with pytest.raises(ValueError, match="QA_FORWARDED_ALLOW_IPS"):
        TrustedProxies("127.0.0.1, nonsense")
    assert not TrustedProxies(" , ")
    assert "127.0.0.1" not in TrustedProxies("")


def test_problem_response_is_problem_json_and_closes():
    status, headers, body, raw = problem_response(429, "Too Many Requests", "slow down")
    assert status == "429 Too Many Requests"
    assert dict(headers)["Content-Type"] == "application/problem+json"
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "slow down",
    }
    assert raw.startswith(b"HTTP/1.1 429 Too Many Requests\r\n") and raw.endswith(body)
    assert b"Connection: close\r\n" in raw  # on a socket; WSGI may not say so (hop-by-hop)
    assert "Connection" not in dict(headers)


def test_the_connection_limit_fits_the_descriptor_limit(caplog):
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert fit_descriptor_limit(100, logging.getLogger("test")) == 100
    if hard == resource.RLIM_INFINITY:
        return
    with caplog.at_level(logging.WARNING, logger="test"):
        fitted = fit_descriptor_limit(hard * 2, logging.getLogger("test"))
    assert fitted < hard and "ulimit -n" in caplog.text
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

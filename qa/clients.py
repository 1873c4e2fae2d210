"""Who is on the other end of a connection, and how much of the server they hold: the open
connections per client address, the trusted reverse proxies whose X-Forwarded-For names
the client, and a log of refusals that writes a line a minute, not one a refusal. Used by
the server layer (``server.py``)."""

from __future__ import annotations

import ipaddress
import json
import logging
import select
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus

# descriptors kept for everything but client connections: the index and model files,
# the listening sockets, the wake-up pipe, logs
RESERVED_DESCRIPTORS = 64
# select(), the fallback where poll() is missing (Windows), takes at most 512 sockets there
SELECT_LIMIT = 500


class Clients:
    """Open connections per client address, at most ``limit`` each (0: no limit)."""

    def __init__(
        self, limit: int, log: logging.Logger, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.log = log
        self.clock = clock
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter()
        self._texts: dict[str, tuple[int, str, str]] = {}
        self._sources: Counter[str] = Counter()
        self._next_report: dict[str, float] = {}
        self._reported: set[str] = set()

    def take(self, address: str) -> bool:
        """Count one more connection of ``address``; False (and nothing counted) when it
        holds its limit already."""
        if self.limit <= 0:
            return True
        address = client_key(address)
        with self._lock:
            held = self._open.get(address, 0)
            if held < self.limit:
                self._open[address] = held + 1
                return True
            self._sources[address] += 1
        self.note(
            "refused",
            f"refused a connection from {address}: it holds {self.limit} open already "
            "(QA_MAX_CONN_PER_CLIENT)",
            f"refused {{n}} connection(s) in the last minute from addresses holding "
            f"{self.limit} open already (QA_MAX_CONN_PER_CLIENT); the most from {{source}}",
            logging.WARNING,
        )
        return False

    def give_back(self, address: str) -> None:
        if self.limit <= 0:
            return
        address = client_key(address)
        with self._lock:
            held = self._open.get(address, 0) - 1
            if held > 0:
                self._open[address] = held
            else:
                self._open.pop(address, None)

    def held(self, address: str) -> int:
        with self._lock:
            return self._open.get(client_key(address), 0)

    def note(self, kind: str, first: str, later: str, level: int = logging.INFO) -> None:
        """Count an event of ``kind``. The first is logged at once as ``first``; the next
        at most once a minute as ``later``, with ``{n}`` the count since the last line and
        ``{source}`` the address most of them came from."""
        with self._lock:
            self._events[kind] += 1
            self._texts[kind] = (level, first, later)
        self.report()

    def report(self) -> None:
        """Log the events whose minute is over (called often: by the server's clean-up)."""
        now = self.clock()
        lines = []
        with self._lock:
            for kind in list(self._events):
                if now < self._next_report.get(kind, 0.0):
                    continue
                n = self._events.pop(kind)
                level, first, later = self._texts[kind]
                self._next_report[kind] = now + 60
                if kind in self._reported:
                    source = "?"
                    if kind == "refused" and self._sources:
                        address, count = self._sources.most_common(1)[0]
                        source = f"{address} ({count})"
                    lines.append((level, later.format(n=n, source=source)))
                else:
                    self._reported.add(kind)
                    lines.append((level, first + " (more of these are logged once a minute)"))
                if kind == "refused":
                    self._sources.clear()
        for level, line in lines:
            self.log.log(level, line)


def client_key(address: str) -> str:
    """What counts as one client: its address, but for IPv6 its /64 network, since one
    subscriber gets a whole /64 and so as many addresses as it likes."""
    if ":" not in address:
        return address
    ip = _ip(address)
    if not isinstance(ip, ipaddress.IPv6Address):
        return address
    if ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class TrustedProxies:
    """The reverse proxies named by ``forwarded_allow_ips``: addresses or networks, comma
    separated, or ``*`` for any peer (only when nothing but the proxy can reach the
    server)."""

    def __init__(self, spec: str):
        items = [item.strip() for item in (spec or "").split(",") if item.strip()]
        self.anyone = "*" in items
        try:
            self.networks = [ipaddress.ip_network(i, strict=False) for i in items if i != "*"]
        except ValueError as exc:
            raise ValueError(
                f"invalid value for QA_FORWARDED_ALLOW_IPS (--forwarded-allow-ips): {exc}"
            ) from None

    def __bool__(self) -> bool:
        return self.anyone or bool(self.networks)

    def __contains__(self, address: str) -> bool:
        if not self:
            return False
        ip = _ip(address)
        if ip is None:
            return False
        return self.anyone or any(ip in net for net in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address for a request from ``peer``: the last address in
        X-Forwarded-For that is not itself a trusted proxy. Proxies append the address they
        see, so the addresses before it are the client's word, and forgeable. A malformed
        entry stops the walk; then the last proxy seen stands for the client."""
        if peer not in self:
            return peer
        client = peer
        for hop in reversed((forwarded_for or "").split(",")):
            ip = _ip(hop.strip().strip('"'))
            if ip is None:
                break
            client = str(ip)
            if client not in self:
                break
        return client


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text.startswith("[") and "]" in text:  # [::1] or [::1]:port
        text = text[1 : text.index("]")]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# on every response, the app's and the server's own (web/app.py sets them on the app's)
SECURITY_HEADERS = {
    # No 'unsafe-inline' anywhere: every script and style comes from /static.
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def problem_response(
    status: int, title: str, detail: str, extra: tuple[tuple[str, str], ...] = ()
) -> tuple[str, list[tuple[str, str]], bytes, bytes]:
    """A problem+json response: (status line, headers, body) for WSGI, and the whole
    response, dated now and with Connection: close, as bytes to write to a socket;
    ``extra`` headers too."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    line = f"{status} {HTTPStatus(status).phrase}"
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(body))),
        *SECURITY_HEADERS.items(),
        *extra,
    ]
    sent = [("Date", formatdate(usegmt=True)), *headers, ("Connection", "close")]
    raw = "".join(f"{k}: {v}\r\n" for k, v in sent)
    return line, headers, body, f"HTTP/1.1 {line}\r\n{raw}\r\n".encode() + body


def fit_descriptor_limit(wanted: int, log: logging.Logger) -> int:
    """The number of connections the server may hold: ``wanted``, when this process may
    open that many descriptors (the soft limit is raised toward the hard one if need be),
    else as many as it may, with a warning."""
    limit = wanted
    if not hasattr(select, "poll"):
        limit = min(limit, SELECT_LIMIT)
    try:
        import resource
    except ImportError:  # Windows: sockets are no file descriptors there
        return _warn_if_less(limit, wanted, log)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = limit + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
        limit = min(limit, max(soft - RESERVED_DESCRIPTORS, 1))
    return _warn_if_less(limit, wanted, log)


def _warn_if_less(limit: int, wanted: int, log: logging.Logger) -> int:
    if limit < wanted:
        log.warning(
            "serving at most %d connections, not %d (QA_MAX_CONNECTIONS): the system allows "
            "no more open files (ulimit -n)",
            limit,
            wanted,
        )
    return limit

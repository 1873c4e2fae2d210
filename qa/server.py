"""The production server behind `qa serve`: waitress, with a thin layer that keeps slow and
idle clients from locking everyone else out (the slowloris attack).

Waitress reads requests in one event loop and gives only complete requests to its worker
threads, so a slow client costs a socket and a few kilobytes, never a thread. What it lacks
is added here, in a subclass of its server and of its connection ("channel"):

- a cap on the connections one client address holds (``max_conn_per_client``): further
  ones get a 429 and are closed at once; refusals are logged once a minute;
- deadlines: the headers within ``header_timeout`` of connecting (of the request's first
  byte, on a kept-alive connection), then the body at ``body_min_rate`` bytes a second after
  a head start of ``body_timeout``, and ``idle_timeout`` for a connection on which nothing
  moves; they are checked every ``cleanup_interval``;
- behind a reverse proxy named by ``forwarded_allow_ips``, the client's address from its
  X-Forwarded-For (see ``clients.py``), for the cap and for the app's REMOTE_ADDR, which
  the rate limit reads. From anyone else the proxy headers are dropped.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from .clients import (
    Clients,
    TrustedProxies,
    client_key,
    fit_descriptor_limit,
    problem_response,
)
from .config import Config

log = logging.getLogger(__name__)

PROXY_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_BY",
    "HTTP_FORWARDED",
)
# connections taken from the listening socket at each wake-up (waitress takes one)
ACCEPT_BATCH = 64


def too_many() -> tuple[str, list[tuple[str, str]], bytes, bytes]:
    return problem_response(
        429,
        "Too Many Requests",
        "too many open connections from your address; close some first",
        (("Retry-After", "1"),),  # a connection is given back as soon as it closes
    )


# what is logged (the first, then once a minute) of connections closed for being too slow
SLOW = {
    "headers": "request headers that took over {c.header_timeout} s (QA_HEADER_TIMEOUT)",
    "body": "a request body slower than {c.body_min_rate} bytes a second after "
    "{c.body_timeout} s (QA_BODY_MIN_RATE, QA_BODY_TIMEOUT)",
}


def timed_out() -> bytes:
    return problem_response(
        408, "Request Timeout", "the request did not arrive in time; send it again, faster"
    )[3]


def check_settings(config: Config) -> None:
    """ValueError for a setting the server cannot work with (the numbers' ranges are
    ``Config.check``'s), before anything is loaded."""
    TrustedProxies(config.forwarded_allow_ips)
    try:
        Adjustments(host=config.host, port=config.port)
    except ValueError as exc:  # waitress: "Invalid host/port specified."
        raise ValueError(
            f"invalid value for QA_HOST (--host): {config.host!r} is not an address to listen "
            f"on, with port {config.port} ({exc})"
        ) from exc


def create_server(
    app: Callable[..., Iterable[bytes]], config: Config
) -> GuardedServer | MultiSocketServer:
    """A waitress server for ``app`` on ``config.host``/``config.port`` with the guards of
    this module. ``run()`` serves until KeyboardInterrupt; ``close()`` stops it."""
    check_settings(config)
    proxies = TrustedProxies(config.forwarded_allow_ips)
    clients = Clients(config.max_conn_per_client, log)
    adj = Adjustments(
        host=config.host,
        port=config.port,
        threads=config.threads,
        ident="qa",
        connection_limit=fit_descriptor_limit(config.max_connections, log),
        # poll(), not select(): select() fails beyond 1024 descriptors
        asyncore_use_poll=True,
        # a client that resets its connection is no error of ours: no traceback in the log
        log_socket_errors=False,
        # the proxy headers are read (or dropped) by guard_app below
        clear_untrusted_proxy_headers=False,
    )
    # waitress only takes whole seconds; a wake-up every half interval means the deadlines
    # are checked at least once every cleanup_interval
    adj.cleanup_interval = config.cleanup_interval / 2
    adj.asyncore_loop_timeout = config.cleanup_interval / 2
    app = guard_app(app, proxies, clients)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.queue_logger = QueueNote(clients)
    dispatcher.set_thread_count(adj.threads)
    sockets: dict[int, Any] = {}
    servers = [
        GuardedServer(
            app, sockets, dispatcher=dispatcher, adj=adj, sockinfo=info, config=config,
            proxies=proxies, clients=clients,
        )
        for info in adj.listen
    ]  # fmt: skip
    if len(servers) == 1:
        return servers[0]
    listening = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(sockets, adj, listening, dispatcher, servers[-1].log_info)


def guard_app(
    app: Callable[..., Iterable[bytes]], proxies: TrustedProxies, clients: Clients
) -> Callable[..., Iterable[bytes]]:
    """The WSGI app with REMOTE_ADDR set to the client's address: from X-Forwarded-For
    when the peer is a trusted proxy (a request through it then holds one of its client's
    connections while it is served), else the peer's, with the proxy headers dropped."""
    from werkzeug.wsgi import ClosingIterator

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "")
        if peer not in proxies:
            for name in PROXY_HEADERS:
                environ.pop(name, None)
            return app(environ, start_response)
        client = proxies.client(peer, environ.get("HTTP_X_FORWARDED_FOR"))
        environ["REMOTE_ADDR"] = client
        if not clients.take(client):
            status, headers, body, _ = too_many()
            start_response(status, headers)
            return [body]
        try:
            result = app(environ, start_response)
        except BaseException:
            clients.give_back(client)
            raise
        return ClosingIterator(result, lambda: clients.give_back(client))

    return guarded


class TimedRequest(HTTPRequestParser):
    """Waitress's request parser, with the times its deadlines count from."""

    began = 0.0  # its first byte, or its connection's opening for the first request
    body_began: float | None = None  # the end of its headers


class GuardedChannel(HTTPChannel):
    """A connection with deadlines; it gives its client's slot back when it closes."""

    parser_class = TimedRequest
    slot: str | None = None  # the client address whose connection this is
    fresh = True  # nothing received yet

    def received(self, data: bytes) -> bool:
        now = time.time()
        current = self.request
        done: bool = super().received(data)
        request = self.request
        if request is not None:
            if request is not current:
                request.began = self.creation_time if self.fresh else now
            if request.headers_finished and request.body_began is None:
                request.body_began = now
                limit = self.server.config.max_body_bytes
                # refused now, not after waiting for a body it would refuse anyway; not
                # while an earlier request of this connection is being answered (its
                # answer goes first: the app then refuses this one in turn)
                if request.content_length > limit and not (self.will_close or self.requests):
                    self.refuse_body(limit)
        self.fresh = False
        return done

    def refuse_body(self, limit: int) -> None:
        try:  # best effort: the client may not be reading
            self.socket.send(
                problem_response(
                    413, HTTPStatus(413).phrase, f"the request body is over {limit} bytes"
                )[3]
            )
        except OSError:
            pass
        self.will_close = True

    def overdue(self, now: float, config: Config) -> str | None:
        """Which deadline has passed ("headers", "body", "idle", "silent"), or None."""
        if self.requests or self.will_close:
            return None  # the app has a request of it, or it is closing anyway
        request = self.request
        if self.total_outbufs_len or self.close_when_flushed or request is None:
            if self.fresh and not self.total_outbufs_len:
                late = now > self.creation_time + config.header_timeout
                return "silent" if late else None
            return "idle" if now > self.last_activity + config.idle_timeout else None
        if not request.headers_finished:
            return "headers" if now > request.began + config.header_timeout else None
        allowed = config.body_timeout
        if config.body_min_rate > 0:  # 0: the body_timeout alone
            allowed += request.body_bytes_received / config.body_min_rate
        return "body" if now > request.body_began + allowed else None

    def time_out(self, phase: str) -> None:
        if phase in ("headers", "body"):
            try:  # best effort: the client may not be reading
                self.socket.send(timed_out())
            except OSError:
                pass
        self.will_close = True

    def del_channel(self, map: dict[int, Any] | None = None) -> None:
        super().del_channel(map)
        self.server.give_back(self)


class GuardedServer(TcpWSGIServer):
    """Waitress's TCP server with the per-address cap at accept and the deadlines."""

    channel_class = GuardedChannel
    resume_accepting = 0.0  # after running out of descriptors: not before this time

    def __init__(
        self, *args: Any, config: Config, proxies: TrustedProxies, clients: Clients, **kw: Any
    ) -> None:
        self.config, self.proxies, self.clients = config, proxies, clients
        # each client's connections, as ``Clients`` counts them (an IPv6 /64 is one)
        self.holding: dict[str, set[GuardedChannel]] = {}
        super().__init__(*args, **kw)

    def give_back(self, channel: GuardedChannel) -> None:
        """``channel``'s slot, if it holds one: its address may open another."""
        slot, channel.slot = channel.slot, None
        if slot is not None:
            held = self.holding.get(client_key(slot), set())
            held.discard(channel)
            if not held:
                self.holding.pop(client_key(slot), None)
            self.clients.give_back(slot)

    def readable(self) -> bool:
        ready: bool = super().readable()  # also runs maintenance() every cleanup interval
        return ready and time.time() >= self.resume_accepting

    def handle_accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if len(self._map) >= self.adj.connection_limit:
                return
            try:
                pair = self.accept()
            except OSError as exc:  # out of descriptors: wait for some to close
                why = exc.strerror or str(exc)
                later = f"could not accept connections {{n}} time(s) in the last minute: {why}"
                first = f"could not accept a connection: {why}"
                self.clients.note("accept", first, later, logging.WARNING)
                self.resume_accepting = time.time() + 0.1  # not a busy loop meanwhile
                return
            if pair is None:
                return
            conn, addr = pair
            host = addr[0] if isinstance(addr, tuple) else ""
            slot = None if host in self.proxies else host
            if slot is not None and not self.clients.take(slot):
                if not (self.release_closed(slot) and self.clients.take(slot)):
                    refuse(conn)
                    continue
            try:
                self.set_socket_options(conn)
                channel = self.channel_class(self, conn, self.fix_addr(addr), self.adj, self._map)
            except OSError:  # the client went away before we got to it
                conn.close()
                if slot is not None:
                    self.clients.give_back(slot)
                continue
            channel.slot = slot
            if slot is not None:
                self.holding.setdefault(client_key(slot), set()).add(channel)

    def release_closed(self, slot: str) -> int:
        """Give back the slots of the address ``slot``'s connections whose client has
        already closed its end: the loop closes them at its next turn (or once their answer
        is written), but the client's next connection may be accepted first and would be
        counted with its last. Nothing is closed here, so no answer is lost; how many."""
        released = 0
        for channel in list(self.holding.get(client_key(slot), ())):
            try:
                if channel.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                    continue  # a next request waits: open
            except BlockingIOError:
                continue  # nothing to read: open
            except OSError:
                pass  # reset: closed
            self.give_back(channel)
            released += 1
        return released

    def maintenance(self, now: float) -> None:
        for channel in list(self.active_channels.values()):
            phase = channel.overdue(now, self.config)
            if phase:
                if phase in SLOW:
                    why = SLOW[phase].format(c=self.config)
                    first = f"closed a connection from {channel.addr[0]}: {why}"
                    later = f"closed {{n}} connection(s) in the last minute: {why}"
                    self.clients.note(phase, first, later)
                channel.time_out(phase)
        self.clients.report()


class QueueNote:
    """The dispatcher's ``queue_logger``: waitress says "Task queue depth is N" whenever a
    request waits for a thread (under more clients at once than threads, as the
    benchmark's 16 make, every few requests); it is noted as the server's other events are
    (``Clients.note``: the first, then once a minute with a count), not a line each."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def warning(self, message: str, *args: Any) -> None:
        self.clients.note(
            "queue",
            "a request waited for a free thread: more clients at once than QA_THREADS",
            "requests waited for a free thread {n} time(s) in the last minute (QA_THREADS)",
            logging.WARNING,
        )


def refuse(conn: socket.socket) -> None:
    """Answer 429 and close, without waiting for the client."""
    try:
        conn.setblocking(False)
        try:  # read what already came, so that closing does not reset the connection
            conn.recv(65536)
        except OSError:
            pass
        conn.send(too_many()[3])
    except OSError:
        pass
    finally:
        conn.close()

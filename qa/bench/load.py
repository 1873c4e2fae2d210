"""Load clients: one keep-alive client asking one question after another, and many
clients, each in its own process, asking back to back."""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .corpus import QuestionFeed
from .server import Server

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class Client:
    """One keep-alive HTTP connection that asks questions."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.conn: http.client.HTTPConnection | None = None

    def ask(self, question: str) -> tuple[bool, float]:
        """(answered with 200, seconds)."""
        body = json.dumps({"question": question}).encode()
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(*self.address, timeout=60)
            self.conn.request(
                "POST", "/api/ask", body=body, headers={"Content-Type": "application/json"}
            )
            response = self.conn.getresponse()
            data = response.read()
            ok = response.status == 200 and b'"answer"' in data
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            ok = False
        return ok, time.perf_counter() - started

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def first_answer(server: Server, question: str) -> float:
    """Seconds from starting the server to its first answer."""
    ok, _ = Client(server.address).ask(question)
    if not ok:
        raise RuntimeError("the server's first answer failed:\n" + "".join(server.output))
    return time.perf_counter() - server.started


def single_client(server: Server, feed: QuestionFeed, n: int) -> dict[str, Any]:
    client = Client(server.address)
    latencies, errors = [], 0
    started = time.perf_counter()
    for _ in range(n):
        ok, seconds = client.ask(feed.next())
        latencies.append(seconds)
        errors += not ok
    elapsed = time.perf_counter() - started
    client.close()
    return {
        "questions": n,
        "errors": errors,
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "throughput_qps": round(n / elapsed, 1),
    }


def _client_process(
    address: tuple[str, int],
    questions: list[str],
    start_at: float,
    seconds: float,
    queue: Queue[list[tuple[bool, float]]],
) -> None:
    client = Client(address)
    results = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    for question in questions:
        if time.time() >= deadline:
            break
        results.append(client.ask(question))
    client.close()
    queue.put(results)


def concurrent_clients(
    server: Server,
    feed: QuestionFeed,
    clients: int,
    seconds: float,
    on_tick: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """``clients`` client processes (one each, so that no client waits on another's
    interpreter lock and counts that wait as the server's latency) asking distinct
    questions back to back for ``seconds``; ``on_tick(elapsed)`` is called about once a
    second from this process."""
    import multiprocessing

    context = (
        multiprocessing.get_context("fork")
        if sys.platform != "win32"
        else multiprocessing.get_context("spawn")
    )
    queue = context.Queue()
    per_client = int(seconds * 150) + 50  # more than any client can ask in the time
    start_at = time.time() + 0.5
    processes = [
        context.Process(
            target=_client_process,
            args=(
                server.address,
                [feed.next() for _ in range(per_client)],
                start_at,
                seconds,
                queue,
            ),
            daemon=True,
        )
        for _ in range(clients)
    ]
    for p in processes:
        p.start()
    while time.time() < start_at:
        time.sleep(0.01)
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        time.sleep(min(1.0, seconds - elapsed))
        if on_tick:
            on_tick(time.perf_counter() - started)
    results = [r for _ in processes for r in queue.get(timeout=120)]
    elapsed = max(time.perf_counter() - started, seconds)
    for p in processes:
        p.join(timeout=30)
    latencies = [took for _, took in results]
    errors = sum(not ok for ok, _ in results)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "answered": len(results) - errors,
        "errors": errors,
        "throughput_qps": round((len(results) - errors) / elapsed, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
    }


def sustained(server: Server, feed: QuestionFeed, clients: int, seconds: float) -> dict[str, Any]:
    """A long concurrent run: the server's memory after the first 10% (at most 10 s) and at
    the end; the run passes with zero errors and growth within 10%."""
    mark = min(10.0, seconds / 6)
    samples: dict[str, float | None] = {"early": None}

    def tick(elapsed: float) -> None:
        if samples["early"] is None and elapsed >= mark:
            samples["early"] = server.memory()["rss_mib"]

    result = concurrent_clients(server, feed, clients, seconds, tick)
    end = server.memory()["rss_mib"]
    early = samples["early"] or end
    growth = (end - early) / early if early and end else None
    result.update(
        rss_early_mib=early,
        rss_end_mib=end,
        rss_growth=None if growth is None else round(growth, 4),
        early_mark_s=round(mark, 1),
    )
    return result

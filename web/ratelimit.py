"""A per-client limit on questions a minute (``Config.rate_limit``; 0 turns it off).

In memory, per process: enough for one waitress process. Clients are told apart by
REMOTE_ADDR; behind a reverse proxy named by ``forwarded_allow_ips``, `qa serve` sets it to
the client's address from X-Forwarded-For (qa/server.py)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """0 when ``client`` may ask now (the request is counted), else seconds to wait."""
        if self.per_minute <= 0:
            return 0
        now = self.clock()
        with self._lock:
            # forget clients idle for a minute, so the table stays small
            for key in [k for k, q in self._seen.items() if q[-1] <= now - 60]:
                del self._seen[key]
            times = self._seen.setdefault(client, deque())
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(1, math.ceil(times[0] + 60 - now))
            times.append(now)
            return 0

"""Per-agent rate limit: a token bucket per agent (``server.rate`` per second, up to
``server.burst`` at once); a request over the limit learns how long to wait (429 Retry-After).
"""

from __future__ import annotations

import math
import threading
import time


class Throttle:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # agent -> (tokens, at)

    def take(self, agent: str, now: float | None = None) -> int:
        """0 when the request may go, else the whole seconds to wait before the next one."""
        if self.rate <= 0:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(agent, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[agent] = (tokens - 1.0, now)
                return 0
            self._buckets[agent] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))

"""The intake's recent failures: how many messages of the last minute it could not commit.

A gateway whose every message fails (a database that refuses writes, a defect) must not look
healthy: /health reports this window beside its own probes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any


class RecentFailures:
    """Counts of messages and failures in one-second buckets over the last `window` seconds."""

    def __init__(self, window: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, messages, failed], oldest first

    def record(self, *, failed: bool) -> None:
        now = int(self._clock())
        if self._buckets and self._buckets[-1][0] == now:
            bucket = self._buckets[-1]
        else:
            bucket = [now, 0, 0]
            self._buckets.append(bucket)
            self._forget(now)
        bucket[1] += 1
        bucket[2] += failed

    def _forget(self, now: int) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()

    def summary(self) -> dict[str, Any]:
        self._forget(int(self._clock()))
        messages = sum(b[1] for b in self._buckets)
        failed = sum(b[2] for b in self._buckets)
        return {
            "window_seconds": self.window,
            "messages": messages,
            "failed": failed,
            "error_rate": round(failed / messages, 4) if messages else 0.0,
        }

"""Limits of the MLLP listener against a hostile network: how many connections, and how much of
what unknown senders send is kept.

Two clients that opened 10,500 idle connections each once exhausted the process's file
descriptors (then real senders were reset without an ACK and /health did not answer); an
unregistered sender's 40 frames of 1 MB added 44 MB to the database in half a second. Here a
connection over a cap is closed at once, and an unknown sender's message over its quota is
answered as before but stored nowhere: each time with a metric, and a log line at most every
few seconds (a flood must not become a flood of log lines).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

OPEN = Gauge("cgt_mllp_connections", "MLLP connections open")
REFUSED = Counter(
    "cgt_mllp_connections_refused_total",
    "MLLP connections closed at once because a cap was reached (reason: per_source or total)",
    ["reason"],
)
CLOSED = Counter(
    "cgt_mllp_connections_closed_total",
    "MLLP connections the gateway closed (reason: idle, frame_deadline)",
    ["reason"],
)
UNKNOWN_NOT_KEPT = Counter(
    "cgt_mllp_unknown_not_kept_total",
    "Messages of unknown MLLP senders answered but not stored (reason: size, rate, volume)",
    ["reason"],
)
UNKNOWN_NOT_KEPT_BYTES = Counter(
    "cgt_mllp_unknown_not_kept_bytes_total", "Bytes of unknown MLLP senders' messages not stored"
)
LOG_EVERY = 10.0  # seconds between two log lines of the same kind
_MAX_SOURCES = 10_000  # unknown source addresses remembered; beyond, new ones are over the cap


class Throttled:
    """A warning logged at most every LOG_EVERY seconds, with how many were not logged since."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._last.get(kind, -LOG_EVERY) < LOG_EVERY:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        self._last[kind] = now
        quiet = self._quiet.pop(kind, 0)
        suffix = f" ({quiet} more like it not logged)" if quiet else ""
        log.warning(message + suffix, *args)


class ConnectionCaps:
    """Open connections, in total and per source address."""

    def __init__(self, total: int, per_source: int) -> None:
        self.total, self.per_source = total, per_source
        self.open = 0
        self._by_source: dict[str, int] = {}
        self._log = Throttled()

    def admit(self, address: str) -> bool:
        """Count a new connection in, or say it is over a cap (logged and counted)."""
        reason = None
        if self.open >= self.total:
            reason = "total"
        elif self._by_source.get(address, 0) >= self.per_source:
            reason = "per_source"
        if reason is not None:
            REFUSED.labels(reason).inc()
            self._log.warning(
                f"refused-{reason}",
                "MLLP %s: connection refused, the %s cap of %d connections is reached",
                address,
                "per-source" if reason == "per_source" else "total",
                self.per_source if reason == "per_source" else self.total,
            )
            return False
        self.open += 1
        self._by_source[address] = self._by_source.get(address, 0) + 1
        OPEN.inc()
        return True

    def release(self, address: str) -> None:
        self.open -= 1
        OPEN.dec()
        left = self._by_source.get(address, 1) - 1
        if left:
            self._by_source[address] = left
        else:
            self._by_source.pop(address, None)


@dataclass
class _Window:
    started: float
    messages: int = 0
    volume: int = 0


class UnknownSenderQuota:
    """How much of an unknown sender's traffic is stored: a size limit a message, and a number of
    messages and of bytes a source address may have kept within one window."""

    def __init__(
        self,
        *,
        max_bytes: int,
        messages: int,
        volume: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes, self.messages, self.volume, self.window = max_bytes, messages, volume, window
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._log = Throttled(clock)

    def keep(self, address: str, size: int) -> bool:
        """May a message of `size` bytes from `address` be stored? If not, it is logged and counted."""
        reason = self._over(address, size)
        if reason is None:
            return True
        UNKNOWN_NOT_KEPT.labels(reason).inc()
        UNKNOWN_NOT_KEPT_BYTES.inc(size)
        self._log.warning(
            f"unknown-{reason}",
            "MLLP %s: an unknown sender's message of %d bytes not stored (%s cap)",
            address,
            size,
            reason,
        )
        return False

    def _over(self, address: str, size: int) -> str | None:
        if size > self.max_bytes:
            return "size"
        now = self.clock()
        window = self._windows.get(address)
        if window is None or now - window.started >= self.window:
            if window is None and len(self._windows) >= _MAX_SOURCES:
                self._forget_expired(now)
                if len(self._windows) >= _MAX_SOURCES:
                    return "rate"
            window = self._windows[address] = _Window(now)
        if window.messages >= self.messages:
            return "rate"
        if window.volume + size > self.volume:
            return "volume"
        window.messages += 1
        window.volume += size
        return None

    def _forget_expired(self, now: float) -> None:
        for address in [a for a, w in self._windows.items() if now - w.started >= self.window]:
            del self._windows[address]

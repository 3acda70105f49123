"""How hard an outbound delivery is tried: a schedule of attempts with backoff (gateway.sdk.outbound
runs it for every destination; `retrying` is the same loop on its own, for a transport's one-off
sends such as an HL7 application acknowledgement)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Retry:
    """How hard to try: `tries` within one delivery, up to `deliveries` deliveries, `backoff`
    seconds before the second attempt, doubling, at most `max_backoff`. The message stays unacked
    throughout: keep the whole schedule well inside RabbitMQ's `consumer_timeout` (30 min)."""

    tries: int = 1
    deliveries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    # How long a later event waits for an earlier one of its order that this runner has not seen
    # (published before the queue was bound, or not yet published, or held by another replica).
    hold: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failed attempt (counted across deliveries)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


async def retrying(
    retry: Retry, action: Callable[[], Awaitable[T]], *, after: int = 0, sleep: Sleep = asyncio.sleep
) -> T:
    """`action` until it succeeds, at most `retry.tries` times, sleeping `retry.delay` between
    tries; the last TransientError is raised. `after`: attempts made before (earlier deliveries)."""
    for n in range(1, retry.tries + 1):
        try:
            return await action()
        except TransientError as exc:
            log.info("attempt %d of %d failed (%s)", n, retry.tries, exc.public_message)
            if n == retry.tries:
                raise
            await sleep(retry.delay(after + n))
    raise AssertionError("unreachable: tries >= 1")

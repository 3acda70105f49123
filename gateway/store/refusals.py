"""The Refusals port (gateway.ports.Refusals) in the database: a refused request that named a
known partner (bad, stale or replayed signature) is kept raw, as `inbound_messages` with outcome
`refused`, so that the partner's failures can be looked into; within a cap per partner per hour
(count and bytes, settings), beyond which they are only counted, so that a flood cannot fill the
disk. The cap is each process's own (a replica keeps up to the cap too).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import metrics
from gateway.canonical.envelope import utcnow
from gateway.store.tables import inbound_messages

WINDOW_S = 3600.0


@dataclass
class _Window:
    started: float
    count: int = 0
    size: int = 0


class StoreRefusals:
    def __init__(self, engine: AsyncEngine, *, per_hour: int, bytes_per_hour: int) -> None:
        self.engine = engine
        self.per_hour, self.bytes_per_hour = per_hour, bytes_per_hour
        self._windows: dict[str, _Window] = {}

    def _room(self, partner: str, size: int) -> bool:
        now = time.monotonic()
        window = self._windows.get(partner)
        if window is None or now - window.started >= WINDOW_S:
            window = self._windows[partner] = _Window(now)
        if window.count + 1 > self.per_hour or window.size + size > self.bytes_per_hour:
            return False
        window.count += 1
        window.size += size
        return True

    async def keep(
        self, partner: str, adapter: str, transport: str, raw: bytes, content_type: str | None, reason: str
    ) -> bool:
        """Keep the refused request's raw bytes; False when over the cap (or the database is
        away: a refusal is answered whatever happens to its copy)."""
        if not self._room(partner, len(raw)):
            metrics.REFUSED_DROPPED.labels(partner).inc()
            return False
        row = {
            "id": str(uuid.uuid4()),
            "partner": partner,
            "transport": transport,
            "adapter": adapter,
            "message_id": None,
            "received_at": utcnow(),
            "content_type": content_type,
            "raw": raw,
            "outcome": "refused",
            "reason": reason,
            "order_id": None,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(inbound_messages).values(row))
        except DBAPIError:
            return False
        return True

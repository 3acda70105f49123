"""The Refusals port (gateway.ports.Refusals) in the database: a refused request that named a
known partner (bad, stale or replayed signature) is kept raw, as `inbound_messages` with outcome
`refused`, so that the partner's failures can be looked into; within a cap per partner per hour
(count and bytes, settings), beyond which they are only counted, so that a flood cannot fill the
disk.

The cap is counted in the database over the last hour, so it holds for all replicas together
(replicas deciding at the same instant may each keep one more). A process that finds a partner
at its cap takes it to stay there for a minute: a flood of refusals costs no reads.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import metrics
from gateway.canonical.envelope import utcnow
from gateway.store.db import writer_for
from gateway.store.tables import inbound_messages

WINDOW = timedelta(hours=1)
RECHECK_S = 60.0

_m = inbound_messages.c
# Read through ix_inbound_refused, the refused rows alone, never the partner's accepted traffic:
# the outcome is written into the SQL, since a planner takes a partial index only for a WHERE
# that states its predicate (a bound parameter does not).
_KEPT = select(func.count(), func.coalesce(func.sum(func.length(_m.raw)), literal_column("0"))).where(
    _m.partner == bindparam("partner"),
    _m.outcome == literal_column("'refused'"),
    _m.received_at >= bindparam("since"),
)


class StoreRefusals:
    def __init__(self, engine: AsyncEngine, *, per_hour: int, bytes_per_hour: int) -> None:
        self.writer = writer_for(engine)
        self.per_hour, self.bytes_per_hour = per_hour, bytes_per_hour
        self._full_until: dict[str, float] = {}  # partner -> monotonic time

    async def keep(
        self, partner: str, adapter: str, transport: str, raw: bytes, content_type: str | None, reason: str
    ) -> bool:
        """Keep the refused request's raw bytes; False when over the cap (or the database is
        away: a refusal is answered whatever happens to its copy)."""
        if self._full_until.get(partner, 0.0) > time.monotonic():
            metrics.REFUSED_DROPPED.labels(partner).inc()
            return False
        now = utcnow()
        row = {
            "id": str(uuid.uuid4()),
            "partner": partner,
            "transport": transport,
            "adapter": adapter,
            "message_id": None,
            "received_at": now,
            "content_type": content_type,
            "raw": raw,
            "outcome": "refused",
            "reason": reason,
            "order_id": None,
        }
        try:
            kept = await self.writer.run(partial(self._keep, row))
        except DBAPIError:
            return False
        if not kept:
            self._full_until[partner] = time.monotonic() + RECHECK_S
            metrics.REFUSED_DROPPED.labels(partner).inc()
        return kept

    def _keep(self, row: dict[str, Any]) -> bool:
        # On the writer: the count and the insert in one write transaction (BEGIN IMMEDIATE on
        # SQLite), so that they see the same rows.
        with self.writer.engine.begin() as conn:
            since = row["received_at"] - WINDOW
            count, size = conn.execute(_KEPT, {"partner": row["partner"], "since": since}).one()
            if count + 1 > self.per_hour or size + len(row["raw"]) > self.bytes_per_hour:
                return False
            conn.execute(insert(inbound_messages).values(row))
        return True

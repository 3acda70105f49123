"""The Replays port (gateway.ports.Replays) in the database: a signed attempt is taken once.

The memory is a table, not a process's dict, so that N replicas behind a load balancer refuse a
replay whichever of them the first copy reached. Rows live only as long as the attempt's
signature would be fresh; expired ones are purged now and then by whoever writes.

Rows are written on the database's writer (gateway.store.db), beside the intake's and the relay's
transactions rather than against them: on SQLite a second writing connection waits in the busy
handler, in coarse sleeps, whenever one of them holds the lock. The commit is relaxed: a row lost
in a power cut lets a copy through the replay check, to meet the intake's idempotency on its id.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from functools import partial

from sqlalchemy import delete, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import utcnow
from gateway.errors import TransientError
from gateway.store.db import writer_for
from gateway.store.tables import webhook_receipts

PURGE_EVERY_S = 60.0  # a purge is one indexed DELETE: once a minute a replica is plenty


class StoreReplays:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.writer = writer_for(engine)
        self._purged_at = 0.0

    async def first_use(self, scope: str, key: str, expires_at: datetime) -> bool:
        """True the first time (`scope`, `key`) is seen; False while an earlier sighting lives."""
        digest = hashlib.sha256(key.encode()).hexdigest()  # bounded, and no sender text stored
        purge = time.monotonic() - self._purged_at >= PURGE_EVERY_S
        if purge:
            self._purged_at = time.monotonic()
        try:
            return await self.writer.run(partial(self._take, scope, digest, expires_at, purge))
        except DBAPIError as exc:
            raise TransientError(detail=f"replay memory: {type(exc).__name__}") from exc

    def _take(self, scope: str, digest: str, expires_at: datetime, purge: bool) -> bool:
        if purge:
            with self.writer.relaxed() as conn:
                conn.execute(delete(webhook_receipts).where(webhook_receipts.c.expires_at < utcnow()))
        try:
            with self.writer.relaxed() as conn:
                conn.execute(insert(webhook_receipts).values(scope=scope, key=digest, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

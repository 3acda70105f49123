"""The replay memory in the database: a signed attempt (gateway.store.records.Claim) is taken once.

The memory is a table, not a process's dict, so that N replicas behind a load balancer refuse a
replay whichever of them the first copy reached. Rows live only as long as the attempt's
signature would be fresh; an expired row is taken over by the next attempt under its key, and
expired rows are purged now and then by whoever writes.

A message's attempt is taken in the intake's own transaction (`take`, from the unit of work): one
commit a webhook, and a transaction that fails takes nothing, so the sender's retry of the same
attempt is not mistaken for a replay. What never reaches the intake (traffic that is not the
gateway's, a signed GET) is taken here on the database's writer (`StoreReplays`), beside the
intake's and the relay's transactions rather than against them: on SQLite a second writing
connection waits in the busy handler, in coarse sleeps, whenever one of them holds the lock. That
commit is relaxed: a row lost in a power cut lets a copy through, to meet the intake's
idempotency on its id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import utcnow
from gateway.claims import Claim
from gateway.errors import TransientError
from gateway.store.db import writer_for
from gateway.store.prepared import Prepared
from gateway.store.tables import webhook_receipts

PURGE_EVERY_S = 60.0  # a purge is one indexed DELETE: once a minute a replica is plenty
_r = webhook_receipts


def _take(dialect_insert: Callable[..., Any]) -> Prepared:
    """Insert the attempt, or take over an expired row of its key; its key back when taken."""
    new = dialect_insert(_r).values(
        scope=bindparam("scope"), key=bindparam("key"), expires_at=bindparam("expires_at")
    )
    return Prepared(
        new.on_conflict_do_update(
            index_elements=[_r.c.scope, _r.c.key],
            set_={"expires_at": new.excluded.expires_at},
            where=_r.c.expires_at < bindparam("now"),
        ).returning(_r.c.key)
    )


_TAKE = {"sqlite": _take(sqlite_insert), "postgresql": _take(pg_insert)}


_PURGE = Prepared(delete(_r).where(_r.c.expires_at < bindparam("now")))
_purged_at = [0.0]  # this process's last purge (monotonic seconds)


def take(conn: Connection, claim: Claim, now: datetime) -> bool:
    """True when `claim` is taken now; False while an earlier sighting of it lives. In the
    caller's transaction: rolled back with it. Purges expired rows once a minute."""
    if time.monotonic() - _purged_at[0] >= PURGE_EVERY_S:
        _purged_at[0] = time.monotonic()
        _PURGE.execute(conn, {"now": now})
    values = {"scope": claim.scope, "key": claim.key, "expires_at": claim.expires_at, "now": now}
    return bool(_TAKE[conn.dialect.name].rows(conn, values))


class StoreReplays:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.writer = writer_for(engine)

    async def take(self, claim: Claim) -> bool:
        """`claim` taken on its own, relaxed (see the module's note): True the first time it is
        seen, False while an earlier sighting lives."""
        try:
            return await self.writer.run(partial(self._take, claim))
        except DBAPIError as exc:
            raise TransientError(detail=f"replay memory: {type(exc).__name__}") from exc

    def _take(self, claim: Claim) -> bool:
        with self.writer.relaxed() as conn:
            return take(conn, claim, utcnow())

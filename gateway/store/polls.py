"""The Polls port (gateway.ports.Polls) in the database: pollers' schedules, shared by replicas.

A row is claimed with a lease, the way the outbox relay claims its rows (SKIP LOCKED on
PostgreSQL; SQLite has one writer): two replicas never poll the same key at once, and a replica
that dies mid-poll leaves its rows to the others when the lease runs out.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import orjson
from sqlalchemy import and_, bindparam, exists, insert, literal, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.lifecycle import TERMINAL
from gateway.errors import TransientError
from gateway.ports import PollState
from gateway.store.tables import crosswalk, orders, poll_schedule

ps = poll_schedule
_CLOSED = [s.value for s in TERMINAL]
_FREE = or_(ps.c.claimed_until.is_(None), ps.c.claimed_until < bindparam("p_now"))
_DUE = (
    select(ps.c.id)
    .where(
        ps.c.poller == bindparam("p_poller"),
        ps.c.partner == bindparam("p_partner"),
        ps.c.done_at.is_(None),
        ps.c.next_at <= bindparam("p_now"),
        _FREE,
    )
    .order_by(ps.c.next_at)
    .limit(bindparam("p_limit"))
    .with_for_update(skip_locked=True)
)
# The lease conditions again in the UPDATE itself: on PostgreSQL a row another replica claimed
# between the sub-select and the update is checked afresh, and left alone.
_CLAIM = (
    update(ps)
    .where(ps.c.id.in_(_DUE.scalar_subquery()), ps.c.done_at.is_(None), _FREE)
    .values(claim=bindparam("p_token"), claimed_until=bindparam("p_until"))
    .returning(*ps.c)
)
_RETIRE = (
    update(ps)
    .where(
        ps.c.poller == bindparam("p_poller"),
        ps.c.partner == bindparam("p_partner"),
        ps.c.done_at.is_(None),
        ps.c.order_id.in_(select(orders.c.order_id).where(orders.c.status.in_(_CLOSED))),
    )
    .values(done_at=bindparam("p_now"))
)


def _state(row: object) -> PollState:
    seen = orjson.loads(row.seen) if row.seen else []  # type: ignore[attr-defined]
    return PollState(
        id=row.id,  # type: ignore[attr-defined]
        poller=row.poller,  # type: ignore[attr-defined]
        partner=row.partner,  # type: ignore[attr-defined]
        key=row.key,  # type: ignore[attr-defined]
        claim=row.claim,  # type: ignore[attr-defined]
        etag=row.etag,  # type: ignore[attr-defined]
        last_modified=row.last_modified,  # type: ignore[attr-defined]
        seen=tuple(seen),
        last_event_at=row.last_event_at,  # type: ignore[attr-defined]
        failures=row.failures,  # type: ignore[attr-defined]
    )


class StorePolls:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def enrol(self, poller: str, partner: str, namespace: str, now: datetime) -> int:
        scheduled = exists().where(
            ps.c.poller == poller, ps.c.partner == partner, ps.c.key == crosswalk.c.value
        )
        bound = (
            select(
                literal(poller),
                literal(partner),
                crosswalk.c.value,
                crosswalk.c.order_id,
                literal(now, ps.c.next_at.type),
                literal(now, ps.c.created_at.type),
            )
            .select_from(crosswalk.join(orders, orders.c.order_id == crosswalk.c.order_id))
            .where(and_(crosswalk.c.namespace == namespace, orders.c.status.not_in(_CLOSED), ~scheduled))
        )
        columns = ["poller", "partner", "key", "order_id", "next_at", "created_at"]
        try:
            async with self.engine.begin() as conn:
                added = await conn.execute(insert(ps).from_select(columns, bound))
                return int(added.rowcount or 0)
        except IntegrityError:  # another replica enrolled the same keys first: theirs stand
            return 0
        except DBAPIError as exc:
            raise TransientError(detail=f"poll schedule: {type(exc).__name__}") from exc

    async def claim(
        self, poller: str, partner: str, *, limit: int, lease_s: float, now: datetime
    ) -> list[PollState]:
        token = str(uuid.uuid4())
        params = {"p_poller": poller, "p_partner": partner, "p_now": now}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(_RETIRE, params)
                until = now + timedelta(seconds=lease_s)
                rows = (
                    await conn.execute(
                        _CLAIM, {**params, "p_limit": limit, "p_token": token, "p_until": until}
                    )
                ).all()
        except DBAPIError as exc:
            raise TransientError(detail=f"poll schedule: {type(exc).__name__}") from exc
        return [_state(r) for r in sorted(rows, key=lambda r: r.next_at)]

    async def settle(
        self,
        state: PollState,
        *,
        next_at: datetime,
        etag: str | None,
        last_modified: str | None,
        seen: tuple[str, ...],
        last_event_at: datetime | None,
        failures: int,
        done: bool = False,
    ) -> bool:
        values = {
            "next_at": next_at,
            "etag": etag,
            "last_modified": last_modified,
            "seen": orjson.dumps(list(seen)).decode(),
            "last_event_at": last_event_at,
            "failures": failures,
            "claim": None,
            "claimed_until": None,
            "done_at": next_at if done else None,
        }
        mine = update(ps).where(ps.c.id == state.id, ps.c.claim == state.claim).values(**values)
        try:
            async with self.engine.begin() as conn:
                return (await conn.execute(mine)).rowcount == 1
        except DBAPIError as exc:
            raise TransientError(detail=f"poll schedule: {type(exc).__name__}") from exc

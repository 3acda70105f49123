"""The read side, for the HTTP API and the CLI: orders, timelines, quarantine, the outbox backlog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.canonical.order import TherapyOrder
from gateway.store import tables as t

_or = t.orders


async def order_by_coi(conn: AsyncConnection, coi: str) -> TherapyOrder | None:
    row = (await conn.execute(select(_or.c.document).where(_or.c.coi == coi))).first()
    return TherapyOrder.model_validate(row.document) if row else None


async def timeline(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(t.events.c.envelope)
        .where(t.events.c.order_id == order_id)
        .order_by(t.events.c.time, t.events.c.event_id)
    )
    return [dict(r.envelope) for r in rows]


async def open_quarantine(conn: AsyncConnection, limit: int = 100) -> list[dict[str, Any]]:
    q = t.quarantine
    rows = await conn.execute(
        select(q.c.quarantine_id, q.c.partner, q.c.reason, q.c.detail, q.c.created_at, q.c.inbound_id)
        .where(q.c.status == "open")
        .order_by(q.c.created_at)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def count_open_quarantine(conn: AsyncConnection) -> int:
    q = t.quarantine
    return int(
        (await conn.execute(select(func.count()).select_from(q).where(q.c.status == "open"))).scalar_one()
    )


async def outbox_backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """Unsent rows, and when the oldest of them was written."""
    o = t.outbox
    row = (
        await conn.execute(select(func.count(), func.min(o.c.created_at)).where(o.c.sent_at.is_(None)))
    ).one()
    oldest = row[1]
    if isinstance(oldest, str):  # SQLite's min() of a datetime column comes back as text
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return int(row[0]), oldest


async def inbound_message(conn: AsyncConnection, inbound_id: str) -> dict[str, Any] | None:
    """One stored inbound message, raw bytes and what became of it (None: no such message)."""
    m = t.inbound_messages
    row = (await conn.execute(select(m).where(m.c.id == inbound_id))).first()
    return dict(row._mapping) if row else None


async def event_types_of(conn: AsyncConnection, inbound_id: str) -> list[str]:
    """The names of the events a message produced (`order.placed`: their CloudEvents types
    without the `org.cgt.` prefix), in order."""
    e = t.events
    rows = await conn.execute(
        select(e.c.type).where(e.c.inbound_id == inbound_id).order_by(e.c.time, e.c.event_id)
    )
    return [str(r.type).removeprefix("org.cgt.") for r in rows]

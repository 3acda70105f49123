"""The store of quarantine review: operators, the held items with what they claimed beside what
the chain of identity holds, and the review's signatures and settlement.

Reads for the API and the CLI are async; the writes run inside the release or rejection
transaction (gateway.service.review), on its connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import tables as t

_q, _s, _op = t.quarantine, t.review_signatures, t.operators


# -- operators --------------------------------------------------------------------------------
async def operator_row(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(_op).where(_op.c.name == name))).first()
    return dict(row._mapping) if row else None


async def add_operator(
    conn: AsyncConnection, name: str, role: str, printed_name: str, password_hash: str, at: datetime
) -> None:
    values = {"name": name, "role": role, "printed_name": printed_name, "password_hash": password_hash}
    await conn.execute(insert(_op).values(created_at=at, **values))


# -- reads --------------------------------------------------------------------------------------
async def held(
    conn: AsyncConnection,
    *,
    partner: str | None = None,
    reason: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Open items, oldest first; `before`: held before this time."""
    query = select(
        _q.c.quarantine_id,
        _q.c.partner,
        _q.c.reason,
        _q.c.detail,
        _q.c.created_at,
        _q.c.inbound_id,
        _q.c.command,
    )
    query = query.where(_q.c.status == "open")
    if partner:
        query = query.where(_q.c.partner == partner)
    if reason:
        query = query.where(_q.c.reason == reason)
    if before is not None:
        query = query.where(_q.c.created_at < before)
    rows = await conn.execute(query.order_by(_q.c.created_at).limit(limit))
    return [dict(r._mapping) for r in rows]


async def item(conn: AsyncConnection, quarantine_id: str) -> dict[str, Any] | None:
    """The item with its raw message as received and its signatures so far."""
    m = t.inbound_messages
    row = (
        await conn.execute(
            select(_q, m.c.raw, m.c.content_type, m.c.received_at, m.c.transport, m.c.adapter, m.c.message_id)
            .join(m, m.c.id == _q.c.inbound_id)
            .where(_q.c.quarantine_id == quarantine_id)
        )
    ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    signed = await conn.execute(
        select(_s).where(_s.c.quarantine_id == quarantine_id).order_by(_s.c.signed_at)
    )
    found["signatures"] = [dict(s._mapping) for s in signed]
    return found


async def chain_of(conn: AsyncConnection, refs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """What the chain of identity holds for these identifiers: each one's binding (patient, order,
    COI) and the patients' demographics."""
    cw, o, p = t.crosswalk, t.orders, t.patients
    bindings: list[dict[str, Any]] = []
    for namespace, value in dict.fromkeys(refs):
        row = (
            await conn.execute(
                select(cw.c.patient_id, cw.c.order_id, o.c.coi)
                .outerjoin(o, o.c.order_id == cw.c.order_id)
                .where(cw.c.namespace == namespace, cw.c.value == value)
            )
        ).first()
        bound = dict(row._mapping) if row else None
        bindings.append({"namespace": namespace, "value": value, "bound": bound})
    ids = sorted({b["bound"]["patient_id"] for b in bindings if b["bound"]})
    patients = {}
    if ids:
        rows = await conn.execute(select(p.c.patient_id, p.c.identity).where(p.c.patient_id.in_(ids)))
        patients = {r.patient_id: r.identity for r in rows}
    return {"identifiers": bindings, "patients": patients}


# -- writes, inside the review's transaction ------------------------------------------------------
def locked_item(conn: Connection, quarantine_id: str) -> dict[str, Any] | None:
    m = t.inbound_messages
    query = (
        select(_q, m.c.raw, m.c.content_type, m.c.received_at, m.c.transport, m.c.adapter, m.c.message_id)
        .join(m, m.c.id == _q.c.inbound_id)
        .where(_q.c.quarantine_id == quarantine_id)
        .with_for_update(of=_q)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def signers(conn: Connection, quarantine_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(_s).where(_s.c.quarantine_id == quarantine_id).order_by(_s.c.signed_at))
    return [dict(r._mapping) for r in rows]


def sign(
    conn: Connection, quarantine_id: str, operator: str, printed_name: str, meaning: str, at: datetime
) -> None:
    conn.execute(
        insert(_s).values(
            quarantine_id=quarantine_id,
            operator=operator,
            printed_name=printed_name,
            meaning=meaning,
            signed_at=at,
        )
    )


def settle(conn: Connection, quarantine_id: str, status: str, inbound_id: str, order_id: str | None) -> None:
    """The item decided; its raw message's outcome follows (applied when released)."""
    conn.execute(update(_q).where(_q.c.quarantine_id == quarantine_id).values(status=status))
    outcome = "applied" if status == "released" else "rejected"
    m = t.inbound_messages
    conn.execute(update(m).where(m.c.id == inbound_id).values(outcome=outcome, order_id=order_id))

"""Reads for an order's journey (the console's timeline, the chain of custody and its
certificate) and for partners' health: events with who sent them, their audit hashes, logger
readings, clocks, and the search by any identifier through the crosswalk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.canonical.order import TherapyOrder
from gateway.store import tables as t

PREFIX = "org.cgt."


@dataclass(frozen=True)
class AuditMark:
    """The audit record of an event: its place in the chain and its chain hash."""

    seq: int
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Sent:
    """One event of the order as stored, with the partner and adapter that sent it."""

    event_id: str
    type: str  # without the `org.cgt.` prefix
    time: datetime
    data: Mapping[str, Any]
    partner: str | None = None
    adapter: str | None = None
    audit: AuditMark | None = None

    @property
    def occurred_at(self) -> datetime:
        given = self.data.get("occurred_at")
        return datetime.fromisoformat(given) if isinstance(given, str) else self.time


async def sent_events(conn: AsyncConnection, order_id: str, coi: str) -> list[Sent]:
    """The order's events in order, each with the partner and adapter of the message that made it
    (none for the gateway's own) and the chain hash of its audit record."""
    e, m = t.events, t.inbound_messages
    rows = await conn.execute(
        select(e.c.event_id, e.c.type, e.c.time, e.c.envelope, m.c.partner, m.c.adapter)
        .outerjoin(m, m.c.id == e.c.inbound_id)
        .where(e.c.order_id == order_id)
        .order_by(e.c.time, e.c.event_id)
    )
    found = list(rows)
    marks = await audit_marks(conn, coi, [r.event_id for r in found])
    return [
        Sent(
            event_id=r.event_id,
            type=str(r.type).removeprefix(PREFIX),
            time=r.time,
            data=dict(r.envelope.get("data") or {}),
            partner=r.partner,
            adapter=r.adapter,
            audit=marks.get(r.event_id),
        )
        for r in found
    ]


async def audit_marks(conn: AsyncConnection, coi: str, event_ids: Iterable[str]) -> dict[str, AuditMark]:
    """event id -> its audit record's place and hash. The records of an order's events name its
    COI as their subject and the event in their detail."""
    wanted = set(event_ids)
    a = t.audit_records
    rows = await conn.execute(
        select(a.c.seq, a.c.hash, a.c.prev_hash, a.c.detail).where(a.c.subject == coi).order_by(a.c.seq)
    )
    marks: dict[str, AuditMark] = {}
    for r in rows:
        event_id = (r.detail or {}).get("event_id")
        if event_id in wanted and event_id not in marks:
            marks[event_id] = AuditMark(int(r.seq), r.hash, r.prev_hash)
    return marks


async def readings(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    r = t.shipment_readings
    rows = await conn.execute(
        select(
            r.c.shipment_id,
            r.c.device_id,
            r.c.probe,
            r.c.at,
            r.c.until,
            r.c.temperature_c,
            r.c.min_c,
            r.c.max_c,
            r.c.mean_c,
        )
        .where(r.c.order_id == order_id)
        .order_by(r.c.shipment_id, r.c.at)
    )
    return [dict(row._mapping) for row in rows]


async def clocks(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    d = t.deadlines
    rows = await conn.execute(
        select(d.c.shipment_id, d.c.clock, d.c.starts_at, d.c.due_at, d.c.warned_pct, d.c.stopped_at)
        .where(d.c.order_id == order_id)
        .order_by(d.c.starts_at)
    )
    return [dict(row._mapping) for row in rows]


async def find(conn: AsyncConnection, value: str) -> list[dict[str, Any]]:
    """Orders an identifier names, in any namespace (COI, DIN, MRN, placer order, tracking
    number, batch, ...): each with the namespace that matched. A patient identifier names the
    patient's orders."""
    cw, o = t.crosswalk, t.orders
    value = value.strip()
    rows = await conn.execute(
        select(cw.c.namespace, cw.c.patient_id, cw.c.order_id).where(
            or_(cw.c.value == value, cw.c.value == value.upper())
        )
    )
    by_order: dict[str, str] = {}
    patients: dict[str, str] = {}
    for r in rows:
        if r.order_id:
            by_order.setdefault(r.order_id, r.namespace)
        else:
            patients.setdefault(r.patient_id, r.namespace)
    query = select(o.c.order_id, o.c.coi, o.c.status, o.c.patient_id, o.c.updated_at)
    conditions = [o.c.coi == value.upper()]
    if by_order:
        conditions.append(o.c.order_id.in_(list(by_order)))
    if patients:
        conditions.append(o.c.patient_id.in_(list(patients)))
    found = list(await conn.execute(query.where(or_(*conditions)).order_by(o.c.updated_at.desc()).limit(50)))
    if not found:
        found, by_order = await _named_by_document(conn, query, value)
    return [
        {
            "order_id": r.order_id,
            "coi": r.coi,
            "status": r.status,
            "updated_at": r.updated_at,
            "matched": by_order.get(r.order_id) or patients.get(r.patient_id) or "coi",
        }
        for r in found
    ]


async def _named_by_document(
    conn: AsyncConnection, query: Any, value: str
) -> tuple[list[Any], dict[str, str]]:
    """Orders whose own document names `value` as a DIN, batch, slot or shipment key, for the
    identifiers a partner sent without binding them. A text scan, then each candidate checked
    field by field (never a match on a patient's name)."""
    o = t.orders
    rows = await conn.execute(
        select(o.c.order_id, o.c.document).where(cast(o.c.document, String).contains(value)).limit(50)
    )
    named: dict[str, str] = {}
    for r in rows:
        order = TherapyOrder.model_validate(r.document)
        fields: dict[str, set[str | None]] = {
            "isbt128:din": {order.collection.din},
            "batch": {order.manufacturing.batch_id},
            "slot": {order.manufacturing.slot_id},
            "shipment": {k for s in order.shipments for k in s.keys},
        }
        field = next((name for name, values in fields.items() if value in values), None)
        if field:
            named[r.order_id] = field
    if not named:
        return [], named
    found = await conn.execute(query.where(o.c.order_id.in_(list(named))))
    return list(found), named


async def patient_refs(conn: AsyncConnection, patient_id: str) -> list[dict[str, Any]]:
    """The patient's own identifiers (MRNs and the like): patient data."""
    cw = t.crosswalk
    rows = await conn.execute(
        select(cw.c.namespace, cw.c.value).where(cw.c.patient_id == patient_id, cw.c.order_id.is_(None))
    )
    return [{"namespace": r.namespace, "value": r.value} for r in rows]


async def partner_health(conn: AsyncConnection, since: datetime) -> dict[str, dict[str, Any]]:
    """Per partner: the last message received, and since `since` the messages, errors (refused
    or failed) and quarantined ones; the dead letters (deliveries given up) to it."""
    m = t.inbound_messages
    recent = m.c.received_at >= since
    rows = await conn.execute(
        select(
            m.c.partner,
            func.max(m.c.received_at).label("last"),
            func.sum(case((recent, 1), else_=0)).label("messages"),
            func.sum(case((recent & m.c.outcome.in_(("rejected", "failed")), 1), else_=0)).label("errors"),
            func.sum(case((recent & (m.c.outcome == "quarantined"), 1), else_=0)).label("held"),
        ).group_by(m.c.partner)
    )
    health: dict[str, dict[str, Any]] = {}
    for r in rows:
        last = r.last
        if isinstance(last, str):  # SQLite's max() of a datetime column comes back as text
            last = datetime.fromisoformat(last).replace(tzinfo=UTC)
        health[r.partner] = {
            "last_message": last,
            "messages": int(r.messages or 0),
            "errors": int(r.errors or 0),
            "quarantined": int(r.held or 0),
            "dead_letters": 0,
        }
    e = t.events
    failed = await conn.execute(select(e.c.envelope).where(e.c.type == PREFIX + "delivery.failed"))
    for (envelope,) in failed:
        partner = (envelope.get("data") or {}).get("partner")
        if isinstance(partner, str):
            health.setdefault(partner, quiet())["dead_letters"] += 1
    return health


def quiet() -> dict[str, Any]:
    return {"last_message": None, "messages": 0, "errors": 0, "quarantined": 0, "dead_letters": 0}

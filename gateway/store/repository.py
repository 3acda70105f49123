"""The intake transaction's reads and writes (synchronous, on the writer twin), and the async reads
the HTTP API and the CLI make.

Statements are built once at import and executed with parameters: SQLAlchemy then reuses their
compiled form, which is most of the cost of a statement here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.order import PatientIdentity, TherapyOrder
from gateway.identity import Binding
from gateway.store import tables as t


@dataclass(frozen=True)
class InboundRecord:
    partner: str
    transport: str
    adapter: str
    message_id: str | None
    received_at: datetime
    content_type: str | None
    raw: bytes


_keys, _cw, _pt, _or = t.idempotency_keys, t.crosswalk, t.patients, t.orders
_PREVIOUS = select(_keys.c.answer, _keys.c.rendered).where(
    _keys.c.partner == bindparam("p"), _keys.c.message_id == bindparam("m")
)
_BINDINGS = select(_cw.c.namespace, _cw.c.value, _cw.c.patient_id, _cw.c.order_id).where(
    tuple_(_cw.c.namespace, _cw.c.value).in_(bindparam("keys", expanding=True))
)
_PATIENTS = select(_pt.c.patient_id, _pt.c.identity).where(
    _pt.c.patient_id.in_(bindparam("ids", expanding=True))
)
_UPDATE_PATIENT = (
    update(_pt)
    .where(_pt.c.patient_id == bindparam("pid"))
    .values(identity=bindparam("identity"), updated_at=bindparam("at"))
)
_ORDER = select(_or.c.document).where(_or.c.order_id == bindparam("oid")).with_for_update()
_ORDERS_OF_PATIENT = select(_or.c.document).where(_or.c.patient_id == bindparam("pid"))
_UPDATE_ORDER = (
    update(_or)
    .where(_or.c.order_id == bindparam("oid"), _or.c.version == bindparam("expected"))
    .values(
        patient_id=bindparam("patient_id"),
        status=bindparam("status"),
        version=bindparam("version"),
        document=bindparam("document"),
        updated_at=bindparam("updated_at"),
    )
)
_REPOINT_CROSSWALK = (
    update(_cw).where(_cw.c.patient_id == bindparam("old")).values(patient_id=bindparam("new"))
)
_TOMBSTONE = (
    update(_pt)
    .where(_pt.c.patient_id == bindparam("old"))
    .values(merged_into=bindparam("new"), updated_at=bindparam("at"))
)


class Repository:
    """Everything the intake transaction reads and writes, on one synchronous connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- idempotency and raw messages ------------------------------------------------------
    def previous_answer(self, partner: str, message_id: str) -> tuple[dict[str, Any], bytes | None] | None:
        row = self.conn.execute(_PREVIOUS, {"p": partner, "m": message_id}).first()
        return (dict(row.answer), row.rendered) if row else None

    # -- crosswalk ------------------------------------------------------------------------
    def bindings(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, Binding]:
        wanted = {(r.namespace, r.value): r for r in refs}
        if not wanted:
            return {}
        rows = self.conn.execute(_BINDINGS, {"keys": list(wanted)})
        return {wanted[(r.namespace, r.value)]: Binding(r.patient_id, r.order_id) for r in rows}

    def bind(
        self,
        refs: Iterable[ExternalRef],
        patient_id: str,
        order_id: str | None,
        at: datetime,
        inbound_id: str | None,
    ) -> None:
        rows = [
            {
                "namespace": r.namespace,
                "value": r.value,
                "patient_id": patient_id,
                "order_id": order_id if r.scope is IdentifierScope.order else None,
                "bound_at": at,
                "inbound_id": inbound_id,
            }
            for r in refs
        ]
        if rows:
            self.conn.execute(insert(_cw), rows)

    # -- patients and orders ---------------------------------------------------------------
    def patients(self, patient_ids: Iterable[str]) -> dict[str, PatientIdentity]:
        ids = list(set(patient_ids))
        if not ids:
            return {}
        rows = self.conn.execute(_PATIENTS, {"ids": ids})
        return {r.patient_id: PatientIdentity.model_validate(r.identity) for r in rows}

    def insert_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self.conn.execute(
            insert(_pt),
            {"patient_id": patient_id, "identity": identity.model_dump(mode="json"), "updated_at": at},
        )

    def update_patient(self, patient_id: str, identity: PatientIdentity, at: datetime) -> None:
        self.conn.execute(
            _UPDATE_PATIENT, {"pid": patient_id, "identity": identity.model_dump(mode="json"), "at": at}
        )

    def merge_patient(self, folded: str, *, into: str, identity: PatientIdentity, at: datetime) -> None:
        """Re-point every identifier and order of `folded` to `into`; keep `folded` as a tombstone."""
        self.conn.execute(_REPOINT_CROSSWALK, {"old": folded, "new": into})
        for order in self.orders_of_patient(folded):
            self.update_order(
                order.model_copy(
                    update={
                        "patient_id": into,
                        "patient": identity,
                        "version": order.version + 1,
                        "updated_at": at,
                    }
                )
            )
        self.conn.execute(_TOMBSTONE, {"old": folded, "new": into, "at": at})

    def order(self, order_id: str) -> TherapyOrder:
        row = self.conn.execute(_ORDER, {"oid": order_id}).one()
        return TherapyOrder.model_validate(row.document)

    def orders_of_patient(self, patient_id: str) -> list[TherapyOrder]:
        rows = self.conn.execute(_ORDERS_OF_PATIENT, {"pid": patient_id})
        return [TherapyOrder.model_validate(r.document) for r in rows]

    def insert_order(self, order: TherapyOrder) -> None:
        self.conn.execute(
            insert(_or),
            {
                "order_id": order.order_id,
                "coi": order.coi,
                "patient_id": order.patient_id,
                "status": order.status.value,
                "version": order.version,
                "document": order.model_dump(mode="json"),
                "created_at": order.created_at,
                "updated_at": order.updated_at,
            },
        )

    def update_order(self, order: TherapyOrder) -> None:
        result = self.conn.execute(
            _UPDATE_ORDER,
            {
                "oid": order.order_id,
                "expected": order.version - 1,
                "patient_id": order.patient_id,
                "status": order.status.value,
                "version": order.version,
                "document": order.model_dump(mode="json"),
                "updated_at": order.updated_at,
            },
        )
        if result.rowcount != 1:
            raise IntegrityError("order changed concurrently", None, Exception(order.order_id))


@dataclass
class PendingWrites:
    """The appends of a batch of messages (raw messages, answers, events, outbox, quarantine),
    written together, one statement a table, at the end of the transaction."""

    inbound: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)

    def message(
        self, inbound_id: str, record: InboundRecord, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        self.inbound.append(
            {
                "id": inbound_id,
                "partner": record.partner,
                "transport": record.transport,
                "adapter": record.adapter,
                "message_id": record.message_id,
                "received_at": record.received_at,
                "content_type": record.content_type,
                "raw": record.raw,
                "outcome": outcome,
                "reason": reason,
                "order_id": order_id,
            }
        )

    def answer(
        self, record: InboundRecord, inbound_id: str, answer: dict[str, Any], rendered: bytes | None
    ) -> None:
        self.answers.append(
            {
                "partner": record.partner,
                "message_id": record.message_id,
                "inbound_id": inbound_id,
                "outcome": answer["status"],
                "answer": answer,
                "rendered": rendered,
            }
        )

    def events(self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: str | None) -> None:
        for env in envelopes:
            self.timeline.append(
                {
                    "event_id": env.id,
                    "order_id": order_id,
                    "type": env.type,
                    "time": env.time,
                    "envelope": env.model_dump(mode="json"),
                    "inbound_id": inbound_id,
                }
            )
            self.outbox.append(
                {
                    "event_id": env.id,
                    "routing_key": env.routing_key,
                    "body": env.to_json(),
                    "created_at": env.time,
                }
            )

    def quarantined(
        self,
        *,
        quarantine_id: str,
        inbound_id: str,
        partner: str,
        reason: str,
        detail: str,
        commands: list[dict[str, Any]],
        at: datetime,
    ) -> None:
        self.quarantine.append(
            {
                "quarantine_id": quarantine_id,
                "inbound_id": inbound_id,
                "partner": partner,
                "reason": reason,
                "detail": detail,
                "command": {"commands": commands},
                "status": "open",
                "created_at": at,
            }
        )

    def flush(self, conn: Connection) -> None:
        # Raw messages first: answers and quarantine rows refer to them.
        for table, rows in (
            (t.inbound_messages, self.inbound),
            (t.idempotency_keys, self.answers),
            (t.quarantine, self.quarantine),
            (t.events, self.timeline),
            (t.outbox, self.outbox),
        ):
            if rows:
                conn.execute(insert(table), rows)


# -- read side, for the HTTP API and the CLI --------------------------------------------------
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

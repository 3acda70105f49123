"""Reads and writes of the service's transaction, over one SQLAlchemy connection (Core, no ORM)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
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


class Repository:
    """Everything the intake transaction reads and writes. Not thread-safe; one per transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # -- idempotency and raw messages ------------------------------------------------------
    async def previous_answer(
        self, partner: str, message_id: str
    ) -> tuple[dict[str, Any], bytes | None] | None:
        keys = t.idempotency_keys
        row = (
            await self.conn.execute(
                select(keys.c.answer, keys.c.rendered).where(
                    keys.c.partner == partner, keys.c.message_id == message_id
                )
            )
        ).first()
        return (dict(row.answer), row.rendered) if row else None

    async def save_inbound(self, record: InboundRecord, outcome: str) -> int:
        result = await self.conn.execute(
            insert(t.inbound_messages)
            .values(
                partner=record.partner,
                transport=record.transport,
                adapter=record.adapter,
                message_id=record.message_id,
                received_at=record.received_at,
                content_type=record.content_type,
                raw=record.raw,
                outcome=outcome,
            )
            .returning(t.inbound_messages.c.id)
        )
        return int(result.scalar_one())

    async def finish_inbound(
        self, inbound_id: int, outcome: str, reason: str | None, order_id: str | None
    ) -> None:
        await self.conn.execute(
            update(t.inbound_messages)
            .where(t.inbound_messages.c.id == inbound_id)
            .values(outcome=outcome, reason=reason, order_id=order_id)
        )

    async def remember_answer(
        self,
        partner: str,
        message_id: str,
        inbound_id: int,
        answer: dict[str, Any],
        rendered: bytes | None,
    ) -> None:
        await self.conn.execute(
            insert(t.idempotency_keys).values(
                partner=partner,
                message_id=message_id,
                inbound_id=inbound_id,
                outcome=answer["status"],
                answer=answer,
                rendered=rendered,
            )
        )

    # -- crosswalk ------------------------------------------------------------------------
    async def bindings(self, refs: Iterable[ExternalRef]) -> dict[ExternalRef, Binding]:
        wanted = {(r.namespace, r.value): r for r in refs}
        if not wanted:
            return {}
        cw = t.crosswalk
        rows = await self.conn.execute(
            select(cw.c.namespace, cw.c.value, cw.c.patient_id, cw.c.order_id).where(
                tuple_(cw.c.namespace, cw.c.value).in_(list(wanted))
            )
        )
        return {wanted[(r.namespace, r.value)]: Binding(r.patient_id, r.order_id) for r in rows}

    async def bind(
        self,
        refs: Iterable[ExternalRef],
        patient_id: str,
        order_id: str | None,
        at: datetime,
        inbound_id: int | None,
    ) -> None:
        rows = [
            {
                "namespace": r.namespace,
                "value": r.value,
                "patient_id": patient_id,
                "order_id": order_id if r.scope.value == "order" else None,
                "bound_at": at,
                "inbound_id": inbound_id,
            }
            for r in refs
        ]
        if rows:
            await self.conn.execute(insert(t.crosswalk), rows)

    # -- patients and orders ---------------------------------------------------------------
    async def patients(self, patient_ids: Iterable[str]) -> dict[str, PatientIdentity]:
        ids = set(patient_ids)
        if not ids:
            return {}
        rows = await self.conn.execute(
            select(t.patients.c.patient_id, t.patients.c.identity).where(t.patients.c.patient_id.in_(ids))
        )
        return {r.patient_id: PatientIdentity.model_validate(r.identity) for r in rows}

    async def save_patient(
        self, patient_id: str, identity: PatientIdentity, at: datetime, *, new: bool
    ) -> None:
        values = {"identity": identity.model_dump(mode="json"), "updated_at": at}
        if new:
            await self.conn.execute(insert(t.patients).values(patient_id=patient_id, **values))
        else:
            await self.conn.execute(
                update(t.patients).where(t.patients.c.patient_id == patient_id).values(**values)
            )

    async def merge_patient(self, folded: str, *, into: str, identity: PatientIdentity, at: datetime) -> None:
        """Re-point every identifier and order of `folded` to `into`; keep `folded` as a tombstone."""
        await self.conn.execute(
            update(t.crosswalk).where(t.crosswalk.c.patient_id == folded).values(patient_id=into)
        )
        for order in await self.orders_of_patient(folded):
            moved = order.model_copy(
                update={
                    "patient_id": into,
                    "patient": identity,
                    "version": order.version + 1,
                    "updated_at": at,
                }
            )
            await self.update_order(moved)
        await self.conn.execute(
            update(t.patients)
            .where(t.patients.c.patient_id == folded)
            .values(merged_into=into, updated_at=at)
        )

    async def order(self, order_id: str) -> TherapyOrder:
        row = (
            await self.conn.execute(
                select(t.orders.c.document).where(t.orders.c.order_id == order_id).with_for_update()
            )
        ).one()
        return TherapyOrder.model_validate(row.document)

    async def orders_of_patient(self, patient_id: str) -> list[TherapyOrder]:
        rows = await self.conn.execute(select(t.orders.c.document).where(t.orders.c.patient_id == patient_id))
        return [TherapyOrder.model_validate(r.document) for r in rows]

    async def insert_order(self, order: TherapyOrder) -> None:
        await self.conn.execute(insert(t.orders).values(**self._order_row(order)))

    async def update_order(self, order: TherapyOrder) -> None:
        result = await self.conn.execute(
            update(t.orders)
            .where(t.orders.c.order_id == order.order_id, t.orders.c.version == order.version - 1)
            .values(**self._order_row(order))
        )
        if result.rowcount != 1:
            raise IntegrityError("order changed concurrently", None, Exception(order.order_id))

    @staticmethod
    def _order_row(order: TherapyOrder) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "coi": order.coi,
            "patient_id": order.patient_id,
            "status": order.status.value,
            "version": order.version,
            "document": order.model_dump(mode="json"),
            "created_at": order.created_at,
            "updated_at": order.updated_at,
        }

    # -- events, outbox, quarantine --------------------------------------------------------
    async def add_events(
        self, envelopes: list[CloudEvent], order_id: str | None, inbound_id: int | None
    ) -> None:
        if not envelopes:
            return
        event_rows, box_rows = [], []
        for env in envelopes:
            doc = env.model_dump(mode="json")
            event_rows.append(
                {
                    "event_id": env.id,
                    "order_id": order_id,
                    "type": env.type,
                    "time": env.time,
                    "envelope": doc,
                    "inbound_id": inbound_id,
                }
            )
            box_rows.append(
                {
                    "event_id": env.id,
                    "routing_key": env.routing_key,
                    "body": env.to_json(),
                    "created_at": env.time,
                }
            )
        await self.conn.execute(insert(t.events), event_rows)
        await self.conn.execute(insert(t.outbox), box_rows)

    async def add_quarantine(
        self,
        quarantine_id: str,
        inbound_id: int,
        partner: str,
        reason: str,
        detail: str,
        commands: list[dict[str, Any]],
        at: datetime,
    ) -> None:
        await self.conn.execute(
            insert(t.quarantine).values(
                quarantine_id=quarantine_id,
                inbound_id=inbound_id,
                partner=partner,
                reason=reason,
                detail=detail,
                command={"commands": commands},
                status="open",
                created_at=at,
            )
        )


# -- read side, for the HTTP API and the CLI --------------------------------------------------
async def order_by_coi(conn: AsyncConnection, coi: str) -> TherapyOrder | None:
    row = (await conn.execute(select(t.orders.c.document).where(t.orders.c.coi == coi))).first()
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
        oldest = datetime.fromisoformat(oldest)
    return int(row[0]), oldest

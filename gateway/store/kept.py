"""The Messages port (gateway.ports.Messages) in the database: a partner reads back a message it
sent, as kept (an EPCIS capture job's outcome is the stored message and its answer)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import TransientError
from gateway.ports import KeptMessage
from gateway.store.tables import idempotency_keys, inbound_messages


class StoreMessages:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def kept(self, partner: str, inbound_id: str) -> KeptMessage | None:
        m, k = inbound_messages.c, idempotency_keys.c
        message = select(m.id, m.adapter, m.message_id, m.received_at, m.outcome, m.reason, m.raw).where(
            m.id == inbound_id, m.partner == partner
        )
        try:
            async with self.engine.connect() as conn:
                row = (await conn.execute(message)).first()
                answer = None
                if row is not None and row.message_id is not None:  # by the key's primary key
                    answered = select(k.rendered).where(
                        k.partner == partner, k.message_id == row.message_id, k.inbound_id == inbound_id
                    )
                    answer = (await conn.execute(answered)).scalar_one_or_none()
        except DBAPIError as exc:
            raise TransientError(detail=f"kept messages: {type(exc).__name__}") from exc
        if row is None:
            return None
        return KeptMessage(
            inbound_id=row.id,
            adapter=row.adapter,
            received_at=row.received_at,
            status=row.outcome,
            error=row.reason,
            raw=row.raw,
            answer=answer,
        )

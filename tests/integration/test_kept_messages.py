"""The Messages port over the database, on SQLite and PostgreSQL: a partner reads back a message it
sent (its outcome, raw bytes and the answer kept under its id), and nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.sdk import Messages
from gateway.store.kept import StoreMessages
from gateway.store.tables import idempotency_keys, inbound_messages

AT = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)


def message(inbound_id: str, partner: str, message_id: str | None, outcome: str) -> dict[str, object]:
    return {
        "id": inbound_id,
        "partner": partner,
        "transport": "http",
        "adapter": "epcis",
        "message_id": message_id,
        "received_at": AT,
        "content_type": "application/ld+json",
        "raw": b'{"type": "EPCISDocument"}',
        "outcome": outcome,
        "reason": None if outcome == "applied" else "DocumentRefused",
    }


async def test_a_partner_reads_its_own_messages_only(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(inbound_messages),
            [
                message("in-1", "courier-a", "msg_1", "applied"),
                message("in-2", "courier-a", "msg_2", "rejected"),
                message("in-3", "courier-b", "msg_1", "applied"),
            ],
        )
        await conn.execute(
            insert(idempotency_keys),
            [
                {
                    "partner": "courier-a",
                    "message_id": "msg_1",
                    "inbound_id": "in-1",
                    "outcome": "applied",
                    "answer": {},
                    "rendered": b'{"captureID": "in-1"}',
                    "content_hash": None,
                },
                {
                    "partner": "courier-b",
                    "message_id": "msg_1",
                    "inbound_id": "in-3",
                    "outcome": "applied",
                    "answer": {},
                    "rendered": b'{"captureID": "in-3"}',
                    "content_hash": None,
                },
            ],
        )
    store: Messages = StoreMessages(engine)
    kept = await store.kept("courier-a", "in-1")
    assert kept is not None
    assert (kept.status, kept.adapter, kept.answer) == ("applied", "epcis", b'{"captureID": "in-1"}')
    assert kept.raw == b'{"type": "EPCISDocument"}' and kept.received_at == AT
    refused = await store.kept("courier-a", "in-2")
    assert refused is not None and (refused.status, refused.error, refused.answer) == (
        "rejected",
        "DocumentRefused",
        None,
    )
    assert await store.kept("courier-b", "in-1") is None  # another's
    assert await store.kept("courier-a", "in-3") is None
    assert await store.kept("courier-a", "no-such") is None

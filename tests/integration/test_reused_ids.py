"""A message id is answered from its first answer only when the message says the same thing again:
other content under a used id is kept raw, refused (code 205, 409) and audited, and never touches
the first message's answer. At the intake on SQLite and PostgreSQL, and over HTTP /api/messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import verify
from gateway.service.intake import Intake
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.integration.test_fhir_support import running, settings
from tests.support.builders import envelope_json, event, place, placer
from tests.support.drive import AUTHORITY, send_raw

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}


def intake(engine: AsyncEngine) -> Intake:
    return Intake(engine, coi_facility="A9999", authority=AUTHORITY)


async def rows(engine: AsyncEngine, *columns: object, where: object = True) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(*columns).where(where))]  # type: ignore[call-overload]


async def count(engine: AsyncEngine, table: t.Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def reformatted(raw: bytes) -> bytes:
    """The same JSON document with other spacing and key order."""
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


# -- at the intake, on each database -----------------------------------------------------------
async def test_other_content_under_a_used_id_is_kept_refused_and_audited(engine: AsyncEngine) -> None:
    gate = intake(engine)
    a, b = envelope_json("X", place(1)), envelope_json("X", place(2))  # B: other patient, other order
    first, first_answer = await send_raw(gate, a)
    refused, refused_answer = await send_raw(gate, b)
    assert first.status == "applied"
    assert (refused.status, refused.error, refused.code, refused.http_status) == (
        "rejected",
        "DuplicateKey",
        "205",
        409,
    )
    assert not refused.duplicate and refused.inbound_id != first.inbound_id
    assert refused_answer is not None and orjson.loads(refused_answer)["title"] == "DuplicateKey"

    again, again_answer = await send_raw(gate, a)  # the first message keeps its id and its answer
    assert again.duplicate and again_answer == first_answer and again.inbound_id == first.inbound_id

    kept = await rows(engine, t.inbound_messages.c.id, t.inbound_messages.c.raw, t.inbound_messages.c.outcome)
    assert sorted(kept, key=lambda r: r[1]) == [  # type: ignore[arg-type, return-value]
        (first.inbound_id, a, "applied"),
        (refused.inbound_id, b, "rejected"),
    ]
    keys = await rows(engine, t.idempotency_keys.c.message_id, t.idempotency_keys.c.inbound_id)
    assert keys == [("X", first.inbound_id)]
    audit = await rows(engine, t.audit_records.c.action, t.audit_records.c.detail)
    assert [action for action, _ in audit] == ["order.placed", "message.rejected"]
    detail = audit[1][1]
    assert isinstance(detail, dict) and detail["inbound_id"] == refused.inbound_id
    assert detail["error"] == "DuplicateKey" and first.inbound_id in detail["reason"]
    assert await count(engine, t.orders) == 1 and await count(engine, t.outbox) == 1
    async with engine.connect() as conn:
        assert (await verify(conn)).ok


async def test_two_messages_under_one_id_in_one_batch_are_told_apart(engine: AsyncEngine) -> None:
    gate = intake(engine)
    a, b = envelope_json("X", place(1)), envelope_json("X", place(2))
    (first, first_answer), (repeat, repeat_answer), (other, _) = await asyncio.gather(
        send_raw(gate, a), send_raw(gate, a), send_raw(gate, b)
    )
    assert (first.status, first.duplicate) == ("applied", False)
    assert repeat.duplicate and repeat_answer == first_answer
    assert (other.status, other.error, other.code) == ("rejected", "DuplicateKey", "205")
    times = await rows(engine, t.audit_records.c.at)
    assert len(times) == 2 and times[0] == times[1]  # one transaction: they were one batch
    assert await count(engine, t.orders) == 1 and await count(engine, t.inbound_messages) == 2
    assert await rows(engine, t.idempotency_keys.c.inbound_id) == [(first.inbound_id,)]


async def test_two_gateways_taking_one_id_for_two_messages_at_once_keep_one(
    engine: AsyncEngine, database_url: str
) -> None:
    other_engine = create_engine(database_url)  # a second gateway process on the same database
    try:
        gates = [intake(engine), intake(other_engine)]
        for round_ in range(5):
            a, b = (
                envelope_json(f"R{round_}", place(2 * round_)),
                envelope_json(f"R{round_}", place(2 * round_ + 1)),
            )
            results = await asyncio.gather(send_raw(gates[0], a), send_raw(gates[1], b))
            outcomes = sorted(r[0].status for r in results)
            assert outcomes == ["applied", "rejected"], outcomes
            assert {r[0].error for r in results} == {None, "DuplicateKey"}
    finally:
        await dispose(other_engine)
    assert await count(engine, t.orders) == 5 and await count(engine, t.idempotency_keys) == 5
    assert await count(engine, t.inbound_messages) == 10


async def test_a_repeat_reformatted_is_still_a_repeat(engine: AsyncEngine) -> None:
    gate = intake(engine)
    raw = envelope_json("X", place(1))
    _, first_answer = await send_raw(gate, raw)
    again, again_answer = await send_raw(gate, reformatted(raw))
    assert again.duplicate and again_answer == first_answer
    assert await count(engine, t.inbound_messages) == 1


async def test_a_refused_message_leaves_its_id_free_for_the_corrected_one(engine: AsyncEngine) -> None:
    gate = intake(engine)
    await send_raw(gate, envelope_json("P", place(1)))
    early = envelope_json(
        "X", event("infusion.completed", placer("PO-000001"), infused_at="2026-11-09T08:00:00Z")
    )
    refused, _ = await send_raw(gate, early)
    assert refused.error == "IllegalTransition"
    again, _ = await send_raw(gate, early)  # processed anew, and refused anew: not a replay
    assert again.error == "IllegalTransition" and not again.duplicate
    assert again.inbound_id != refused.inbound_id
    corrected = envelope_json(
        "X", event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z")
    )
    applied, _ = await send_raw(gate, corrected)
    assert applied.status == "applied" and not applied.duplicate
    assert await rows(
        engine, t.idempotency_keys.c.message_id, where=t.idempotency_keys.c.message_id == "X"
    ) == [("X",)]


async def test_a_key_stored_before_hashes_answers_any_content_as_before(engine: AsyncEngine) -> None:
    gate = intake(engine)
    _, first_answer = await send_raw(gate, envelope_json("X", place(1)))
    async with engine.begin() as conn:
        await conn.execute(update(t.idempotency_keys).values(content_hash=None))
    again, again_answer = await send_raw(gate, envelope_json("X", place(2)))
    assert again.duplicate and again_answer == first_answer
    assert await count(engine, t.orders) == 1


# -- over HTTP ------------------------------------------------------------------------------
@pytest.fixture
async def client(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings(tmp_path, amqp_url)) as (_, http):
        yield http


async def test_http_replays_a_repeat_with_the_header_and_refuses_other_content(
    client: httpx.AsyncClient,
) -> None:
    raw = envelope_json("m1", place(1))
    first = await client.post("/api/messages", content=raw, headers=HOSPITAL)
    again = await client.post("/api/messages", content=reformatted(raw), headers=HOSPITAL)
    other = await client.post("/api/messages", content=envelope_json("m1", place(2)), headers=HOSPITAL)

    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert "duplicate" not in first.json()  # the body would be replayed: it cannot say which it is
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content

    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    assert "idempotent-replayed" not in other.headers
    problem = other.json()
    assert (problem["status"], problem["title"], problem["code"]) == (409, "DuplicateKey", "205")
    assert problem["message_id"] == "m1" and "new id" in problem["detail"]
    assert "Testpatient" not in other.text and "MRN" not in other.text

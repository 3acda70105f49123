"""The outbox relay and consumers against the real RabbitMQ."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.bus import topology
from gateway.bus.broker import Broker, Outgoing
from gateway.bus.consumer import EventConsumer
from gateway.bus.relay import OutboxRelay
from gateway.bus.topology import DEAD_QUEUE, UNROUTED, declare_consumer_queue
from gateway.canonical.envelope import CONTENT_TYPE, CloudEvent
from gateway.errors import TransientError
from gateway.service.intake import Intake
from gateway.service.notices import record_delivery_failure
from gateway.store import tables as t
from tests.support.builders import event, place
from tests.support.drive import AUTHORITY, send


async def drain(queue: AbstractQueue, settle: float = 1.0) -> list[AbstractIncomingMessage]:
    """Everything on the queue until it has been quiet for `settle` seconds."""
    out: list[AbstractIncomingMessage] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        out.append(message)
        quiet_since = time.monotonic()
    return out


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    yield await connection.channel()
    await connection.close()


async def test_an_applied_message_is_delivered_once_per_id(
    sqlite_engine: AsyncEngine, amqp_url: str, channel: aio_pika.abc.AbstractChannel
) -> None:
    queue = await declare_consumer_queue(channel, "test.orders", ["order.#"], delivery_limit=3)
    await queue.purge()
    relay = OutboxRelay(sqlite_engine, Broker(amqp_url), poll_seconds=0.05)
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY, on_commit=relay.wake)
    relay.start()
    try:
        outcomes = [await send(intake, place(n)) for n in range(1, 4)]
        messages = await drain(queue)
    finally:
        await relay.stop()
    await queue.delete(if_unused=False, if_empty=False)  # the vhost is shared by the session
    ids = [m.message_id for m in messages]
    assert sorted(ids) == sorted(o.event_ids[0] for o in outcomes)
    for message in messages:
        assert message.content_type == CONTENT_TYPE
        assert message.routing_key == "order.placed"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        envelope = CloudEvent.from_json(message.body)
        assert envelope.id == message.message_id and envelope.type == "org.cgt.order.placed"
    async with sqlite_engine.connect() as conn:
        unsent = (await conn.execute(select(t.outbox.c.id).where(t.outbox.c.sent_at.is_(None)))).all()
    assert unsent == []


async def test_events_nobody_binds_are_kept_not_dropped(
    sqlite_engine: AsyncEngine, fresh_amqp_url: str
) -> None:
    relay = OutboxRelay(sqlite_engine, Broker(fresh_amqp_url))
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY)
    await relay.broker.connect()
    connection = await aio_pika.connect(fresh_amqp_url)
    channel = await connection.channel()
    unrouted = await channel.get_queue(UNROUTED)
    await unrouted.purge()
    outcome = await send(intake, event("order.cancelled", *place(1).refs[1:]))  # quarantined
    assert await relay.run_once() == 1
    await relay.stop()
    kept = await drain(unrouted)
    await connection.close()
    assert [m.message_id for m in kept] == list(outcome.event_ids)


async def test_only_the_newest_unrouted_events_are_kept(
    fresh_amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topology, "UNROUTED_KEEP", 3)
    broker = Broker(fresh_amqp_url)
    batch = [Outgoing(f"e-{n}", "nobody.binds.this", b"{}") for n in range(5)]
    assert await broker.publish(batch) == [True] * 5  # confirmed: dropping the oldest is no refusal
    await broker.close()
    connection = await aio_pika.connect(fresh_amqp_url)
    unrouted = await (await connection.channel()).get_queue(UNROUTED)
    kept = await drain(unrouted, settle=0.5)
    await connection.close()
    assert [m.message_id for m in kept] == ["e-2", "e-3", "e-4"]


async def test_an_unrouted_queue_made_without_a_cap_is_used_as_it_is(
    fresh_amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    connection = await aio_pika.connect(fresh_amqp_url)
    channel = await connection.channel()
    # as an earlier version made it
    await channel.declare_queue(UNROUTED, durable=True, arguments={"x-queue-type": "quorum"})
    broker = Broker(fresh_amqp_url)
    assert await broker.publish([Outgoing("e-1", "nobody.binds.this", b"{}")]) == [True]
    await broker.close()
    assert f"queue {UNROUTED} exists with other arguments" in caplog.text
    kept = await drain(await channel.get_queue(UNROUTED), settle=0.5)
    await connection.close()
    assert [m.message_id for m in kept] == ["e-1"]


async def test_a_relay_killed_between_publish_and_mark_leaves_the_event_to_be_sent_again(
    sqlite_engine: AsyncEngine, amqp_url: str
) -> None:
    handled: list[str] = []

    async def handler(envelope: CloudEvent, conn: AsyncConnection) -> None:
        handled.append(envelope.id)

    consumer = EventConsumer(sqlite_engine, amqp_url, name="dedup", patterns=["order.#"], handler=handler)
    await consumer.start()
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY)
    outcome = await send(intake, place(1))

    crashing = OutboxRelay(sqlite_engine, Broker(amqp_url), lease_seconds=0.5)

    async def killed(*_: object, **__: object) -> None:
        raise SystemExit("relay killed after the broker confirmed, before marking sent")

    crashing.mark = killed  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await crashing.run_once()
    await crashing.broker.close()

    successor = OutboxRelay(sqlite_engine, Broker(amqp_url), lease_seconds=0.5)
    assert await successor.run_once() == 0  # the dead relay's lease still holds
    await asyncio.sleep(0.6)
    assert await successor.run_once() == 1  # lease expired: published again
    await successor.stop()

    deadline = time.monotonic() + 10
    while consumer.handled + consumer.duplicates < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await consumer.stop()
    assert handled == [outcome.event_ids[0]]
    assert consumer.duplicates == 1


async def test_consumer_failures_go_to_the_dead_letter_queue(
    sqlite_engine: AsyncEngine, amqp_url: str, channel: aio_pika.abc.AbstractChannel
) -> None:
    attempts: dict[str, int] = {}

    async def handler(envelope: CloudEvent, conn: AsyncConnection) -> None:
        attempts[envelope.subject or ""] = attempts.get(envelope.subject or "", 0) + 1
        if envelope.subject == transient_coi:
            raise TransientError("downstream is busy")
        raise ValueError("this consumer cannot take this event")

    dead = await channel.get_queue(DEAD_QUEUE)
    await dead.purge()

    async def alert(envelope: CloudEvent, deliveries: int, reason: str) -> None:
        await record_delivery_failure(
            sqlite_engine,
            envelope,
            partner="demo-hospital",
            adapter="test",
            attempts=deliveries,
            reason=reason,
        )

    consumer = EventConsumer(
        sqlite_engine,
        amqp_url,
        name="failing",
        patterns=["order.placed"],
        handler=handler,
        delivery_limit=3,
        on_dead_letter=alert,
    )
    await consumer.start()
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY)
    permanent = await send(intake, place(1))
    transient = await send(intake, place(2))
    transient_coi = transient.coi
    relay = OutboxRelay(sqlite_engine, Broker(amqp_url))
    assert await relay.run_once() == 2
    await relay.stop()
    dead_letters = await drain(dead, settle=2.0)
    await consumer.stop()
    assert sorted(m.message_id or "" for m in dead_letters) == sorted(
        [permanent.event_ids[0], transient.event_ids[0]]
    )
    assert attempts[permanent.coi or ""] == 1  # rejected at once
    assert attempts[transient_coi or ""] == 3  # retried up to the delivery limit, then given up
    async with sqlite_engine.connect() as conn:
        alerts = [
            r.envelope
            for r in await conn.execute(
                select(t.events.c.envelope).where(t.events.c.type == "org.cgt.delivery.failed")
            )
        ]
    assert sorted(a["data"]["event_id"] for a in alerts) == sorted(m.message_id for m in dead_letters)
    assert {a["data"]["attempts"] for a in alerts} == {1, 3}


async def test_a_partner_delivery_holds_no_database_lock(sqlite_engine: AsyncEngine, amqp_url: str) -> None:
    """While an outbound adapter waits on a partner, the intake still commits (SQLite has one writer)."""
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY)
    waiting, release = asyncio.Event(), asyncio.Event()
    delivered: list[str] = []

    async def deliver(envelope: CloudEvent) -> None:
        waiting.set()
        await release.wait()  # the partner is slow
        delivered.append(envelope.id)

    consumer = EventConsumer(
        sqlite_engine, amqp_url, name="slow-partner", patterns=["order.placed"], deliver=deliver
    )
    await consumer.start()
    first = await send(intake, place(1))
    relay = OutboxRelay(sqlite_engine, Broker(amqp_url))
    assert await relay.run_once() == 1
    await asyncio.wait_for(waiting.wait(), 10)
    second = await asyncio.wait_for(send(intake, place(2)), 10)  # would wait forever on a held lock
    assert second.status == "applied"
    release.set()
    deadline = time.monotonic() + 10
    while consumer.handled < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await relay.stop()
    await consumer.stop()
    assert delivered == [first.event_ids[0]]


async def test_a_consumer_queue_made_with_another_delivery_limit_is_used_as_it_is(
    channel: aio_pika.abc.AbstractChannel, caplog: pytest.LogCaptureFixture
) -> None:
    first = await declare_consumer_queue(channel, "test.limits", ["order.placed"], delivery_limit=3)
    again = await declare_consumer_queue(
        channel, "test.limits", ["order.placed", "order.cancelled"], delivery_limit=7
    )
    assert again.name == first.name
    assert "exists with other arguments" in caplog.text
    exchange = await channel.get_exchange("cgt.events")
    await exchange.publish(aio_pika.Message(b"{}", message_id="m-1"), routing_key="order.cancelled")
    delivered = await drain(again, settle=0.5)  # the new binding was made on the old queue
    await again.delete(if_unused=False, if_empty=False)
    assert [m.message_id for m in delivered] == ["m-1"]


async def test_housekeeping_deletes_what_is_old_and_done_and_keeps_the_rest(
    engine: AsyncEngine, amqp_url: str
) -> None:
    """Published outbox rows, consumers' marks and stale failed logins older than `keep` go; an
    unsent row stays however old (the relay still owes it), as do a running lock-out, recent
    ones and the events' timeline."""
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    old, recent = now - timedelta(days=8), now - timedelta(days=1)
    rows = [("old-sent", old, old), ("old-unsent", old, None), ("recent-sent", recent, recent)]
    async with engine.begin() as conn:
        for event_id, created, sent in rows:
            await conn.execute(
                insert(t.outbox).values(
                    event_id=event_id,
                    routing_key="order.placed",
                    body=b"{}",
                    created_at=created,
                    sent_at=sent,
                )
            )
        for event_id, at in (("old-sent", old), ("recent-sent", recent)):
            await conn.execute(
                insert(t.consumed_events).values(consumer="c", event_id=event_id, consumed_at=at)
            )
        # failed logins in a row: stale ones count for nothing, a lock still running does
        for name, failed_at, locked_until in (
            ("stale", old, None),
            ("stale-lock", old, old + timedelta(minutes=15)),
            ("locked-for-long", old, now + timedelta(days=1)),
            ("recent", recent, None),
        ):
            await conn.execute(
                insert(t.login_failures).values(
                    name=name, failures=3, last_failed_at=failed_at, locked_until=locked_until
                )
            )
    relay = OutboxRelay(engine, Broker(amqp_url), keep=timedelta(days=7), clock=lambda: now)
    assert await relay.housekeep() == 4
    async with engine.connect() as conn:
        outbox = set((await conn.execute(select(t.outbox.c.event_id))).scalars())
        marks = set((await conn.execute(select(t.consumed_events.c.event_id))).scalars())
        logins = set((await conn.execute(select(t.login_failures.c.name))).scalars())
    assert outbox == {"old-unsent", "recent-sent"}
    assert marks == {"recent-sent"}
    assert logins == {"locked-for-long", "recent"}
    assert await relay.housekeep() == 0  # nothing more is old and done


async def test_the_relay_survives_an_error_nobody_foresaw_and_publishes_on(
    sqlite_engine: AsyncEngine, amqp_url: str
) -> None:
    """A channel closed between the check and the publish raised a RuntimeError from aiormq,
    which ended the relay's task: nothing was published again until a restart. Now a broker
    error of any kind is a failed publish, and anything else is logged and retried."""
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY)
    await send(intake, place(1))
    relay = OutboxRelay(sqlite_engine, Broker(amqp_url), lease_seconds=0.2, max_backoff=0.2)
    publish, failures = (
        relay.broker.publish,
        [aiormq.exceptions.ChannelInvalidStateError("closed"), RuntimeError("?")],
    )

    async def flaky(batch: list[Outgoing]) -> list[bool]:
        if failures:
            raise failures.pop(0)
        return await publish(batch)

    relay.broker.publish = flaky  # type: ignore[method-assign]
    relay.start()
    try:
        deadline = time.monotonic() + 10
        while relay.published == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    assert not failures and relay.published == 1


async def test_a_closed_channel_is_a_failed_publish_not_an_error(amqp_url: str) -> None:
    broker = Broker(amqp_url)
    exchange = await broker.connect()

    async def closed(*_: object, **__: object) -> None:
        raise aiormq.exceptions.ChannelInvalidStateError("closed")

    exchange.publish = closed  # type: ignore[method-assign]
    try:
        assert await broker.publish([Outgoing("e1", "order.placed", b"{}")]) == [False]
        assert broker.last_error == "ChannelInvalidStateError"
    finally:
        await broker.close()

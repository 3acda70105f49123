"""docs/examples/consumer.py, the README's consumer, run as it is against the real RabbitMQ while
the gateway's intake and outbox relay publish: it receives each event once, repeats included."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import aio_pika
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bus.broker import Broker
from gateway.bus.relay import OutboxRelay
from gateway.bus.topology import declare_topology
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send

CONSUMER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "consumer.py"


async def line(process: asyncio.subprocess.Process) -> dict[str, object]:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), 20)
    assert raw, "the consumer ended early"
    return dict(json.loads(raw))


async def test_the_readme_consumer_gets_each_event_once(sqlite_engine: AsyncEngine, amqp_url: str) -> None:
    queue = f"test.example-consumer.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await declare_topology(channel)  # as the gateway does when it starts
    env = {**os.environ, "AMQP_URL": amqp_url, "QUEUE": queue, "PATTERNS": "order.placed", "MAX_EVENTS": "2"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CONSUMER), env=env, stdout=asyncio.subprocess.PIPE
    )
    relay = OutboxRelay(sqlite_engine, Broker(amqp_url), poll_seconds=0.05)
    intake = Intake(sqlite_engine, coi_facility="A9999", authority=AUTHORITY, on_commit=relay.wake)
    relay.start()
    try:
        assert await line(process) == {"bound": ["order.placed"]}
        first = await send(intake, place(1))
        assert await line(process) == {
            "id": first.event_ids[0],
            "type": "org.cgt.order.placed",
            "subject": first.coi,
        }
        async with sqlite_engine.connect() as conn:
            body = (
                await conn.execute(select(t.outbox.c.body).where(t.outbox.c.event_id == first.event_ids[0]))
            ).scalar_one()
        repeat = aio_pika.Message(
            body, message_id=first.event_ids[0], content_type="application/cloudevents+json"
        )
        await exchange.publish(repeat, routing_key="order.placed")  # at least once: the same event again
        second = await send(intake, place(2))
        assert await line(process) == {
            "id": second.event_ids[0],
            "type": "org.cgt.order.placed",
            "subject": second.coi,
        }
        assert await asyncio.wait_for(process.wait(), 20) == 0  # two events seen: the repeat was not one
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await relay.stop()
        await channel.queue_delete(queue)
        await connection.close()

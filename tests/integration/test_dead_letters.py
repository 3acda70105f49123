"""`cgt-gateway dead-letters list|redeliver` as real processes, against the real RabbitMQ and a real
database (SQLite and PostgreSQL): an outbound delivery given up (`delivery.failed`, dead-lettered,
settled) is listed without being moved, then sent back by an operator once the cause is fixed,
audited, and delivered by its consumer as if for the first time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bus.topology import DEAD_QUEUE
from gateway.errors import GatewayError
from gateway.sdk import Retry
from gateway.store import tables as t
from tests.integration.test_outbound_runner import (
    Recorder,
    World,
    alerted,
    eventually,
    has_delivered,
    world_on,
)
from tests.support.builders import place
from tests.support.drive import send

CLI = str(Path(sys.executable).parent / "cgt-gateway")


@pytest.fixture
async def world(engine: AsyncEngine, fresh_amqp_url: str) -> AsyncIterator[World]:
    async for w in world_on(engine, fresh_amqp_url):
        yield w


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CGT_ENV": "test",
        "CGT_AMQP_URL": world.runtime.settings.amqp_url,
        "CGT_DATABASE_URL": world.engine.url.render_as_string(hide_password=False),
    }
    return subprocess.run(
        [CLI, "dead-letters", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def dead_count(world: World) -> int:
    connection = await aio_pika.connect(world.runtime.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


def dead_letters_are(world: World, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await dead_count(world) == n

    return check


async def redelivered_audit(world: World) -> list[tuple[str, str | None, dict[str, str]]]:
    a = t.audit_records.c
    async with world.engine.connect() as conn:
        rows = await conn.execute(
            select(a.actor, a.subject, a.detail).where(a.action == "delivery.redelivered").order_by(a.seq)
        )
        return [(r.actor, r.subject, dict(r.detail)) for r in rows]


async def test_a_given_up_delivery_is_listed_then_sent_back_and_delivered(world: World) -> None:
    # the destination refuses the first delivery outright: given up at once, dead-lettered
    recorder = Recorder(failures={"order.placed": [GatewayError("the courier's API said no")]})
    runner = await world.runner("demo-hospital", recorder, Retry(tries=1, deliveries=1, backoff=0.01))
    consumer = runner.destination.name
    placed = await send(world.intake, place(7))
    event_id = placed.event_ids[0]
    await eventually(alerted(world, 1))
    await eventually(lambda: world.runtime.deliveries.settled(consumer, event_id))
    await eventually(dead_letters_are(world, 1))

    listed = cli(world, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)
    assert letter["event_id"] == event_id and letter["type"] == "org.cgt.order.placed"
    assert letter["subject"] == placed.coi
    assert letter["queue"] == f"cgt.consumer.{consumer}" and letter["consumer"] == consumer
    assert letter["reason"] == "rejected" and letter["at"] is not None
    assert await dead_count(world) == 1  # listing moved nothing

    # for real, an operator must be named; a dry run changes nothing
    assert cli(world, "redeliver", event_id).returncode == 2
    dry = cli(world, "redeliver", event_id, "--dry-run")
    assert dry.returncode == 0 and f"would send back {event_id}" in dry.stdout
    assert await dead_count(world) == 1 and await redelivered_audit(world) == []
    assert recorder.delivered == []

    # the cause is fixed (the scripted refusal was the only one): sent back and delivered
    sent = cli(world, "redeliver", event_id, "--operator", "alice")
    assert sent.returncode == 0, sent.stderr
    assert f"sent back {event_id} to cgt.consumer.{consumer}" in sent.stdout
    await eventually(has_delivered(recorder, 1))
    assert recorder.delivered[0][1] == event_id
    await eventually(lambda: world.runtime.deliveries.settled(consumer, event_id))
    assert await dead_count(world) == 0
    assert await redelivered_audit(world) == [
        (
            "operator:alice",
            placed.coi,
            {"event_id": event_id, "queue": f"cgt.consumer.{consumer}", "given_up_for": "rejected"},
        )
    ]
    assert len(await world.alerts()) == 1  # no second delivery.failed

    # an id that is not among the dead letters is said so, and fails
    missing = cli(world, "redeliver", "no-such-event", "--operator", "alice")
    assert missing.returncode == 1 and "no-such-event: not among the dead letters" in missing.stderr
    assert cli(world, "list").stdout.strip() == "no dead letters"


async def test_a_dead_letter_whose_queue_is_gone_stays_where_it_is(world: World) -> None:
    recorder = Recorder(failures={"order.placed": [GatewayError("no")]})
    runner = await world.runner("demo-hospital", recorder, Retry(tries=1, deliveries=1, backoff=0.01))
    placed = await send(world.intake, place(8))
    await eventually(alerted(world, 1))
    await eventually(dead_letters_are(world, 1))
    # the destination is removed from the configuration, and its queue with it
    await runner.stop()
    world.runners.remove(runner)
    connection = await aio_pika.connect(world.runtime.settings.amqp_url)
    await (await connection.channel()).queue_delete(f"cgt.consumer.{runner.destination.name}")
    await connection.close()

    event_id = placed.event_ids[0]
    sent = cli(world, "redeliver", "--all", "--operator", "alice")
    assert sent.returncode == 1 and f"{event_id}: the queue cgt.consumer." in sent.stderr
    assert "no longer exists" in sent.stderr and "sent back" not in sent.stdout
    assert await dead_count(world) == 1 and await redelivered_audit(world) == []


def test_an_unreachable_broker_is_said_in_a_line() -> None:
    env = {**os.environ, "CGT_ENV": "test", "CGT_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}
    listed = subprocess.run(
        [CLI, "dead-letters", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 1 and "the message broker is unreachable" in listed.stderr
    assert "Traceback" not in listed.stderr

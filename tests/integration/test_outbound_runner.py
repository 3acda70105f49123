"""The SDK's outbound runner against the real RabbitMQ and a real database (SQLite and PostgreSQL):
orders committed through the intake, published by the outbox relay, delivered to a recording
destination. Retries with backoff, `delivery.failed` after the limit, each order's events in
commit order, and a destination that sees only its own view of the order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bus.broker import Broker, Outgoing
from gateway.bus.relay import OutboxRelay
from gateway.bus.topology import DEAD_QUEUE
from gateway.canonical.ids import ExternalRef
from gateway.errors import GatewayError, TransientError
from gateway.identity.authorise import load_assignments
from gateway.identity.disclosure import load_disclosure
from gateway.partners import SHARED_NAMESPACES
from gateway.sdk import CloudEvent, Destination, OrderView, OutboundRunner, Retry
from gateway.service.deliveries import StoreDeliveries
from gateway.service.intake import Intake
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.views import StoreViews
from tests.support.builders import coi, event, place
from tests.support.drive import AUTHORITY, PARTNERS, send

Request = tuple[str, str, OrderView]  # routing key, event id, the view it was rendered from


@dataclass
class Recorder:
    """A destination's transport: raises the failures scripted for an event's routing key or for
    one of its order's identifiers' values (one a try, in turn), then records the request."""

    failures: dict[str, list[Exception]] = field(default_factory=dict)
    delivered: list[Request] = field(default_factory=list)
    tries: list[tuple[str, float]] = field(default_factory=list)

    def render(self, event: CloudEvent, view: OrderView, profile: str) -> Request | None:
        assert profile == "the destination's profile"
        return (event.routing_key, event.id, view)

    async def deliver(self, request: Request) -> None:
        self.tries.append((request[0], time.monotonic()))
        keys = (request[0], *(r.value for r in request[2].refs))
        scripted = next((self.failures[k] for k in keys if self.failures.get(k)), None)
        if scripted:
            raise scripted.pop(0)
        self.delivered.append(request)


@dataclass
class Runtime:
    settings: Settings
    orders: StoreViews
    deliveries: StoreDeliveries


@dataclass
class World:
    engine: AsyncEngine
    intake: Intake
    relay: OutboxRelay
    runtime: Runtime
    runners: list[OutboundRunner[str, Request]] = field(default_factory=list)

    async def runner(
        self,
        partner: str,
        outbound: Recorder,
        retry: Retry,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> OutboundRunner[str, Request]:
        destination = Destination(
            f"test-{uuid.uuid4().hex[:8]}",
            PARTNERS.get(partner),
            "test-adapter",
            "the destination's profile",
            ("order.#", "collection.#"),
            retry,
        )
        runner = OutboundRunner(self.runtime, destination, outbound, **({"sleep": sleep} if sleep else {}))
        await runner.open()  # bound before anything is committed
        self.runners.append(runner)
        return runner

    async def coi_of(self, order_id: str) -> str:
        async with self.engine.connect() as conn:
            return str(
                (
                    await conn.execute(select(t.orders.c.coi).where(t.orders.c.order_id == order_id))
                ).scalar_one()
            )

    async def alerts(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.events.c.envelope).where(t.events.c.type == "org.cgt.delivery.failed")
            )
            return [dict(r.envelope) for r in rows]


async def world_on(engine: AsyncEngine, amqp_url: str, *, relay_running: bool = True) -> AsyncIterator[World]:
    settings = Settings(env="test", amqp_url=amqp_url)
    relay = OutboxRelay(engine, Broker(amqp_url), poll_seconds=0.05)
    intake = Intake(
        engine, coi_facility="A9999", authority=AUTHORITY, on_commit=relay.wake if relay_running else None
    )
    views = StoreViews(
        engine,
        load_assignments(settings.assignments_file, PARTNERS),
        load_disclosure(settings.disclosure_dir, PARTNERS),
    )
    world = World(engine, intake, relay, Runtime(settings, views, StoreDeliveries(engine)))
    if relay_running:
        relay.start()
    try:
        yield world
    finally:
        for runner in world.runners:
            await runner.stop()
        await relay.stop()
        await views.close()


@pytest.fixture
async def world(engine: AsyncEngine, amqp_url: str) -> AsyncIterator[World]:
    async for w in world_on(engine, amqp_url):
        yield w


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


def has_delivered(recorder: Recorder, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(recorder.delivered) == n

    return check


def alerted(world: World, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await world.alerts()) == n

    return check


async def test_transient_failures_are_retried_with_doubling_backoff_then_delivered_once(world: World) -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    recorder = Recorder(failures={"order.placed": [TransientError("down")] * 3})
    retry = Retry(tries=2, deliveries=3, backoff=0.1, max_backoff=0.3)
    runner = await world.runner("demo-hospital", recorder, retry, sleep=sleep)
    placed = await send(world.intake, place(1))

    await eventually(has_delivered(recorder, 1))
    assert [key for key, _ in recorder.tries] == ["order.placed"] * 4
    assert delays == [0.1, 0.2, 0.3]  # after each failed try, doubling, capped at max_backoff
    assert recorder.delivered[0][1] == placed.event_ids[0]
    # settled in the ledger just after the delivery: on a loaded machine, a moment later
    await eventually(lambda: world.runtime.deliveries.settled(runner.destination.name, placed.event_ids[0]))
    assert runner.delivered == 1 and await world.alerts() == []


async def test_after_the_delivery_limit_the_event_is_given_up_with_delivery_failed(
    engine: AsyncEngine, fresh_amqp_url: str
) -> None:
    async for world in world_on(engine, fresh_amqp_url):
        recorder = Recorder(
            failures={
                "order.placed": [TransientError("down")] * 10,
                "collection.completed": [GatewayError("refused")],
            }
        )
        runner = await world.runner("demo-hospital", recorder, Retry(tries=2, deliveries=3, backoff=0.01))
        placed = await send(world.intake, place(2))
        collected = await send(
            world.intake,
            event("collection.completed", coi(placed.coi or ""), collected_at="2026-11-10T13:00:00Z"),
        )

        await eventually(alerted(world, 2))
        alerts = {a["data"]["event_id"]: a for a in await world.alerts()}
        transient, refused = alerts[placed.event_ids[0]], alerts[collected.event_ids[0]]
        assert transient["data"]["attempts"] == 3 and refused["data"]["attempts"] == 1  # a refusal: at once
        assert transient["subject"] == placed.coi and transient["data"]["partner"] == "demo-hospital"
        assert {a["data"]["adapter"] for a in alerts.values()} == {"test-adapter"}
        assert [key for key, _ in recorder.tries] == ["order.placed"] * 6 + ["collection.completed"]
        assert recorder.delivered == [] and runner.given_up == 2
        connection = await aio_pika.connect(fresh_amqp_url)
        channel = await connection.channel()
        dead = await channel.declare_queue(DEAD_QUEUE, passive=True)
        ids = set()
        while (message := await dead.get(no_ack=True, fail=False)) is not None:
            ids.add(message.message_id)
        await connection.close()
        assert ids == set(alerts)  # both on cgt.dead, and each settled: never delivered again
        for event_id in ids:
            assert await world.runtime.deliveries.settled(runner.destination.name, event_id)


async def test_a_failing_event_holds_back_the_later_ones_of_its_order_not_other_orders(world: World) -> None:
    recorder = Recorder(failures={"PO-000003": [TransientError("down")] * 2})
    await world.runner("demo-hospital", recorder, Retry(tries=1, deliveries=5, backoff=0.4))
    first = await send(world.intake, place(3))
    later = await send(
        world.intake, event("collection.completed", coi(first.coi or ""), collected_at="2026-11-10T13:00:00Z")
    )
    other = await send(world.intake, place(4))

    await eventually(has_delivered(recorder, 3))
    order = [event_id for _, event_id, _ in recorder.delivered]
    assert order.index(first.event_ids[0]) < order.index(later.event_ids[0])
    assert order[0] == other.event_ids[0]  # another order's event does not wait behind the failing one


async def test_an_event_published_before_an_earlier_one_of_its_order_waits_for_it(
    engine: AsyncEngine, amqp_url: str
) -> None:
    async for world in world_on(engine, amqp_url, relay_running=False):
        recorder = Recorder()
        await world.runner("demo-hospital", recorder, Retry(backoff=0.01, hold=0.5))
        first = await send(world.intake, place(5))
        later = await send(
            world.intake,
            event("collection.completed", coi(first.coi or ""), collected_at="2026-11-10T13:00:00Z"),
        )
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(t.outbox.c.event_id, t.outbox.c.routing_key, t.outbox.c.body))
            ).all()
        outgoing = {r.event_id: Outgoing(r.event_id, r.routing_key, r.body) for r in rows}
        broker = Broker(amqp_url)
        assert await broker.publish([outgoing[later.event_ids[0]]]) == [True]  # the later one first
        await asyncio.sleep(0.3)
        assert recorder.delivered == []  # waiting for the earlier one, within the hold
        assert await broker.publish([outgoing[first.event_ids[0]]]) == [True]

        await eventually(has_delivered(recorder, 2))
        assert [r[1] for r in recorder.delivered] == [first.event_ids[0], later.event_ids[0]]

        # An earlier event that never comes is waited for `hold` seconds, then passed.
        third = await send(world.intake, place(6))
        fourth = await send(
            world.intake,
            event("collection.completed", coi(third.coi or ""), collected_at="2026-11-10T13:00:00Z"),
        )
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.outbox.c.routing_key, t.outbox.c.body).where(
                        t.outbox.c.event_id == fourth.event_ids[0]
                    )
                )
            ).one()
        published = time.monotonic()
        assert await broker.publish([Outgoing(fourth.event_ids[0], row.routing_key, row.body)]) == [True]

        await eventually(has_delivered(recorder, 3))
        assert time.monotonic() - published >= 0.5 and recorder.delivered[2][1] == fourth.event_ids[0]
        await broker.close()


async def test_each_destination_sees_only_its_own_view_of_the_order(world: World) -> None:
    hospital, manufacturer, courier = Recorder(), Recorder(), Recorder()
    retry = Retry(backoff=0.01)
    await world.runner("demo-hospital", hospital, retry)
    await world.runner("demo-manufacturer", manufacturer, retry)
    courier_runner = await world.runner("demo-courier", courier, retry)
    placed = await send(world.intake, place(7))
    batch = ExternalRef(namespace="mes:demo-manufacturer:order", value="MO-000007")
    accepted = await send(
        world.intake,
        event(
            "order.accepted",
            coi(placed.coi or ""),
            batch,
            binds=(batch,),
            accepted_by={"id": "demo-manufacturer"},
        ),
        partner="demo-manufacturer",
    )
    assert accepted.status == "applied", accepted

    async def heard() -> bool:
        return (
            len(hospital.delivered) == 2 and len(manufacturer.delivered) == 2 and courier_runner.handled == 2
        )

    await eventually(heard)
    assert courier.delivered == []  # no shipment with the courier: not its order

    def namespaces(recorder: Recorder) -> set[str]:
        return {r.namespace for r in recorder.delivered[-1][2].refs}

    assert namespaces(hospital) == {"coi", "site:demo-hospital:mrn", "site:demo-hospital:placer-order"}
    assert namespaces(manufacturer) == {"coi", "mes:demo-manufacturer:order"}
    for recorder, partner in ((hospital, "demo-hospital"), (manufacturer, "demo-manufacturer")):
        own = PARTNERS.get(partner).own_namespace
        assert all(n in SHARED_NAMESPACES or n.startswith(own) for n in namespaces(recorder))
    # The placing message's id goes only to the partner that sent it.
    assert hospital.delivered[-1][2].placing_message_id is not None
    assert manufacturer.delivered[-1][2].placing_message_id is None

"""The MES queues on the real RabbitMQ and SQLite: `cgt.inbound.mes.<manufacturer>` takes
CloudEvents and B2MML by content type; a message is acked only after its commit (a consumer cut
off after the commit gets it again, and the repeat is de-duplicated); a poison message is
dead-lettered with its reason; one manufacturer's stuck queue does not hold up another's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select

from adapters.mes.inbound.adapter import adapter as mes
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.partners import Partner
from gateway.sdk import Adapter, Door, InboundQueues
from gateway.sdk.queues import DIRECT_REPLY, ERROR_HEADER, REASON_HEADER, inbound_queue_name
from gateway.service.outcome import Outcome
from gateway.store import tables as t
from tests.integration.test_inbound_queues import Flaky, dead_letter, until
from tests.support import mes as m

DEMO = "demo-manufacturer"
CE = "application/cloudevents+json"


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    # `mes` is not enabled: each test starts the MES transport itself, on the runtime it wants
    gw = bootstrap(m.settings(tmp_path, amqp_url, "canonical-json,mes-cloudevents,mes-b2mml"))
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    ch = await connection.channel()
    yield ch
    for name in (inbound_queue_name("mes", DEMO), inbound_queue_name("mes", m.OTHER), "cgt.dead"):
        await ch.queue_delete(name)
    await connection.close()


@dataclass
class HeldDoor:
    """The real door (in a `Flaky` runtime); for `held` partners, each message waits after its commit until released."""

    door: Door
    held: set[str] = field(default_factory=set)
    committed: list[Outcome] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def accept(
        self, adapter: Adapter, partner: Partner, raw: bytes, **kw: Any
    ) -> tuple[Outcome, bytes | None]:
        found = await self.door.accept(adapter, partner, raw, **kw)
        self.committed.append(found[0])
        if partner.id in self.held:
            await self.release.wait()
        return found


async def publish(
    channel: AbstractChannel, body: bytes, content_type: str | None = CE, partner: str = DEMO
) -> None:
    message = aio_pika.Message(body, headers={"partner": partner}, content_type=content_type)
    await channel.default_exchange.publish(message, routing_key=inbound_queue_name("mes", partner))


async def events(gw: Gateway, name: str) -> int:
    query = select(func.count()).select_from(t.events).where(t.events.c.type == f"org.cgt.{name}")
    async with gw.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_both_dialects_on_one_queue_are_applied_and_acked(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    queues = await mes.start_transport(gateway)
    assert isinstance(queues, InboundQueues)
    try:
        order = await m.collected_order(gateway.door, gateway.partners, 1)
        await publish(channel, m.received(order, "mes-q-1", m.din(1)))
        await until(lambda: queues.handled == 1)
        await publish(channel, m.b2mml_started(order, "BOD-Q-1", "B-Q-1"), content_type="application/xml")
        await until(lambda: queues.handled == 2)
        assert await events(gateway, "manufacturing.material_received") == 1
        assert await events(gateway, "manufacturing.started") == 1
        declared = await channel.declare_queue(inbound_queue_name("mes", DEMO), passive=True)
        assert declared.declaration_result.message_count == 0
        async with gateway.engine.connect() as conn:
            rows = (
                await conn.execute(select(t.inbound_messages.c.adapter, t.inbound_messages.c.transport))
            ).all()
        assert sorted(r.adapter for r in rows if r.transport == "amqp") == ["mes-b2mml", "mes-cloudevents"]
    finally:
        await queues.stop()


async def test_a_message_is_acked_after_its_commit_and_a_redelivery_is_de_duplicated(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    held = HeldDoor(gateway.door, held={DEMO})
    first = await mes.start_transport(Flaky(gateway, held))  # type: ignore[arg-type]
    order = await m.collected_order(gateway.door, gateway.partners, 2)
    await publish(channel, m.received(order, "mes-q-2", m.din(2)))
    await until(lambda: len(held.committed) == 1)
    assert held.committed[0].status == "applied"
    await first.stop()  # cut off after the commit, before the ack: the broker keeps the message
    held.release.set()
    again = await mes.start_transport(gateway)
    assert isinstance(again, InboundQueues)
    try:
        await until(lambda: again.handled == 1)  # delivered again, answered as the repeat it is
        assert await events(gateway, "manufacturing.material_received") == 1
        async with gateway.engine.connect() as conn:
            kept = (await conn.execute(select(func.count()).select_from(t.inbound_messages))).scalar_one()
        assert kept == 3  # the order, the collection, the receipt: once
    finally:
        await again.stop()


@pytest.mark.parametrize(
    ("body", "content_type", "error", "reason"),
    [
        (b"{not json", CE, "MalformedMessage", "the body is not JSON"),
        (b"<a:x>undeclared</a:x>", "application/xml", "MalformedMessage", "undeclared namespace prefix"),
        (b"COI;DIN\n", "text/csv", "UnsupportedMessage", "content type text/csv is not an MES dialect"),
        (
            b'<?xml version="1.0"?><SyncProductionPerformance xmlns="http://www.wbf.org/xml/B2MML-V0401"/>',
            "application/xml",
            "UnsupportedMessage",
            "B2MML V0401 is not taken",
        ),
    ],
)
async def test_a_poison_message_is_dead_lettered_with_its_reason(
    gateway: Gateway, channel: AbstractChannel, body: bytes, content_type: str, error: str, reason: str
) -> None:
    queues = await mes.start_transport(gateway)
    assert isinstance(queues, InboundQueues)
    try:
        await publish(channel, body, content_type=content_type)
        dead = await dead_letter(channel)
        assert dead.body == body and dead.headers["partner"] == DEMO
        assert dead.headers[ERROR_HEADER] == error
        assert reason in str(dead.headers[REASON_HEADER])
        assert queues.dead_lettered == 1 and queues.handled == 0
    finally:
        await queues.stop()


async def test_a_sender_that_asks_is_answered_on_its_direct_reply_to(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    queues = await mes.start_transport(gateway)
    assert isinstance(queues, InboundQueues)
    answers: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    replies = await channel.get_queue(DIRECT_REPLY, ensure=False)
    await replies.consume(answers.put, no_ack=True)

    async def ask(body: bytes, correlation: str, content_type: str = CE) -> dict[str, Any]:
        message = aio_pika.Message(
            body,
            headers={"partner": DEMO},
            content_type=content_type,
            reply_to=DIRECT_REPLY,
            correlation_id=correlation,
        )
        await channel.default_exchange.publish(message, routing_key=inbound_queue_name("mes", DEMO))
        answer = await asyncio.wait_for(answers.get(), 10)
        assert answer.correlation_id == correlation
        return {**orjson.loads(answer.body), "repeat": (answer.headers or {}).get("x-cgt-repeat")}

    try:
        order = await m.collected_order(gateway.door, gateway.partners, 6)
        applied = await ask(m.received(order, "mes-q-6", m.din(6)), "c-1")
        assert applied["status"] == "applied" and applied["message_id"] == "mes-q-6"
        again = await ask(m.received(order, "mes-q-6", m.din(6)), "c-2")  # the repeat: the same answer
        assert again["inbound_id"] == applied["inbound_id"] and again["repeat"] == "true"
        assert applied["repeat"] is None
        refused = await ask(b"{not json", "c-3")
        assert refused["outcome"] == "rejected" and refused["title"] == "MalformedMessage"
        # a reply_to naming a queue is not answered: the gateway publishes into no partner's queue
        other = await channel.declare_queue("", exclusive=True)
        message = aio_pika.Message(
            m.received(order, "mes-q-7", m.din(6)),
            headers={"partner": DEMO},
            content_type=CE,
            reply_to=other.name,
        )
        await channel.default_exchange.publish(message, routing_key=inbound_queue_name("mes", DEMO))
        await until(lambda: queues.handled == 3)
        await asyncio.sleep(0.2)
        assert (await other.get(fail=False)) is None
    finally:
        await queues.stop()


async def test_one_manufacturers_stuck_queue_does_not_hold_up_another(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    held = HeldDoor(gateway.door, held={DEMO})
    queues = await mes.start_transport(Flaky(gateway, held))  # type: ignore[arg-type]
    assert isinstance(queues, InboundQueues)
    try:
        theirs = await m.collected_order(gateway.door, gateway.partners, 3)
        ours = await m.collected_order(gateway.door, gateway.partners, 4, product=m.OTHER_PRODUCT)
        for i in range(30):  # the demo manufacturer's queue: its first messages hang, poison follows
            await publish(channel, m.received(theirs, f"stuck-{i}", m.din(3)) if i < 5 else b"{poison")
        await until(lambda: len(held.committed) >= 1)
        await publish(channel, m.received(ours, "other-1", m.din(4)), partner=m.OTHER)
        await until(lambda: queues.handled == 1)
        assert held.committed[-1].partner == m.OTHER and held.committed[-1].status == "applied"
    finally:
        held.release.set()
        await queues.stop()


async def test_a_manufacturer_may_not_act_on_an_order_not_assigned_to_it(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    queues = await mes.start_transport(gateway)
    assert isinstance(queues, InboundQueues)
    try:
        others = await m.collected_order(gateway.door, gateway.partners, 5, product=m.OTHER_PRODUCT)
        await publish(channel, m.received(others, "not-mine-1", m.din(5)))  # the demo manufacturer, on S7777
        dead = await dead_letter(channel)
        assert dead.headers[ERROR_HEADER] == "NotPermitted"
        assert await events(gateway, "manufacturing.material_received") == 0
    finally:
        await queues.stop()


async def test_the_gateway_starts_the_mes_queues_itself(
    tmp_path: Path, amqp_url: str, channel: AbstractChannel
) -> None:
    gw = bootstrap(m.settings(tmp_path, amqp_url, "canonical-json,mes,mes-cloudevents,mes-b2mml"))
    await gw.start()
    try:
        order = await m.collected_order(gw.door, gw.partners, 6)
        await publish(channel, m.received(order, "mes-q-6", m.din(6)))
        deadline = time.monotonic() + 20
        while await events(gw, "manufacturing.material_received") == 0:
            assert time.monotonic() < deadline, "not applied"
            await asyncio.sleep(0.05)
        for manufacturer in (DEMO, m.OTHER):  # one queue each, quorum
            await channel.declare_queue(inbound_queue_name("mes", manufacturer), passive=True)
    finally:
        await gw.stop()

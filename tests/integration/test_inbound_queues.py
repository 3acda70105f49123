"""Inbound AMQP queues (gateway.sdk.queues) on the real RabbitMQ and a real database: a
manufacturer's message on `cgt.inbound.mes.demo-manufacturer` is applied and acked after the
commit; a malformed one is kept raw and dead-lettered with its reason in the headers; a wrong
partner header is dead-lettered and stores nothing; a transient failure is requeued, and
dead-lettered at the delivery limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy import func, select

from adapters.canonical_json.adapter import adapter
from gateway.bus import dead_letters
from gateway.canonical.command import Command
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.errors import TransientError
from gateway.partners import Partner, Partners
from gateway.sdk import Adapter, Door
from gateway.sdk.queues import ERROR_HEADER, QUEUE_HEADER, REASON_HEADER, InboundQueues, inbound_queue_name
from gateway.service.outcome import Outcome
from gateway.settings import Settings
from gateway.store import tables as t
from tests.support.builders import coi, envelope_json, event

QUEUE = inbound_queue_name("mes", "demo-manufacturer")


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json",
    )
    gw = bootstrap(settings)
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    ch = await connection.channel()
    yield ch
    for name in (QUEUE, "cgt.dead"):  # each test starts from empty queues
        await ch.queue_delete(name)
    await connection.close()


@dataclass
class FlakyDoor:
    """The real door, failing as a database that is down for the first `failures` messages."""

    door: Door
    failures: int

    async def accept(
        self, adapter: Adapter, partner: Partner, raw: bytes, **kw: Any
    ) -> tuple[Outcome, bytes | None]:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError(detail="database: OperationalError")
        return await self.door.accept(adapter, partner, raw, **kw)


@dataclass
class Flaky:
    """A runtime whose door fails; the rest is the running gateway's."""

    gateway: Gateway
    door: FlakyDoor

    @property
    def settings(self) -> Settings:
        return self.gateway.settings

    @property
    def partners(self) -> Partners:
        return self.gateway.partners


def manufacturer(gw: Gateway) -> list[Partner]:
    return [gw.partners.get("demo-manufacturer")]


async def placed_order(gw: Gateway) -> str:
    """An order of a product the demo manufacturer makes, placed by the demo hospital."""
    order = Command.model_validate(
        {
            "event": "order.placed",
            "refs": [{"namespace": "site:demo-hospital:placer-order", "value": "PO-Q1"}],
            "payload": {
                "order": {
                    "product": {"code": "S1234", "system": "isbt128", "name": "Demo CAR-T"},
                    "ordering_site": {"id": "demo-hospital"},
                }
            },
        }
    )
    outcome, _ = await gw.door.accept(
        adapter, gw.partners.get("demo-hospital"), envelope_json("po-1", order), transport="http"
    )
    assert outcome.status == "applied" and outcome.coi
    return outcome.coi


def slot(order_coi: str, message_id: str = "mes-1") -> bytes:
    confirmed = event(
        "slot.confirmed", coi(order_coi), manufacturer={"id": "demo-manufacturer"}, slot_id="S-1"
    )
    return envelope_json(message_id, confirmed)


async def publish(channel: AbstractChannel, body: bytes, partner: str | None = "demo-manufacturer") -> None:
    headers = {"partner": partner} if partner else {}
    message = aio_pika.Message(body, headers=headers, content_type="application/json")
    await channel.default_exchange.publish(message, routing_key=QUEUE)


async def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def stored(gw: Gateway, status: str | None = None) -> int:
    query = select(func.count()).select_from(t.inbound_messages)
    if status is not None:
        query = query.where(t.inbound_messages.c.outcome == status)
    async with gw.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def dead_letter(channel: AbstractChannel) -> AbstractIncomingMessage:
    queue = await channel.get_queue("cgt.dead")
    deadline = time.monotonic() + 15
    while (found := await queue.get(fail=False, no_ack=True)) is None:
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.05)
    return found


async def ready(channel: AbstractChannel) -> int:
    declared = await channel.declare_queue(QUEUE, passive=True)
    return int(declared.declaration_result.message_count or 0)


async def test_a_message_is_applied_then_acked(gateway: Gateway, channel: AbstractChannel) -> None:
    queues = await InboundQueues(gateway, adapter, kind="mes", partners=manufacturer(gateway)).start()
    try:
        order_coi = await placed_order(gateway)
        await publish(channel, slot(order_coi))
        await until(lambda: queues.handled == 1)
        assert await stored(gateway) == 2 and await ready(channel) == 0
        async with gateway.engine.connect() as conn:
            found = (
                await conn.execute(select(t.orders.c.document).where(t.orders.c.coi == order_coi))
            ).scalar_one()
        assert found["manufacturing"]["slot_id"] == "S-1"
    finally:
        await queues.stop()


async def test_the_queue_is_quorum_with_a_dead_letter_exchange_and_a_limit(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    queues = await InboundQueues(
        gateway, adapter, kind="mes", partners=manufacturer(gateway), delivery_limit=5
    ).start()
    await queues.stop()
    # declaring it again with other arguments is refused by the broker: these are its arguments
    same = {"x-queue-type": "quorum", "x-dead-letter-exchange": "cgt.dlx", "x-delivery-limit": 5}
    await channel.declare_queue(QUEUE, durable=True, arguments=same)


async def test_a_malformed_message_is_kept_and_dead_lettered_with_its_reason(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    queues = await InboundQueues(gateway, adapter, kind="mes", partners=manufacturer(gateway)).start()
    try:
        await publish(channel, b"{not json")
        dead = await dead_letter(channel)
        assert dead.body == b"{not json"
        assert dead.headers[ERROR_HEADER] == "MalformedMessage"
        assert dead.headers[REASON_HEADER] == "the body is not JSON"
        assert dead.headers[QUEUE_HEADER] == QUEUE  # where `dead-letters redeliver` sends it back
        assert dead.headers["partner"] == "demo-manufacturer"
        assert await stored(gateway, "rejected") == 1 and await ready(channel) == 0
    finally:
        await queues.stop()


async def test_a_dead_letter_sent_back_is_consumed_again_as_its_partner_sent_it(
    gateway: Gateway, channel: AbstractChannel, amqp_url: str
) -> None:
    queues = await InboundQueues(gateway, adapter, kind="mes", partners=manufacturer(gateway)).start()
    connection = await aio_pika.connect(amqp_url)
    try:
        await publish(channel, b"{not json")
        await until(lambda: queues.dead_lettered == 1)
        confirming = await connection.channel(publisher_confirms=True, on_return_raises=True)
        [(letter, message)] = await dead_letters.read(confirming, limit=10)
        assert (letter.queue, letter.reason, letter.consumer) == (QUEUE, "the body is not JSON", None)
        assert letter.at is not None and abs((datetime.now(UTC) - letter.at).total_seconds()) < 60
        await dead_letters.send_back(confirming, letter, message)
        # read again under its partner's header (kept; what dead-lettering added is not): refused
        # and kept for the same reason, not for a missing partner
        await until(lambda: queues.dead_lettered == 2)
        again = await dead_letter(channel)
        assert (
            again.headers[ERROR_HEADER] == "MalformedMessage"
            and again.headers["partner"] == "demo-manufacturer"
        )
        assert await stored(gateway, "rejected") == 2
    finally:
        await connection.close()
        await queues.stop()


@pytest.mark.parametrize("header", [None, "demo-hospital", "nobody"])
async def test_a_wrong_partner_header_is_dead_lettered_and_not_stored(
    gateway: Gateway, channel: AbstractChannel, header: str | None
) -> None:
    queues = await InboundQueues(gateway, adapter, kind="mes", partners=manufacturer(gateway)).start()
    try:
        await publish(channel, slot("CHA999926M00001"), partner=header)
        dead = await dead_letter(channel)
        assert dead.headers[ERROR_HEADER] == "NotAuthenticated"
        assert "partner" in str(dead.headers[REASON_HEADER])
        assert await stored(gateway) == 0
    finally:
        await queues.stop()


async def test_a_transient_failure_is_requeued_and_applied_on_redelivery(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    flaky = FlakyDoor(gateway.door, failures=2)
    queues = await InboundQueues(
        Flaky(gateway, flaky), adapter, kind="mes", partners=manufacturer(gateway)
    ).start()  # type: ignore[arg-type]
    try:
        order_coi = await placed_order(gateway)
        await publish(channel, slot(order_coi))
        await until(lambda: queues.handled == 1)
        assert flaky.failures == 0 and queues.dead_lettered == 0
        assert await stored(gateway, "applied") == 2
    finally:
        await queues.stop()


async def test_a_failure_that_lasts_is_dead_lettered_at_the_delivery_limit(
    gateway: Gateway, channel: AbstractChannel
) -> None:
    flaky = FlakyDoor(gateway.door, failures=100)
    queues = await InboundQueues(
        Flaky(gateway, flaky), adapter, kind="mes", partners=manufacturer(gateway), delivery_limit=3
    ).start()  # type: ignore[arg-type]
    try:
        await publish(channel, slot("CHA999926M00001"))
        dead = await dead_letter(channel)
        assert dead.headers[ERROR_HEADER] == "TransientError"
        assert flaky.failures == 100 - 3  # delivered three times, then given up with its reason
        assert await stored(gateway) == 0
    finally:
        await queues.stop()

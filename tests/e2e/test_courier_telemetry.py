"""Cold-chain telemetry end to end: the real gateway over real HTTP, SQLite and the real broker.
The site declares a fresh (2-8 °C) inbound shipment with the demo courier; the courier's logger
reports it warming to 10.5 °C for 45 minutes, in two signed batches that overlap; the readings
are stored once each, never published one by one, and the gateway publishes the excursion on
`cgt.events`, with its peak, limit and class, for the order's COI. A LoRaWAN logger's own alarm
is published as a logger fault."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CloudEvent
from gateway.settings import Settings
from gateway.store import tables as t
from tests.integration.test_courier_loggers import (
    count,
    declared_shipment,
    entry,
    partner_file,
    signed,
    uplink,
)
from tests.support.served import served

URL = "/couriers/demo-courier/telemetry"


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,tive-telemetry,tts-lorawan",
        partners_file=partner_file(tmp_path),
    )


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


@pytest.fixture
async def shipment_events(amqp_url: str) -> AsyncIterator[list[CloudEvent]]:
    """Every `shipment.*` event published while the test runs, on a queue of its own."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"test.telemetry.{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(await declare_topology(channel), routing_key="shipment.#")
    seen: list[CloudEvent] = []

    async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append(CloudEvent.from_json(message.body))
        await message.ack()

    await queue.consume(on_event)
    try:
        yield seen
    finally:
        await connection.close()


async def until(condition: Any, what: str, timeout: float = 40.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def batch(minutes: range) -> bytes:
    """The logger every 5 minutes: 4.5 °C, then 10.5 °C from minute 15 to 60, then 5.0 °C."""
    return orjson.dumps([entry(m, 10.5 if 15 <= m <= 60 else (4.5 if m < 15 else 5.0)) for m in minutes])


async def test_readings_are_stored_once_and_an_excursion_is_published(
    http: httpx.AsyncClient, settings: Settings, shipment_events: list[CloudEvent]
) -> None:
    order_coi = await declared_shipment(http)
    first, second = batch(range(0, 55, 5)), batch(range(40, 95, 5))  # minutes 40-50 in both
    for n, body in enumerate((first, second)):
        answer = await http.post(URL, content=body, headers=signed(body, f"msg_{n}"))
        assert answer.status_code == 201, answer.text
    assert await count(settings, t.shipment_readings) == 19  # minutes 0 to 90, each once

    def excursions() -> list[CloudEvent]:
        found = [e for e in shipment_events if e.type == "org.cgt.shipment.temperature_excursion"]
        return [e for e in found if e.subject == order_coi]

    await until(lambda: any(e.data.get("ended_at") for e in excursions()), "the excursion and its end")
    reported = excursions()[0].data
    assert reported["temperature_c"] == 10.5 and reported["limit_c"] == 8.0
    assert reported["temperature_class"] == "fresh" and reported["device_id"] == "350000000000017"
    assert reported["started_at"].startswith("2026-11-10T08:15")
    # readings themselves are kept on the timeline, never published
    assert not [e for e in shipment_events if e.type == "org.cgt.shipment.readings_reported"]

    # the same batch again, from a courier that lost our answer: answered, nothing new
    before = len(excursions())
    again = await http.post(URL, content=first, headers=signed(first, "msg_0", later_s=1))
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert await count(settings, t.shipment_readings) == 19
    await asyncio.sleep(1.0)  # the relay polls twice a second: nothing more arrives
    assert len(excursions()) == before


async def test_a_lorawan_loggers_alarm_is_published_as_a_logger_fault(
    http: httpx.AsyncClient, settings: Settings, shipment_events: list[CloudEvent]
) -> None:
    order_coi = await declared_shipment(http, logger_id="A1B2C3D4E5F60001")
    # a TS201's threshold alarm at 8.4 °C (channel 83 67), as The Things Stack delivers it
    body = uplink("01JALARM", bytes([0x83, 0x67, 0x54, 0x00, 0x01]))
    answer = await http.post(f"{URL}/lorawan", content=body, headers=signed(body, "msg_alarm"))
    assert answer.status_code == 201, answer.text
    assert await count(settings, t.shipment_readings) == 1

    def faults() -> list[CloudEvent]:
        found = [e for e in shipment_events if e.type == "org.cgt.shipment.logger_fault"]
        return [e for e in found if e.subject == order_coi]

    await until(lambda: faults(), "the logger fault")
    assert "threshold_alarm" in orjson.dumps(faults()[0].data).decode()

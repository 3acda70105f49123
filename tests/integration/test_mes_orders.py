"""Manufacturing orders through the real gateway (SQLite, the real RabbitMQ, the outbox relay,
the outbound runner): over AMQP a consumer reads them from the manufacturer's queue; over REST
(respx: the MES's API only) they are posted as B2MML, the MES's immediate decision is applied as
its own message, and a refusal is given up with `delivery.failed`. Every order sent is scanned
for the patient's names and MRN."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import defusedxml.ElementTree as SafeET
import httpx
import orjson
import pytest
import respx
import yaml

from adapters.mes.orders.b2mml import V0600
from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CloudEvent
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from tests.support.builders import coi, envelope_json, event, mrn, place

MES = "https://mes.maker.test/api"
FAMILY, GIVEN, BIRTH = "Ordinsky", "Olga", "1966-05-30"
HOSPITAL = {"X-API-Key": "demo-hospital-key"}


async def start(tmp_path: Path, amqp_url: str, transport: dict[str, Any], fmt: str) -> Gateway:
    (tmp_path / "orders").mkdir()
    profile = {
        "manufacturer": "demo-manufacturer",
        "format": fmt,
        "transport": transport,
        "backoff_seconds": 0.01,
    }
    (tmp_path / "orders" / "demo-manufacturer.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    gw = bootstrap(
        Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,mes-orders",
            profile_dirs={"mes/orders": tmp_path / "orders"},
            consumer_delivery_limit=2,
        )
    )
    await gw.start()
    return gw


async def until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def place_and_schedule(gw: Gateway) -> tuple[str, str]:
    """An order of an invented patient, then its apheresis: (COI, MRN)."""
    tag = uuid.uuid4().hex[:8]
    order = place(1, family=FAMILY, birth=BIRTH)
    order = order.model_copy(
        update={
            "refs": (mrn(f"MRN-{tag}"), *order.refs[1:]),
            "patient": order.patient.model_copy(update={"given_name": GIVEN}) if order.patient else None,
        }
    )
    scheduled = "2026-11-09T08:00:00Z"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(gw)), base_url="http://gw"
    ) as http:
        answer = await http.post(
            "/api/messages", content=envelope_json(f"mo-{tag}-1", order), headers=HOSPITAL
        )
        assert answer.status_code == 201, answer.text
        the_coi = answer.json()["coi"]
        body = envelope_json(
            f"mo-{tag}-2", event("collection.scheduled", coi(the_coi), scheduled_start=scheduled)
        )
        answer = await http.post("/api/messages", content=body, headers=HOSPITAL)
        assert answer.status_code == 201, answer.text
    return the_coi, f"MRN-{tag}"


def leaks(body: bytes, mrn_value: str) -> list[str]:
    return [w for w in (FAMILY, GIVEN, mrn_value) if w.upper() in body.decode().upper()]


@pytest.fixture
async def published(amqp_url: str) -> AsyncIterator[list[CloudEvent]]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"test.mes-orders.{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(await declare_topology(channel), routing_key="#")
    events: list[CloudEvent] = []

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        events.append(CloudEvent.from_json(message.body))
        await message.ack()

    await queue.consume(keep)
    yield events
    await connection.close()


async def test_orders_wait_on_the_manufacturers_quorum_queue_persistent_and_disclosed(
    tmp_path: Path, amqp_url: str
) -> None:
    queue_name = f"cgt.outbound.mes.test-{uuid.uuid4().hex[:8]}"
    gw = await start(tmp_path, amqp_url, {"kind": "amqp", "queue": queue_name}, "json")
    try:
        the_coi, mrn_value = await place_and_schedule(gw)
        # The MES: a consumer of its own queue, which the gateway declared.
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        received: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def on_order(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(message)
            await message.ack()

        await queue.consume(on_order)
        await until(lambda: len(received) >= 2, "the order and the slot request")
        await connection.close()
    finally:
        await gw.stop()
    order, slot = received
    assert [m.headers["cgt-event"] for m in received] == ["order.placed", "collection.scheduled"]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in received)
    assert all(m.content_type == "application/json" and m.message_id for m in received)
    assert [leaks(m.body, mrn_value) for m in received] == [[], []]
    sent = orjson.loads(order.body)
    assert sent["kind"] == "manufacturing_order" and sent["coi"] == the_coi
    assert sent["patient"] == {"initials": "OO", "birth_date": BIRTH}
    assert orjson.loads(slot.body)["collection"]["scheduled_start"] == "2026-11-09T08:00:00Z"


async def test_a_rest_mes_gets_b2mml_and_its_decision_is_applied_as_its_own_message(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch, published: list[CloudEvent]
) -> None:
    monkeypatch.setenv("CGT_MES_API_DEMO_MANUFACTURER", MES)
    monkeypatch.setenv("CGT_SECRET_DEMO_MANUFACTURER_MES", "mes-test-key")
    rest = {
        "kind": "rest",
        "url": {"env": "CGT_MES_API_DEMO_MANUFACTURER"},
        "key": {"env": "CGT_SECRET_DEMO_MANUFACTURER_MES"},
    }
    gw = await start(tmp_path, amqp_url, rest, "b2mml-v0600")
    try:
        with respx.mock() as mes:
            accepted = httpx.Response(201, json={"decision": "accepted", "order_number": "MESORD-77"})
            orders = mes.post(f"{MES}/orders").mock(
                side_effect=[httpx.Response(503), accepted, httpx.Response(202)]
            )
            the_coi, mrn_value = await place_and_schedule(gw)
            await until(lambda: any(e.routing_key == "order.accepted" for e in published), "order.accepted")
            await until(lambda: orders.call_count >= 3, "the slot request")
        requests = [call.request for call in orders.calls]
    finally:
        await gw.stop()
    assert requests[0].content == requests[1].content  # the 503, tried again
    assert {r.headers["Idempotency-Key"] for r in requests[:2]} == {requests[0].headers["Idempotency-Key"]}
    assert all(r.headers["Authorization"] == "Bearer mes-test-key" for r in requests)
    assert all(r.headers["Content-Type"] == "application/xml" for r in requests)
    assert [leaks(r.content, mrn_value) for r in requests] == [[], [], []]
    document = SafeET.fromstring(requests[1].content)
    assert document.tag == f"{{{V0600}}}ProcessProductionSchedule"
    accepted_event = next(e for e in published if e.routing_key == "order.accepted")
    assert accepted_event.subject == the_coi and accepted_event.source.endswith(
        "/demo-manufacturer/mes-orders"
    )


async def test_a_refused_order_is_given_up_with_delivery_failed(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch, published: list[CloudEvent]
) -> None:
    monkeypatch.setenv("CGT_MES_API_DEMO_MANUFACTURER", MES)
    rest = {
        "kind": "rest",
        "url": {"env": "CGT_MES_API_DEMO_MANUFACTURER"},
        "key": {"env": "X_UNSET", "demo_default": "k"},
    }
    gw = await start(tmp_path, amqp_url, rest, "json")
    try:
        with respx.mock() as mes:
            orders = mes.post(f"{MES}/orders").mock(
                return_value=httpx.Response(400, json={"error": "bad product"})
            )
            the_coi, _ = await place_and_schedule(gw)
            await until(
                lambda: sum(e.routing_key == "delivery.failed" for e in published) >= 2, "delivery.failed"
            )
    finally:
        await gw.stop()
    assert orders.call_count == 2  # one try each: a refusal is not tried again
    failed = [e for e in published if e.routing_key == "delivery.failed"]
    assert {e.subject for e in failed} == {the_coi} and {e.data["adapter"] for e in failed} == {"mes-orders"}

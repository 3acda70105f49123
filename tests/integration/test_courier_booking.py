"""Courier booking through the real gateway (SQLite, the real RabbitMQ, the outbox relay, the
outbound runner); only the courier's API is mocked (respx). A due leg is booked once, with what
the courier may receive; the tracking number it answers is bound, so the courier's own messages
naming it find the order; 5xx is tried again, 4xx given up with `delivery.failed`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
import respx
import yaml

from adapters.couriers.booking.outbound import BookingRunners, CourierBooking
from adapters.couriers.booking.render import Booking
from gateway.bus.topology import declare_topology
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import ROOT, Settings
from tests.support.builders import coi, envelope_json, event, mrn, place
from tests.support.manufacturing import TESTS

API = "https://api.courier.test/v1"
FAMILY, GIVEN, BIRTH = "Bookerly", "Beatrix", "1968-07-21"
HOSPITAL = {"X-API-Key": "demo-hospital-key"}
MAKER = {"X-API-Key": "demo-manufacturer-key"}


def courier_signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-CGT-Partner": "demo-courier", "X-CGT-Timestamp": stamp, "X-CGT-Signature": f"sha256={digest}"}


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("CGT_COURIER_API_DEMO_COURIER", API)
    profile = yaml.safe_load(
        (ROOT / "mappings/couriers/booking/demo-courier.yaml").read_text(encoding="utf-8")
    )
    profile["api"] |= {"attempts": 2, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
    (tmp_path / "booking").mkdir()
    (tmp_path / "booking" / "demo-courier.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    gw = bootstrap(
        Settings(
            env="test",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
            amqp_url=amqp_url,
            mllp_port=0,
            adapters="canonical-json,courier-booking",
            profile_dirs={"couriers/booking": tmp_path / "booking"},
            consumer_delivery_limit=2,
        )
    )
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def published(amqp_url: str) -> AsyncIterator[list[CloudEvent]]:
    """Every canonical event the gateway publishes from now on."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"test.booking.{uuid.uuid4().hex[:8]}", exclusive=True)
    await queue.bind(await declare_topology(channel), routing_key="#")
    events: list[CloudEvent] = []

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        events.append(CloudEvent.from_json(message.body))
        await message.ack()

    await queue.consume(keep)
    yield events
    await connection.close()


async def until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Journey:
    """One order of an invented patient, driven through the gateway's HTTP API."""

    def __init__(self, gw: Gateway, http: httpx.AsyncClient) -> None:
        self.gw, self.http, self.n = gw, http, 0
        self.tag = uuid.uuid4().hex[:8]
        self.mrn = f"MRN-{self.tag}"
        self.coi = ""

    async def send(self, headers: dict[str, str] | None, *commands: Any) -> httpx.Response:
        self.n += 1
        body = envelope_json(f"bk-{self.tag}-{self.n}", *commands)
        answer = await self.http.post("/api/messages", content=body, headers=headers or courier_signed(body))
        assert answer.status_code in (200, 201), answer.text
        return answer

    async def placed_and_scheduled(self) -> None:
        order = place(1, family=FAMILY, birth=BIRTH, refs=[])
        order = order.model_copy(
            update={
                "refs": (mrn(self.mrn), *order.refs[1:]),
                "patient": order.patient.model_copy(update={"given_name": GIVEN}) if order.patient else None,
            }
        )
        self.coi = (await self.send(HOSPITAL, order)).json()["coi"]
        await self.send(
            HOSPITAL, event("collection.scheduled", coi(self.coi), scheduled_start="2026-11-09T08:00:00Z")
        )

    async def order(self) -> dict[str, Any]:
        answer = await self.http.get(f"/api/orders/{self.coi}", headers={"X-API-Key": "demo-operator-key"})
        document: dict[str, Any] = answer.json()
        return document.get("order", document)


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def booked(tracking: str, **more: Any) -> httpx.Response:
    return httpx.Response(201, json={"tracking_number": tracking, "status": "booked", **more})


def forbidden_in(body: bytes, journey: Journey) -> list[str]:
    """The patient's names, MRN and birth date (in any of their usual forms) found in a payload."""
    text = body.decode().upper()
    forms = (FAMILY, GIVEN, journey.mrn, BIRTH, BIRTH.replace("-", ""), "BIRTH", "PATIENT", "MRN")
    return [f for f in forms if f.upper() in text]


def runner_of(gw: Gateway) -> Any:
    running = next(t for t in gw.transports if isinstance(t, BookingRunners))
    return running.runners[0]


async def test_both_legs_are_booked_once_with_only_what_the_courier_may_receive_and_the_tracking_number_finds_the_order(
    gateway: Gateway, http: httpx.AsyncClient, published: list[CloudEvent]
) -> None:
    journey = Journey(gateway, http)
    with respx.mock() as courier:
        shipments = courier.post(f"{API}/shipments").mock(
            side_effect=[booked("DCIN0001"), booked("DCOUT0001")]
        )
        await journey.placed_and_scheduled()
        await until(lambda: any(e.routing_key == "shipment.booked" for e in published), "the inbound booking")

        # What the courier was asked: the leg, places, windows, class, the chain of identity; nothing of the patient.
        request = shipments.calls[0].request
        assert request.headers["Authorization"] == "Bearer demo-courier-api-key"
        scheduled = next(e for e in published if e.routing_key == "collection.scheduled")
        assert request.headers["Idempotency-Key"] == scheduled.id
        sent = orjson.loads(request.content)
        assert sent["leg"] == "inbound" and sent["temperature_class"] == "2-8C"
        assert sent["labels"] == {"coi": journey.coi, "din": None} and sent["reference"] == journey.coi
        assert sent["pickup"]["place"]["name"] == "Demo Hospital apheresis unit"
        assert sent["delivery"]["place"]["name"] == "Demo Manufacturer goods-in"
        assert sent["pickup"]["window"] == {"start": "2026-11-09T12:00:00Z", "end": "2026-11-09T14:00:00Z"}
        assert sent["delivery"]["window"]["end"] == "2026-11-10T12:00:00Z"
        assert forbidden_in(request.content, journey) == []

        # The collection moved: the new scheduling books nothing more, the leg has its shipment.
        await journey.send(
            HOSPITAL, event("collection.scheduled", coi(journey.coi), scheduled_start="2026-11-09T09:00:00Z")
        )
        await until(lambda: runner_of(gateway).handled >= 2, "the second scheduling")
        assert shipments.call_count == 1

        # The courier's own message naming only its tracking number finds the order and its shipment.
        await journey.send(
            HOSPITAL,
            event(
                "collection.completed",
                coi(journey.coi),
                collected_at="2026-11-09T10:00:00Z",
                din="A999914123458",
            ),
        )
        tracking = ExternalRef(namespace="courier:demo-courier:tracking", value="DCIN0001")
        picked = await journey.send(None, event("shipment.picked_up", tracking, shipment_id="DCIN0001"))
        assert picked.json()["status"] == "applied" and picked.json()["coi"] == journey.coi
        order = await journey.order()
        assert order["status"] == "in_transit_to_manufacturer"
        await journey.send(None, event("shipment.delivered", tracking, shipment_id="DCIN0001"))

        # The outbound leg, when the product is released: from the manufacturer back to the site, cryogenic.
        await journey.send(MAKER, event("manufacturing.started", coi(journey.coi), batch_id="B-1"))
        for test in TESTS:  # the release is applied only once the product's QC tests passed
            qc = event("manufacturing.qc_result", coi(journey.coi), batch_id="B-1", test=test, result="pass")
            await journey.send(MAKER, qc)
        released = await journey.send(
            MAKER, event("manufacturing.released", coi(journey.coi), batch_id="B-1")
        )
        assert released.status_code in (200, 201), released.text
        await until(
            lambda: sum(e.routing_key == "shipment.booked" for e in published) >= 2, "the outbound booking"
        )
        request = shipments.calls[1].request
        sent = orjson.loads(request.content)
        assert sent["leg"] == "outbound" and sent["temperature_class"] == "<=-150C"
        assert sent["labels"] == {"coi": journey.coi, "din": "A999914123458"}
        assert sent["pickup"]["place"]["name"] == "Demo Manufacturer goods-in"
        assert forbidden_in(request.content, journey) == []
        assert shipments.call_count == 2

    order = await journey.order()
    legs = {s["direction"]: s for s in order["shipments"]}
    assert (
        legs["to_manufacturer"]["tracking_number"] == "DCIN0001"
        and legs["to_manufacturer"]["courier"] == "demo-courier"
    )
    assert (
        legs["to_site"]["tracking_number"] == "DCOUT0001"
        and legs["to_site"]["temperature_class"] == "<=-150C"
    )
    booked_events = [e for e in published if e.routing_key == "shipment.booked"]
    assert [e.source for e in booked_events] == [
        "/partners/demo-hospital/courier-booking",
        "/partners/demo-manufacturer/courier-booking",
    ]


async def test_a_courier_that_fails_is_tried_again_and_books_once(
    gateway: Gateway, http: httpx.AsyncClient, published: list[CloudEvent]
) -> None:
    journey = Journey(gateway, http)
    with respx.mock() as courier:
        failing = [httpx.Response(503), httpx.ConnectError("refused"), booked("DCRETRY1")]
        shipments = courier.post(f"{API}/shipments").mock(side_effect=failing)
        await journey.placed_and_scheduled()
        await until(lambda: any(e.routing_key == "shipment.booked" for e in published), "the booking")
    assert shipments.call_count == 3
    keys = {call.request.headers["Idempotency-Key"] for call in shipments.calls}
    assert len(keys) == 1  # every try under the event's id: the courier books once
    order = await journey.order()
    assert [s["tracking_number"] for s in order["shipments"]] == ["DCRETRY1"]
    assert not any(e.routing_key == "delivery.failed" for e in published)


async def test_a_refused_booking_is_given_up_with_delivery_failed_and_nothing_declared(
    gateway: Gateway, http: httpx.AsyncClient, published: list[CloudEvent]
) -> None:
    journey = Journey(gateway, http)
    with respx.mock() as courier:
        refusal = httpx.Response(422, json={"error": "pickup window outside service hours"})
        shipments = courier.post(f"{API}/shipments").mock(return_value=refusal)
        await journey.placed_and_scheduled()
        await until(lambda: any(e.routing_key == "delivery.failed" for e in published), "delivery.failed")
    assert shipments.call_count == 1  # a refusal is not tried again
    failed = next(e for e in published if e.routing_key == "delivery.failed")
    assert failed.subject == journey.coi and failed.data["partner"] == "demo-courier"
    assert failed.data["adapter"] == "courier-booking"
    assert (await journey.order())["shipments"] == []


async def test_a_booking_made_again_after_a_crash_declares_the_shipment_once(
    gateway: Gateway, http: httpx.AsyncClient, published: list[CloudEvent]
) -> None:
    """The runner crashed after the courier answered and before it settled the event: the broker
    hands the event over again. The courier answers the same idempotency key with the same
    tracking number; the door knows the declaration again and changes nothing."""
    journey = Journey(gateway, http)
    with respx.mock() as courier:
        shipments = courier.post(f"{API}/shipments").mock(return_value=booked("DCONCE01"))
        await journey.placed_and_scheduled()
        await until(lambda: any(e.routing_key == "shipment.booked" for e in published), "the booking")
        outbound: CourierBooking = runner_of(gateway).outbound
        scheduled = next(e for e in published if e.routing_key == "collection.scheduled")
        first = orjson.loads(shipments.calls[0].request.content)
        again = Booking(
            event_id=scheduled.id,
            courier="demo-courier",
            shipper="demo-hospital",
            leg="inbound",
            coi=journey.coi,
            shipment_id=f"demo-courier-inbound-{scheduled.id[:8]}",
            temperature_class=first["temperature_class"],
            body=shipments.calls[0].request.content,
        )
        await outbound.deliver(again)
        assert shipments.call_count == 2
    await asyncio.sleep(0.5)  # anything published would have arrived by now
    assert sum(e.routing_key == "shipment.booked" for e in published) == 1
    assert len((await journey.order())["shipments"]) == 1

"""The demo courier's EPCIS journey through the whole gateway (ASGI app, SQLite, the outbox): the
site declares the shipment (tracking number, SSCC, logger); the courier, signing with its demo
Standard Webhooks secret, captures its pick-up named by the bill of lading alone, a logger's
readings in Fahrenheit that leave the fresh range past the tolerated minutes (the gateway
publishes the excursion), an error declaration, and the delivery with its handoff."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from gateway.coldchain.classes import default_cold_chain
from gateway.entrypoints.bootstrap import Gateway
from gateway.sdk import StandardWebhooks
from gateway.store import tables as t
from tests.support.builders import coi, envelope_json
from tests.support.builders import event as event_of
from tests.support.couriers import HOSPITAL, declare, order_of, placed, running, settings_for

DEMO_SECRET = "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA=="  # published in mappings/partners/demo.yaml
TRACKING, SSCC, LOGGER = "1Z999AA10123456784", "340123450000000017", "urn:epc:id:giai:4012345.LOGGER0001"
BOL = {
    "type": "https://ref.gs1.org/cbv/BTT-bol",
    "bizTransaction": f"urn:epcglobal:cbv:bt:4012345000009:{TRACKING}",
}
T0 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(amqp_url: str, tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/gw.db", amqp_url, tmp_path)
    async with running(settings) as pair:
        yield pair


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(step: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": step,
        "eventTime": z(at),
        "eventTimeZoneOffset": "+00:00",
        "bizTransactionList": [BOL],
        **extra,
    }


async def capture(http: httpx.AsyncClient, message_id: str, *events: dict[str, Any]) -> httpx.Response:
    body = orjson.dumps(
        {
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": z(T0),
            "epcisBody": {"eventList": list(events)},
        }
    )
    stamp = int(time.time())
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": StandardWebhooks().sign(DEMO_SECRET, message_id, stamp, body),
        "Content-Type": "application/ld+json",
    }
    response = await http.post("/couriers/demo-courier/epcis/capture", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["success"] is True, response.text
    return response


async def published(gw: Gateway, routing_key: str) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        rows = (
            await conn.execute(select(t.outbox.c.body).where(t.outbox.c.routing_key == routing_key))
        ).all()
    return [orjson.loads(b)["data"] for (b,) in rows]


async def test_the_demo_courier_captures_a_fresh_leg_with_an_excursion(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    order_coi = await placed(http)
    collected = event_of("collection.completed", coi(order_coi), collected_at="2026-11-03T05:00:00Z")
    answer = await http.post("/api/messages", content=envelope_json("site-2", collected), headers=HOSPITAL)
    assert answer.status_code == 201, answer.text
    declared = await declare(
        http, order_coi, tracking_number=TRACKING, sscc=SSCC, logger_id=LOGGER, temperature_class="fresh"
    )
    assert declared.status_code == 201, declared.text

    await capture(http, "msg_pick", event("shipping", T0, **{"cgt:coi": order_coi}))
    found = await order_of(http, order_coi)
    assert found["order"]["shipments"][0]["status"] == "picked_up"

    # 41.0 °F = 5 °C in range, 50 °F = 10 °C out of the fresh range past its tolerated minutes
    tolerated = int(default_cold_chain().classes["fresh"].tolerated_minutes)
    values = [41.0] * 10 + [50.0] * (tolerated + 10) + [41.0] * 10
    elements = [
        {
            "sensorMetadata": {"time": z(T0 + timedelta(minutes=i)), "deviceID": LOGGER},
            "sensorReport": [{"type": "Temperature", "value": v, "uom": "FAR"}],
        }
        for i, v in enumerate(values)
    ]
    end = T0 + timedelta(minutes=len(values))
    await capture(
        http, "msg_log", event("sensor_reporting", end, bizTransactionList=[], sensorElementList=elements)
    )
    async with gw.engine.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(t.shipment_readings))).scalar_one()
    assert stored == len(values)
    began, ended = await published(gw, "shipment.temperature_excursion")  # its start, then its end
    assert began["temperature_c"] == 10.0 and began["limit_c"] == 8.0 and began["device_id"] == LOGGER
    assert began["started_at"] == z(T0 + timedelta(minutes=10))
    assert ended["duration_s"] == (tolerated + 10) * 60

    # the courier declares its arrival event wrong, then delivers with the handoff
    wrong = event("arriving", end, eventID="urn:uuid:00000000-0000-4000-8000-0000000000d1")
    wrong["errorDeclaration"] = {"declarationTime": z(end + timedelta(minutes=5)), "reason": "incorrect_data"}
    handoff = {
        "sourceList": [{"type": "possessing_party", "source": "urn:epc:id:pgln:4012345.00001"}],
        "destinationList": [{"type": "possessing_party", "destination": "urn:epc:id:pgln:4012345.00002"}],
    }
    delivered = event(
        "receiving", end + timedelta(hours=1), epcList=[f"https://id.gs1.org/00/{SSCC}"], **handoff
    )
    await capture(http, "msg_end", wrong, delivered)
    found = await order_of(http, order_coi)
    assert found["order"]["status"] == "received_by_manufacturer"
    kinds = [e["type"].removeprefix("org.cgt.") for e in found["timeline"]]
    assert "shipment.correction_declared" in kinds and "shipment.custody_transferred" in kinds
    (custody,) = await published(gw, "shipment.custody_transferred")
    assert custody["custodian"] == "urn:epc:id:pgln:4012345.00002"

"""EPCIS capture end to end over real HTTP (a uvicorn server, SQLite, the real broker): a site
books a shipment (its SSCC bound to the order); the courier captures EPCIS documents signed with
Standard Webhooks and reads each capture job back; the binding's headers, its problem types, and
what rollback / proceed mean for a document with a bad event; an echoed COI that does not match
holds the document for review; nobody reads another courier's jobs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import func, select

from gateway.canonical.ids import ExternalRef
from gateway.sdk import StandardWebhooks
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import coi, envelope_json, event, place
from tests.support.served import client, on_sqlite

SECRET = "whsec_dGVzdC1lcGNpcy1jb3VyaWVyLXNpZ25pbmctc2VjcmV0"
OTHER_SECRET = "whsec_b3RoZXItZXBjaXMtY291cmllci1zZWNyZXQ="
COURIER, OTHER = "test-epcis-courier", "other-epcis-courier"
HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key"}
SSCC_URN, SSCC = "urn:epc:id:sscc:4012345.3000000001", "340123450000000017"
BOL = {"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:1Z999AA10123456784"}
LOGGER = "urn:epc:id:giai:4012345.LOGGER0001"
SW = StandardWebhooks()


def partner_file(directory: Path) -> Path:
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    for pid, secret in ((COURIER, SECRET), (OTHER, OTHER_SECRET)):
        env = "CGT_TEST_" + pid.upper().replace("-", "_")
        secrets = [{"env": env, "demo_default": secret}]
        document["partners"].append(
            {
                "id": pid,
                "kind": "courier",
                "adapter": "epcis",
                "demo": True,
                "auth": {"standard_webhooks": {"secrets": secrets}},
            }
        )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return on_sqlite(tmp_path, amqp_url, "canonical-json,epcis", partner_file(tmp_path))


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client(settings) as http:
        yield http


def document(*events: dict[str, Any]) -> bytes:
    body = {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-09T08:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }
    return orjson.dumps(body)


def shipping(**extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "eventTime": "2026-11-09T09:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "epcList": [SSCC_URN],
        "bizTransactionList": [BOL],
        **extra,
    }


def readings(*temperatures: float) -> dict[str, Any]:
    elements = [
        {
            "sensorMetadata": {"time": f"2026-11-09T10:{i:02d}:00Z", "deviceID": LOGGER},
            "sensorReport": [{"type": "Temperature", "value": v, "uom": "CEL"}],
        }
        for i, v in enumerate(temperatures)
    ]
    return shipping(bizStep="sensor_reporting", disposition=None, sensorElementList=elements)


def signed(
    body: bytes, message_id: str, *, secret: str = SECRET, later: int = 0, **headers: str
) -> dict[str, str]:
    stamp = int(time.time()) + later  # a sender's retry signs again, later
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": SW.sign(secret, message_id, stamp, body),
        "Content-Type": "application/ld+json",
        **headers,
    }


async def booked_order(http: httpx.AsyncClient, n: int = 1, sscc_value: str = SSCC) -> str:
    placed = await http.post("/api/messages", content=envelope_json(f"site-{n}a", place(n)), headers=HOSPITAL)
    order_coi: str = placed.json()["coi"]
    shipment = {
        "shipment_id": f"SH-{n}",
        "direction": "to_manufacturer",
        "courier": COURIER,
        "tracking_number": f"1Z999AA1012345678{3 + n}",  # n=1: the BOL of the documents
        "sscc": sscc_value,
        "logger_id": f"{LOGGER}-{n}",
    }
    sscc = ExternalRef(namespace="gs1:sscc", value=sscc_value)
    follow = envelope_json(
        f"site-{n}b",
        event("collection.completed", coi(order_coi), collected_at="2026-11-09T07:00:00Z"),
        event("shipment.booked", coi(order_coi), sscc, binds=(sscc,), shipment=shipment),
    )
    answer = await http.post("/api/messages", content=follow, headers=HOSPITAL)
    assert answer.status_code == 201, answer.text
    return order_coi


async def capture(
    http: httpx.AsyncClient, body: bytes, message_id: str, *, later: int = 0, **headers: str
) -> httpx.Response:
    url = f"/couriers/{COURIER}/epcis/capture"
    return await http.post(url, content=body, headers=signed(body, message_id, later=later, **headers))


async def job(http: httpx.AsyncClient, location: str, *, secret: str = SECRET) -> httpx.Response:
    return await http.get(location, headers=signed(b"", f"get_{time.monotonic_ns()}", secret=secret))


async def order(http: httpx.AsyncClient, order_coi: str) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get(f"/api/orders/{order_coi}", headers=OPERATOR)).json()
    return found


async def count(settings: Settings, table: Any, **where: str) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(table)
            for column, value in where.items():
                query = query.where(table.c[column] == value)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await dispose(engine)


async def test_a_capture_is_stored_applied_and_its_job_read_back(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http)
    body = document(shipping(**{"cgt:coi": order_coi}))
    answer = await capture(http, body, "msg_1", **{"GS1-EPCIS-Version": "2.0.0"})
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    capture_id = location.rsplit("/", 1)[-1]
    assert location == f"/couriers/{COURIER}/epcis/capture/{capture_id}"
    assert answer.headers["gs1-epcis-version"] == "2.0.0"
    assert await count(settings, t.inbound_messages, id=capture_id, outcome="applied") == 1
    found = await order(http, order_coi)
    assert found["order"]["status"] == "in_transit_to_manufacturer"
    assert found["order"]["shipments"][0]["status"] == "picked_up"

    read = await job(http, location)
    assert read.status_code == 200, read.text
    assert read.json() | {"createdAt": None, "finishedAt": None} == {
        "captureID": capture_id,
        "createdAt": None,
        "finishedAt": None,
        "running": False,
        "success": True,
        "captureErrorBehaviour": "rollback",
        "errors": [],
    }
    # the courier's retry (same webhook id, signed again) gets the same job; nothing applied twice
    again = await capture(http, body, "msg_1", later=1)
    assert again.status_code == 202 and again.headers["location"] == location
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(settings, t.inbound_messages) == 3  # two of the site's, one capture

    # readings by the logger: one quiet event on the timeline, the readings stored once each
    sensed = await capture(http, document(readings(4.0, 4.5, 5.0)), "msg_2")
    assert sensed.status_code == 202, sensed.text
    timeline = (await order(http, order_coi))["timeline"]
    (reported,) = [e for e in timeline if e["type"].endswith("shipment.readings_reported")]
    assert [r["temperature_c"] for r in reported["data"]["readings"]] == [4.0, 4.5, 5.0]
    assert await count(settings, t.shipment_readings, device_id=LOGGER, shipment_id="SH-1") == 3


async def test_the_binding_headers_and_problems(http: httpx.AsyncClient, settings: Settings) -> None:
    order_coi = await booked_order(http)
    old = await capture(http, document(shipping()), "msg_v", **{"GS1-EPCIS-Version": "1.2.0"})
    assert old.status_code == 406, old.text
    assert old.headers["content-type"] == "application/problem+json"
    assert old.json()["type"] == "epcisException:NotAcceptableException"
    kept = await job(http, old.headers["location"])  # refused, yet kept: its job says why
    assert kept.json()["success"] is False
    assert kept.json()["errors"][0]["type"] == "epcisException:NotAcceptableException"

    bad = shipping(action="CREATE", eventTime="2026-11-09T09:30:00Z")
    rolled = await capture(http, document(shipping(), bad), "msg_r")
    assert rolled.status_code == 400
    assert rolled.json()["type"] == "epcisException:ValidationException"
    assert rolled.json()["errors"][0]["instance"] == "/epcisBody/eventList/1/action"
    assert (await order(http, order_coi))["order"]["status"] == "collected"  # nothing applied
    read = (await job(http, rolled.headers["location"])).json()
    assert read["success"] is False and read["errors"][0]["instance"] == "/epcisBody/eventList/1/action"

    proceeded = await capture(
        http, document(shipping(), bad), "msg_p", **{"GS1-Capture-Error-Behaviour": "proceed"}
    )
    assert proceeded.status_code == 202, proceeded.text
    assert (await order(http, order_coi))["order"]["status"] == "in_transit_to_manufacturer"
    read = (await job(http, proceeded.headers["location"])).json()
    assert read["captureErrorBehaviour"] == "proceed" and read["success"] is False
    assert [e["instance"] for e in read["errors"]] == ["/epcisBody/eventList/1/action"]

    odd = await capture(http, document(shipping()), "msg_b", **{"GS1-Capture-Error-Behaviour": "all"})
    assert odd.status_code == 400 and "rollback or proceed" in odd.json()["title"]

    stored = await count(settings, t.inbound_messages)
    warehouse = shipping(epcList=["urn:epc:id:sgtin:4012345.011111.1"], bizTransactionList=[])
    ignored = await capture(http, document(warehouse), "msg_n")  # names no shipment: not ours
    assert ignored.status_code == 202 and "location" not in ignored.headers
    assert ignored.json()["success"] is True and ignored.json()["captureID"] is None
    assert await count(settings, t.inbound_messages) == stored  # acknowledged, stored nowhere


async def test_an_echoed_coi_that_does_not_match_holds_the_document(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http)
    stranger = "CHA999926Z99999" if order_coi != "CHA999926Z99999" else "CHA999926Z99998"
    answer = await capture(http, document(shipping(**{"cgt:coi": stranger})), "msg_m")
    assert answer.status_code == 202, answer.text
    read = (await job(http, answer.headers["location"])).json()
    assert read["success"] is False and read["errors"][-1]["outcome"] == "quarantined"
    assert (await order(http, order_coi))["order"]["status"] == "collected"
    assert await count(settings, t.quarantine) == 1
    assert await count(settings, t.outbox, routing_key="identity.mismatch") == 1

    # the COI of another of the courier's orders, on this shipment's SSCC: held too
    other_coi = await booked_order(http, 2, "340123450000000024")
    crossed = await capture(
        http, document(shipping(bizTransactionList=[], **{"cgt:coi": other_coi})), "msg_x"
    )
    assert crossed.status_code == 202 and crossed.json()["success"] is False, crossed.text
    assert await count(settings, t.quarantine) == 2
    for held in (order_coi, other_coi):
        assert (await order(http, held))["order"]["status"] == "collected"


async def test_only_the_courier_that_captured_reads_its_job(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await booked_order(http)
    answer = await capture(http, document(shipping()), "msg_o")
    location = answer.headers["location"]
    theirs = await job(http, location.replace(COURIER, OTHER), secret=OTHER_SECRET)
    assert theirs.status_code == 404 and theirs.json()["type"] == "epcisException:NoSuchResourceException"
    unsigned = await http.get(location)
    assert unsigned.status_code == 401 and unsigned.json()["type"] == "epcisException:SecurityException"
    forged = await http.post(
        f"/couriers/{COURIER}/epcis/capture", content=document(shipping()), headers=signed(b"{}", "msg_f")
    )
    assert forged.status_code == 401 and forged.json()["type"] == "epcisException:SecurityException"
    # the forged capture is kept raw as refused (a known partner's); the unsigned GET, nothing
    assert await count(settings, t.inbound_messages, outcome="refused") == 1
    assert await count(settings, t.inbound_messages) == 4

"""Logger readings over real HTTP (a uvicorn server, real sockets, SQLite, the real broker): the
demo courier's Tive-shaped batches at `/couriers/demo-courier/telemetry` and its LoRaWAN uplinks
at `/couriers/demo-courier/telemetry/lorawan`, signed with Standard Webhooks; a bad signature,
a partner of another dialect and a malformed batch are refused; the webhook's other messages are
acknowledged and ignored; another courier cannot report readings on this one's shipment."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import func, select

from gateway.sdk.webhooks import StandardWebhooks
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import coi, envelope_json, event, place
from tests.support.served import served

DEMO_COURIER_SECRET = "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA=="  # published: the base64 of demo-courier-secret
OTHER_SECRET = "whsec_b3RoZXItY291cmllci1zZWNyZXQ="
HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
LOGGER, TRACKING, SSCC = "350000000000017", "DC000000001", "306141410000001232"
T0_MS = 1_794_297_600_000  # 2026-11-10T08:00:00Z
SW = StandardWebhooks()


def partner_file(directory: Path) -> Path:
    """The demo partners (the demo courier signing with its published Standard Webhooks secret),
    and a second courier that speaks the same logger dialects."""
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    for partner in document["partners"]:
        if partner["id"] == "demo-courier":
            partner.setdefault("dialects", ["tive-telemetry", "tts-lorawan"])
            secrets = [{"env": "CGT_TEST_DEMO_COURIER_SW", "demo_default": DEMO_COURIER_SECRET}]
            partner["auth"].setdefault("standard_webhooks", {"secrets": secrets})
    document["partners"].append(
        {
            "id": "other-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "dialects": ["tive-telemetry", "tts-lorawan"],
            "demo": True,
            "auth": {
                "standard_webhooks": {"secrets": [{"env": "CGT_TEST_OTHER_SW", "demo_default": OTHER_SECRET}]}
            },
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,example-webhook,tive-telemetry,tts-lorawan",
        partners_file=partner_file(tmp_path),
    )


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


def signed(body: bytes, message_id: str, *, secret: str = DEMO_COURIER_SECRET) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": SW.sign(secret, message_id, stamp, body),
        "Content-Type": "application/json",
    }


def entry(minute: int, celsius: float, **extra: Any) -> dict[str, Any]:
    return {
        "DeviceId": LOGGER,
        "EntryTimeEpoch": T0_MS + minute * 60_000,
        "Temperature": {"Celsius": celsius},
        "Shipment": {"TrackingNumber": TRACKING},
        "Location": {"Latitude": 0.0, "Longitude": 0.0},
        **extra,
    }


def uplink(correlation: str, payload: bytes, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": "cold-box-0001", "dev_eui": "A1B2C3D4E5F60001"},
            "correlation_ids": [f"as:up:{correlation}"],
            "received_at": "2026-11-10T08:00:00Z",
            **extra,
        }
        | (
            {"uplink_message": {"f_port": 85, "frm_payload": base64.b64encode(payload).decode()}}
            if payload
            else {}
        )
    )


async def declared_shipment(http: httpx.AsyncClient) -> str:
    """An order placed and collected by the demo hospital, its inbound fresh shipment declared
    with the demo courier (tracking number, shipper SSCC and logger id)."""
    placed = await http.post("/api/messages", content=envelope_json("site-1", place(1)), headers=HOSPITAL)
    order_coi: str = placed.json()["coi"]
    shipment = {
        "shipment_id": "DC-SHIP-1",
        "direction": "to_manufacturer",
        "courier": "demo-courier",
        "tracking_number": TRACKING,
        "sscc": SSCC,
        "logger_id": LOGGER,
        "temperature_class": "2-8C",
    }
    follow = envelope_json(
        "site-2",
        event("collection.completed", coi(order_coi), collected_at="2026-11-10T07:00:00Z"),
        event("shipment.booked", coi(order_coi), shipment=shipment),
    )
    answer = await http.post("/api/messages", content=follow, headers=HOSPITAL)
    assert answer.status_code == 201, answer.text
    return order_coi


async def count(settings: Settings, table: Any) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await dispose(engine)


@pytest.mark.parametrize(
    ("partner", "secret", "tamper"),
    [
        ("demo-courier", OTHER_SECRET, False),  # another partner's secret
        ("demo-courier", DEMO_COURIER_SECRET, True),  # a body changed after signing
        ("demo-lab-courier", DEMO_COURIER_SECRET, False),  # a partner that does not speak the dialect
    ],
)
async def test_a_bad_signature_is_refused_and_not_stored(
    http: httpx.AsyncClient, settings: Settings, partner: str, secret: str, tamper: bool
) -> None:
    body = orjson.dumps([entry(0, 4.5)])
    headers = signed(body, "msg_bad", secret=secret)
    sent = body.replace(b"4.5", b"5.4") if tamper else body
    for path in ("telemetry", "telemetry/lorawan"):
        answer = await http.post(f"/couriers/{partner}/{path}", content=sent, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert await count(settings, t.inbound_messages) == 0


async def test_an_unsigned_batch_is_refused(http: httpx.AsyncClient) -> None:
    body = orjson.dumps([entry(0, 4.5)])
    answer = await http.post("/couriers/demo-courier/telemetry", content=body)
    assert answer.status_code == 401 and "webhook-signature" in answer.json()["detail"]


async def test_a_malformed_batch_is_refused_in_problem_json_and_kept(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    body = orjson.dumps([entry(0, 4.5), {"DeviceId": LOGGER}])
    answer = await http.post("/couriers/demo-courier/telemetry", content=body, headers=signed(body, "msg_m"))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "/1/EntryTimeEpoch" in answer.json()["detail"]
    assert await count(settings, t.inbound_messages) == 1  # the raw message is kept


async def test_the_lorawan_webhooks_other_messages_are_acknowledged_and_ignored(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    join = uplink("01JJOIN", b"", join_accept={"received_at": "2026-11-10T08:00:00Z"})
    url = "/couriers/demo-courier/telemetry/lorawan"
    answer = await http.post(url, content=join, headers=signed(join, "msg_join"))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert await count(settings, t.inbound_messages) == 0


async def test_an_unknown_logger_is_quarantined_not_applied(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await declared_shipment(http)
    body = orjson.dumps([{**entry(0, 4.5), "DeviceId": "359999999999999", "Shipment": None}])
    answer = await http.post("/couriers/demo-courier/telemetry", content=body, headers=signed(body, "msg_u"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "quarantined"
    assert await count(settings, t.shipment_readings) == 0

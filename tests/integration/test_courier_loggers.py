"""Logger readings over real HTTP (a uvicorn server, real sockets, SQLite, the real broker): the
demo courier's Tive-shaped batches at `/couriers/demo-courier/telemetry` and its LoRaWAN uplinks
at `/couriers/demo-courier/telemetry/lorawan`, signed with Standard Webhooks; a bad signature,
a partner of another dialect and a malformed batch are refused; the webhook's other messages are
acknowledged and ignored; another courier cannot report readings on this one's shipment."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import func, select

from gateway.sdk.signatures import StandardWebhooks
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import envelope_json, place
from tests.support.served import served

DEMO_COURIER_SECRET = "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA=="  # published: the base64 of demo-courier-secret
OTHER_SECRET = "whsec_b3RoZXItY291cmllci1zZWNyZXQ="
OTHER_API_KEY = "other-courier-network-server-key"  # what its The Things Stack webhook sends
HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
LOGGER, TRACKING, SSCC = "350000000000017", "DC000000001", "306141410000001232"
T0_MS = 1_794_297_600_000  # 2026-11-10T08:00:00Z
SW = StandardWebhooks()


def partner_file(directory: Path) -> Path:
    """The demo partners (the demo courier signs with its published Standard Webhooks secret),
    and a second courier that speaks the same logger dialects (Standard Webhooks, or an API key
    as its LoRaWAN network server sends)."""
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": "other-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "dialects": ["tive-telemetry", "tts-lorawan"],
            "demo": True,
            "auth": {
                "standard_webhooks": {
                    "secrets": [{"env": "CGT_TEST_OTHER_SW", "demo_default": OTHER_SECRET}]
                },
                "api_key_sha256": [hashlib.sha256(OTHER_API_KEY.encode()).hexdigest()],
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


def signed(
    body: bytes, message_id: str, *, secret: str = DEMO_COURIER_SECRET, later_s: int = 0
) -> dict[str, str]:
    stamp = int(time.time()) + later_s
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


async def declared_shipment(http: httpx.AsyncClient, n: int = 1, **keys: str | None) -> str:
    """An order placed by the demo hospital (its product travels fresh, 2-8 °C, to the
    manufacturer), its inbound leg declared with the demo courier: tracking number, shipper SSCC
    and logger id unless `keys` says otherwise. Returns the order's COI."""
    placed = await http.post("/api/messages", content=envelope_json(f"site-{n}", place(n)), headers=HOSPITAL)
    order_coi: str = placed.json()["coi"]
    declared = {"leg": "inbound", "courier": "demo-courier", "tracking_number": TRACKING}
    declared |= {"sscc": SSCC, "logger_id": LOGGER, "temperature_class": "2-8C"} | keys
    declared = {k: v for k, v in declared.items() if v is not None}
    answer = await http.post(
        f"/api/orders/{order_coi}/shipments", content=orjson.dumps(declared), headers=HOSPITAL
    )
    assert answer.status_code == 201, answer.text
    return order_coi


async def count(settings: Settings, table: Any) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await dispose(engine)


async def outcomes(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(t.inbound_messages.c.outcome))).scalars())
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
async def test_a_bad_signature_is_refused_and_nothing_applied(
    http: httpx.AsyncClient, settings: Settings, partner: str, secret: str, tamper: bool
) -> None:
    body = orjson.dumps([entry(0, 4.5)])
    headers = signed(body, "msg_bad", secret=secret)
    sent = body.replace(b"4.5", b"5.4") if tamper else body
    for path in ("telemetry", "telemetry/lorawan"):
        answer = await http.post(f"/couriers/{partner}/{path}", content=sent, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert await outcomes(settings) == ["refused", "refused"]  # a known partner's: kept raw, to look into


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


async def test_a_batch_for_a_declared_shipment_is_applied_and_its_readings_stored(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await declared_shipment(http)
    body = orjson.dumps([entry(0, 4.5, ProbeTemperature={"Celsius": 5.0}), entry(15, 5.5)])
    answer = await http.post("/couriers/demo-courier/telemetry", content=body, headers=signed(body, "msg_1"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "applied" and answer.json()["coi"] == order_coi
    assert await count(settings, t.shipment_readings) == 3  # device and probe at 0, device at 15

    # the courier's retry, signed again under the same webhook id: the first answer, nothing stored twice
    retry = signed(body, "msg_1", later_s=1)
    again = await http.post("/couriers/demo-courier/telemetry", content=body, headers=retry)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert await count(settings, t.shipment_readings) == 3


async def test_a_lorawan_uplink_of_a_declared_logger_is_applied(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await declared_shipment(http, logger_id="A1B2C3D4E5F60001")
    body = uplink("01JUPLINK1", bytes([0x01, 0x75, 0x5F, 0x03, 0x67, 0x2E, 0x00]))  # battery 95 %, 4.6 °C
    answer = await http.post(
        "/couriers/demo-courier/telemetry/lorawan", content=body, headers=signed(body, "msg_l")
    )
    assert answer.status_code == 201, answer.text
    assert await count(settings, t.shipment_readings) == 1


async def test_another_courier_cannot_report_on_this_couriers_shipment(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await declared_shipment(http)
    # the other courier's own logger, riding (it says) in the dry shipper declared with the demo courier
    body = orjson.dumps(
        [{**entry(0, 4.5), "DeviceId": "359999999999999", "Shipment": None, "Shipper": {"Serial": SSCC}}]
    )
    answer = await http.post(
        "/couriers/other-courier/telemetry", content=body, headers=signed(body, "msg_o", secret=OTHER_SECRET)
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "NotPermitted"
    assert await count(settings, t.shipment_readings) == 0


async def test_a_label_of_another_order_is_a_mismatch_and_nothing_is_applied(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await declared_shipment(http)
    other_coi = await declared_shipment(
        http, 2, tracking_number="DC000000002", sscc=None, logger_id="350000000000025"
    )
    body = orjson.dumps([entry(0, 4.5, Shipment={"TrackingNumber": TRACKING, "Label": {"Coi": other_coi}})])
    answer = await http.post("/couriers/demo-courier/telemetry", content=body, headers=signed(body, "msg_x"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "quarantined"
    assert await count(settings, t.shipment_readings) == 0


async def test_the_things_stack_authenticates_with_an_api_key(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    await declared_shipment(http, courier="other-courier", sscc=None, logger_id="A1B2C3D4E5F60001")
    body = uplink("01JUPLINK2", bytes([0x03, 0x67, 0x2E, 0x00]))  # 4.6 °C
    url = "/couriers/other-courier/telemetry/lorawan"
    refused = await http.post(url, content=body, headers={"Authorization": "Bearer not-the-key"})
    assert refused.status_code == 401
    answer = await http.post(url, content=body, headers={"Authorization": f"Bearer {OTHER_API_KEY}"})
    assert answer.status_code == 201, answer.text
    assert await count(settings, t.shipment_readings) == 1

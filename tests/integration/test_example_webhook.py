"""The example dialect end to end over real HTTP (a uvicorn server, real sockets, SQLite, the real
broker): a site books a shipment with the lab courier; the courier's Standard Webhooks tell its
pick-up and delivery; a resend is answered again, a replayed attempt, a stale, future or forged
one is refused at the door (logged and counted, never stored); two live secrets both admit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from gateway.sdk.signatures import StandardWebhooks
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import coi, envelope_json, event, place
from tests.support.served import client, on_sqlite

DEMO_SECRET = "whsec_ZGVtby1sYWItY291cmllci1zaWduaW5nLXNlY3JldCE="  # published in mappings/partners/demo.yaml
OLD_SECRET = "whsec_b2xkLXNlY3JldC1vZi10aGUtcm90YXRpbmctY291cmllcg=="
NEW_SECRET = "whsec_bmV3LXNlY3JldC1vZi10aGUtcm90YXRpbmctY291cmllcg=="
HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key"}
SW = StandardWebhooks()


def partner_file(directory: Path) -> Path:
    """The demo partners, plus a lab courier in the middle of rotating its secret."""
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": "rotating-lab-courier",
            "kind": "courier",
            "adapter": "example-webhook",
            "demo": True,
            "auth": {
                "standard_webhooks": {
                    "secrets": [
                        {"env": "CGT_TEST_LAB_COURIER_OLD", "demo_default": OLD_SECRET},
                        {"env": "CGT_TEST_LAB_COURIER_NEW", "demo_default": NEW_SECRET},
                    ]
                }
            },
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return on_sqlite(tmp_path, amqp_url, "canonical-json,example-webhook", partner_file(tmp_path))


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client(settings) as http:
        yield http


def courier_event(kind: str, order_coi: str, event_id: str, **data: str) -> bytes:
    body = {
        "id": event_id,
        "type": kind,
        "timestamp": "2026-11-09T08:00:00Z",
        "data": {"coi": order_coi, "shipment_id": "LC-000123", **data},
    }
    return orjson.dumps(body)


def signed(
    body: bytes, message_id: str, *, secret: str = DEMO_SECRET, at: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": SW.sign(secret, message_id, stamp, body),
        "Content-Type": "application/json",
    }


async def booked_order(http: httpx.AsyncClient) -> str:
    """An order placed and collected by the demo hospital, its shipment booked with the lab courier."""
    placed = await http.post("/api/messages", content=envelope_json("site-1", place(1)), headers=HOSPITAL)
    order_coi: str = placed.json()["coi"]
    shipment = {"shipment_id": "LC-000123", "direction": "to_manufacturer", "courier": "demo-lab-courier"}
    follow = envelope_json(
        "site-2",
        event("collection.completed", coi(order_coi), collected_at="2026-11-09T07:00:00Z"),
        event("shipment.booked", coi(order_coi), shipment=shipment),
    )
    answer = await http.post("/api/messages", content=follow, headers=HOSPITAL)
    assert answer.status_code == 201, answer.text
    return order_coi


async def status_of(http: httpx.AsyncClient, order_coi: str) -> str:
    found = await http.get(f"/api/orders/{order_coi}", headers=OPERATOR)
    status: str = found.json()["order"]["status"]
    return status


async def stored(settings: Settings, *, refused: bool = False) -> int:
    """Messages taken in (or, `refused`: refused requests of known partners kept raw)."""
    engine = create_engine(settings.database_url)
    m = t.inbound_messages.c
    outcome = m.outcome == "refused" if refused else m.outcome != "refused"
    try:
        async with engine.connect() as conn:
            counted = select(func.count()).select_from(t.inbound_messages).where(outcome)
            return int((await conn.execute(counted)).scalar_one())
    finally:
        await dispose(engine)


def refused(reason: str) -> float:
    labels = {"route": "/webhooks/lab-courier/{partner}", "reason": reason}
    return REGISTRY.get_sample_value("cgt_http_refused_total", labels) or 0.0


async def test_a_lab_courier_tells_pick_up_and_delivery(http: httpx.AsyncClient, settings: Settings) -> None:
    order_coi = await booked_order(http)
    url = "/webhooks/lab-courier/demo-lab-courier"
    picked = courier_event("sample.picked_up", order_coi, "evt_1", location="Demo Hospital apheresis unit")
    answer = await http.post(url, content=picked, headers=signed(picked, "msg_1"))
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["status"] == "applied" and answer.json()["message_id"] == "evt_1"
    assert await status_of(http, order_coi) == "in_transit_to_manufacturer"

    # the sender's retry: same webhook id, signed again later; answered with the first answer
    retry = await http.post(url, content=picked, headers=signed(picked, "msg_1", at=int(time.time()) + 1))
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.content == answer.content

    delivered = courier_event("sample.delivered", order_coi, "evt_2")
    answer = await http.post(url, content=delivered, headers=signed(delivered, "msg_2"))
    assert answer.status_code == 201, answer.text
    assert await status_of(http, order_coi) == "received_by_manufacturer"

    # not ours: acknowledged, not stored
    before = await stored(settings)
    invoice = orjson.dumps(
        {"id": "evt_3", "type": "invoice.issued", "timestamp": "2026-11-09T08:00:00Z", "data": {}}
    )
    answer = await http.post(url, content=invoice, headers=signed(invoice, "msg_3"))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert await stored(settings) == before


async def test_a_replayed_attempt_is_refused_and_kept_raw_not_taken(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http)
    url = "/webhooks/lab-courier/demo-lab-courier"
    body = courier_event("sample.picked_up", order_coi, "evt_1")
    headers = signed(body, "msg_1")
    assert (await http.post(url, content=body, headers=headers)).status_code == 201
    before, counted = await stored(settings), refused("replayed")
    again = await http.post(url, content=body, headers=headers)  # the very same signed attempt
    assert again.status_code == 401
    assert again.headers["content-type"] == "application/problem+json"
    assert refused("replayed") == counted + 1
    assert await stored(settings) == before
    assert await stored(settings, refused=True) == 1  # the partner is known: its raw request kept


@pytest.mark.parametrize(
    ("partner", "skew", "secret", "tamper"),
    [
        (
            "demo-lab-courier",
            -330,
            DEMO_SECRET,
            False,
        ),  # stale (tolerance 300 s; a margin for a slow request)
        ("demo-lab-courier", 330, DEMO_SECRET, False),  # from the future
        ("demo-lab-courier", 0, NEW_SECRET, False),  # another partner's secret
        ("demo-lab-courier", 0, DEMO_SECRET, True),  # a body changed after signing
        ("nobody", 0, DEMO_SECRET, False),  # no such partner
        ("demo-courier", 0, DEMO_SECRET, False),  # a partner of another dialect
    ],
)
async def test_stale_future_forged_and_unknown_are_refused_at_the_door(
    http: httpx.AsyncClient, settings: Settings, partner: str, skew: int, secret: str, tamper: bool
) -> None:
    body = courier_event("sample.picked_up", "CHA999926M00001", "evt_9")
    headers = signed(body, "msg_9", secret=secret, at=int(time.time()) + skew)
    reason = "bad_signature" if partner == "demo-lab-courier" else "not_authenticated"
    counted = refused(reason)
    sent = body.replace(b"LC-000123", b"LC-000999") if tamper else body
    answer = await http.post(f"/webhooks/lab-courier/{partner}", content=sent, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert refused(reason) == counted + 1
    assert await stored(settings) == 0
    assert await stored(settings, refused=True) == (0 if partner == "nobody" else 1)


@pytest.mark.parametrize("secret", [OLD_SECRET, NEW_SECRET])
async def test_either_live_secret_admits_while_rotating(http: httpx.AsyncClient, secret: str) -> None:
    body = courier_event("sample.picked_up", "CHA999926M00001", "evt_r")
    answer = await http.post(
        "/webhooks/lab-courier/rotating-lab-courier",
        content=body,
        headers=signed(body, "msg_r", secret=secret),
    )
    # authenticated: the message reaches the door, and is quarantined (no order has this COI)
    assert answer.status_code == 202 and answer.json()["outcome"] == "quarantined"

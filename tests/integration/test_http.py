"""The HTTP shell over real HTTP semantics (ASGI), a real database and the real broker."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from tests.support.builders import coi, envelope_json, event, place

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key"}
PROBLEM = "application/problem+json"


@pytest.fixture
async def client(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        max_body_bytes=4096,
        mllp_port=0,  # any free port: other gateways may run beside this one
    )
    gateway = bootstrap(settings)
    await gateway.start()
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
    await gateway.stop()


async def test_an_order_goes_in_and_can_be_read_back_with_its_timeline(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
    assert response.status_code == 201 and response.headers["content-type"] == "application/json"
    placed = response.json()
    assert placed["status"] == "applied" and placed["message_id"] == "m1"
    order = await client.get(f"/api/orders/{placed['coi']}", headers=OPERATOR)
    assert order.status_code == 200
    body = order.json()
    assert body["order"]["status"] == "ordered"
    assert [e["type"] for e in body["timeline"]] == ["org.cgt.order.placed"]
    assert body["timeline"][0]["id"] == placed["event_ids"][0]


async def test_a_resent_message_gets_the_same_answer(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
    again = await client.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
    assert again.status_code == 200 and again.content == first.content


@pytest.mark.parametrize(
    ("body", "status", "title"),
    [
        (b"{not json", 400, "MalformedMessage"),
        (b'{"message_id": "x", "commands": []}', 400, "MalformedMessage"),
        (b"x" * 5000, 413, None),
    ],
)
async def test_bad_input_gets_problem_json(
    client: httpx.AsyncClient, body: bytes, status: int, title: str | None
) -> None:
    response = await client.post("/api/messages", content=body, headers=HOSPITAL)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["title"] in (title, "TooLarge")


async def test_a_quarantined_message_is_202_and_listed_for_operators(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/messages",
        content=envelope_json("m9", event("order.cancelled", coi("CHA999926ZZZZZZ"))),
        headers=HOSPITAL,
    )
    assert response.status_code == 202 and response.headers["content-type"] == PROBLEM
    assert response.json()["outcome"] == "quarantined"
    listed = (await client.get("/api/quarantine", headers=OPERATOR)).json()
    assert listed["count"] == 1 and listed["items"][0]["reason"] == "unknown_identity"
    assert "CHA999926ZZZZZZ" not in str(listed)
    health = (await client.get("/health")).json()
    assert health["quarantine"]["open"] == 1


async def test_unauthenticated_requests_are_refused(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/messages", content=b"{}")).status_code == 401
    assert (
        await client.post("/api/messages", content=b"{}", headers={"X-API-Key": "nope"})
    ).status_code == 401
    assert (await client.get("/api/quarantine")).status_code == 401
    assert (await client.get("/api/orders/CHA999926ZZZZZZ", headers=HOSPITAL)).status_code == 401
    missing = await client.get("/api/orders/CHA999926ZZZZZZ", headers=OPERATOR)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_a_courier_signs_its_webhook_and_may_bind_its_tracking_number(
    client: httpx.AsyncClient,
) -> None:
    placed = (
        await client.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
    ).json()
    tracking = ExternalRef(namespace="courier:demo-courier:tracking", value="TRK-0001")
    booked = event(
        "shipment.booked",
        coi(placed["coi"]),
        tracking,
        binds=(tracking,),
        shipment={"shipment_id": "SH-1", "direction": "to_manufacturer", "courier": "demo-courier"},
    )
    body = envelope_json("c1", booked)
    stamp = str(int(time.time()))
    signature = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "X-CGT-Partner": "demo-courier",
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": f"sha256={signature}",
    }
    response = await client.post("/api/messages", content=body, headers=headers)
    assert response.status_code == 201, response.text
    forged = await client.post("/api/messages", content=body + b" ", headers=headers)
    assert forged.status_code == 401
    # a courier may not carry a hospital's identifiers
    sneaky = envelope_json("c2", event("order.cancelled", *place(1).refs[1:]))
    stamp = str(int(time.time()))
    signature = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + sneaky, hashlib.sha256).hexdigest()
    headers.update({"X-CGT-Timestamp": stamp, "X-CGT-Signature": f"sha256={signature}"})
    refused = await client.post("/api/messages", content=sneaky, headers=headers)
    assert refused.status_code == 403 and refused.json()["outcome"] == "rejected"


async def test_metrics_count_inbound_messages(client: httpx.AsyncClient) -> None:
    await client.post("/api/messages", content=envelope_json("m1", place(1)), headers=HOSPITAL)
    text = (await client.get("/metrics")).text
    assert (
        'cgt_inbound_messages_total{adapter="canonical-json",outcome="applied",partner="demo-hospital"}'
        in text
    )


async def test_health_is_503_when_the_database_is_down(amqp_url: str) -> None:
    settings = Settings(
        env="test", database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", amqp_url=amqp_url
    )
    gateway = bootstrap(settings)
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/health")
    await gateway.engine.dispose()
    assert response.status_code == 503 and response.json()["database"] == "down"

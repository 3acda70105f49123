"""`POST /mes/{manufacturer}/events` on a real server (uvicorn, SQLite, the real broker): the
manufacturer's API key, the dialect by Content-Type, 202 with the outcome, 200 for a repeat or
traffic that is not ours, problem+json for a refusal (kept raw), 401 for another's key, 415 for a
content type that names no MES dialect, 403 for an order not assigned to the manufacturer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support import mes as m
from tests.support.served import served

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
DEMO = {"X-API-Key": "demo-manufacturer-key", "Content-Type": "application/cloudevents+json"}
DEMO_XML = {"X-API-Key": "demo-manufacturer-key", "Content-Type": "application/xml"}
OTHER = {"X-API-Key": m.OTHER_KEY, "Content-Type": "application/cloudevents+json"}
ROUTE = "/mes/demo-manufacturer/events"


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str) -> Settings:
    return m.settings(tmp_path, amqp_url, "canonical-json,mes,mes-cloudevents,mes-b2mml")


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


async def collected_order(http: httpx.AsyncClient, n: int, product: str = "S1234") -> str:
    placed = await http.post("/api/messages", content=m.order_placed(n, product), headers=HOSPITAL)
    assert placed.status_code == 201, placed.text
    order_coi: str = placed.json()["coi"]
    done = await http.post("/api/messages", content=m.collected(order_coi, n, m.din(n)), headers=HOSPITAL)
    assert done.status_code == 201, done.text
    return order_coi


async def stored(settings: Settings, outcome: str) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(t.inbound_messages)
                .where(t.inbound_messages.c.outcome == outcome)
            )
            return int((await conn.execute(query)).scalar_one())
    finally:
        await dispose(engine)


async def test_events_in_both_dialects_are_taken_and_a_repeat_answered_again(http: httpx.AsyncClient) -> None:
    order = await collected_order(http, 1)
    body = m.received(order, "http-1", m.din(1))
    first = await http.post(ROUTE, content=body, headers=DEMO)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "applied" and first.json()["coi"] == order
    again = await http.post(ROUTE, content=body, headers=DEMO)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    started = await http.post(ROUTE, content=m.b2mml_started(order, "BOD-H-1", "B-H-1"), headers=DEMO_XML)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "applied"


async def test_a_refusal_is_a_problem_and_the_message_is_kept(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    refused = await http.post(ROUTE, content=b'{"specversion": "1.0", "id": "x"', headers=DEMO)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["outcome"] == "rejected" and refused.json()["title"] == "MalformedMessage"
    undeclared = b'<?xml version="1.0"?><b:NotifyOperationsEvent><b:ID>1</b:ID></b:NotifyOperationsEvent>'
    prefix = await http.post(ROUTE, content=undeclared, headers=DEMO_XML)
    assert prefix.status_code == 400 and "undeclared namespace prefix" in prefix.json()["detail"]
    assert await stored(settings, "rejected") == 2


async def test_traffic_that_is_not_ours_is_accepted_and_ignored(http: httpx.AsyncClient) -> None:
    foreign = m.cloud_event("x", "CHA999926M00001", "inv-1").replace(b"org.cgt.mes.x", b"com.example.invoice")
    answered = await http.post(ROUTE, content=foreign, headers=DEMO)
    assert answered.status_code == 200 and answered.json()["status"] == "ignored"


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/cloudevents+json"},
        OTHER,  # another manufacturer's key
        {**HOSPITAL, "Content-Type": "application/cloudevents+json"},  # a site's key
        {"X-API-Key": "wrong-key", "Content-Type": "application/cloudevents+json"},
    ],
)
async def test_only_the_manufacturers_own_key_is_taken(
    http: httpx.AsyncClient, settings: Settings, headers: dict[str, str]
) -> None:
    refused = await http.post(ROUTE, content=m.received("CHA999926M00001", "k-1", m.din(9)), headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert await stored(settings, "rejected") == 0


async def test_a_content_type_that_names_no_mes_dialect_is_415(http: httpx.AsyncClient) -> None:
    refused = await http.post(ROUTE, content=b"COI;DIN", headers={**DEMO, "Content-Type": "text/csv"})
    assert refused.status_code == 415
    assert "application/cloudevents+json" in refused.json()["detail"]


async def test_a_manufacturer_may_not_act_on_an_order_not_assigned_to_it(http: httpx.AsyncClient) -> None:
    theirs = await collected_order(http, 2, product=m.OTHER_PRODUCT)  # made by other-manufacturer
    refused = await http.post(ROUTE, content=m.received(theirs, "h-2", m.din(2)), headers=DEMO)
    assert refused.status_code == 403, refused.text
    assert refused.json()["title"] == "NotPermitted"
    mine = await http.post(
        f"/mes/{m.OTHER}/events", content=m.received(theirs, "h-3", m.din(2)), headers=OTHER
    )
    assert mine.status_code == 202 and mine.json()["status"] == "applied"


async def test_the_answer_names_the_outcome_in_json(http: httpx.AsyncClient) -> None:
    order = await collected_order(http, 3)
    answered = await http.post(ROUTE, content=m.received(order, "h-4", m.din(3)), headers=DEMO)
    body = orjson.loads(answered.content)
    assert body["partner"] == "demo-manufacturer" and body["message_id"] == "h-4" and body["event_ids"]


async def test_an_event_of_no_known_order_is_held_for_review(http: httpx.AsyncClient) -> None:
    held = await http.post(ROUTE, content=m.received("CHA999926M99999", "h-5", m.din(99)), headers=DEMO)
    assert held.status_code == 202
    assert held.headers["content-type"] == "application/problem+json"
    # a receipt whose identifiers do not reconcile is a receipt mismatch (docs/mes-rules.md)
    assert held.json()["outcome"] == "quarantined" and held.json()["title"] == "ReceiptMismatch"

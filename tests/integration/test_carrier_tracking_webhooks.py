"""Carrier tracking webhooks end to end over real HTTP (a uvicorn server, real sockets, SQLite,
the real broker): a courier sending UPS Track Alert events signed with Standard Webhooks moves its
shipment, picked up to delivered; a resend is answered again; an unknown status code is kept,
answered 202 and counted, and changes nothing; another courier's tracking number and a COI label
of another order are not applied; EasyPost-shaped events signed with EasyPost's header HMAC take
the vendor route. Signature refusals (bad, stale, future, replayed) are never stored."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from gateway.settings import ROOT, Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.carriers import (
    NEW_SECRET,
    OLD_SECRET,
    booked_order,
    easypost_signed,
    order_of,
    standard_signed,
    with_carriers,
)
from tests.support.served import served

FIXTURES = Path(__file__).parents[1] / "fixtures" / "couriers"
UPS_TRACKING = "1Z999AA10000000101"  # the fixtures' tracking number
ROUTE = "/couriers/{partner}/tracking"


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CGT_TRACKING_POLL_ENABLED", "false")  # webhooks only: no carrier API here
    return with_carriers(tmp_path).model_copy(update={"amqp_url": amqp_url})


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with served(settings) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


def fixture(shape: str, name: str) -> bytes:
    return (FIXTURES / shape / name).read_bytes().strip()


async def stored(settings: Settings, outcome: str | None = None) -> int:
    """Messages taken in (not requests refused at the door, where those are kept), or of `outcome`."""
    engine = create_engine(settings.database_url)
    try:
        m = t.inbound_messages.c
        query = select(func.count()).select_from(t.inbound_messages)
        query = query.where(m.outcome == outcome if outcome else m.outcome != "refused")
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
    finally:
        await dispose(engine)


def counted(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_ups_track_alerts_move_the_shipment_from_pick_up_to_delivery(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http, "test-ups", UPS_TRACKING)
    url = "/couriers/test-ups/tracking"
    picked = fixture("ups", "alert_picked_up.json")
    answer = await http.post(url, content=picked, headers=standard_signed(picked, "msg_1"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "applied"
    assert (await order_of(http, order_coi))["order"]["status"] == "in_transit_to_manufacturer"

    # the courier's retry of the same event: signed again later, answered with the first answer
    retry = await http.post(
        url, content=picked, headers=standard_signed(picked, "msg_1", at=int(time.time()) + 1)
    )
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.content == answer.content

    for name, message_id in (("alert_out_for_delivery.json", "msg_2"), ("alert_delivered.json", "msg_3")):
        body = fixture("ups", name)
        answer = await http.post(url, content=body, headers=standard_signed(body, message_id))
        assert answer.status_code == 201, answer.text
    found = await order_of(http, order_coi)
    assert found["order"]["status"] == "received_by_manufacturer"
    (shipment,) = found["order"]["shipments"]
    assert shipment["status"] == "delivered" and shipment["delivered_at"] == "2026-11-10T13:50:04Z"
    (delivered,) = [e for e in found["timeline"] if e["type"] == "org.cgt.shipment.delivered"]
    assert delivered["source"] == "/partners/test-ups/carrier-tracking"
    assert (
        delivered["data"]["carrier_code"] == "D/FS/011" and delivered["data"]["signed_by"] == "CELL LAB DOCK"
    )

    # a label printed is known, and not the order's business: acknowledged, not stored
    before = await stored(settings)
    label = fixture("ups", "alert_label_created.json")
    answer = await http.post(url, content=label, headers=standard_signed(label, "msg_4"))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert await stored(settings) == before


async def test_an_unknown_status_code_is_kept_answered_and_counted_never_applied(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http, "test-ups", UPS_TRACKING)
    labels = {"partner": "test-ups", "carrier": "ups", "code": "D/ZZ/999"}
    before = counted("cgt_tracking_unknown_status_total", labels)
    body = fixture("ups", "alert_unknown_code.json")
    answer = await http.post(
        "/couriers/test-ups/tracking", content=body, headers=standard_signed(body, "msg_u")
    )
    assert answer.status_code == 202, answer.text
    problem = answer.json()
    assert (
        problem["outcome"] == "rejected" and problem["detail"] == "not applied: unknown status code D/ZZ/999"
    )
    assert await stored(settings, "rejected") == 1  # the raw message is kept
    assert counted("cgt_tracking_unknown_status_total", labels) == before + 1
    assert (await order_of(http, order_coi))["order"]["status"] == "collected"


async def test_another_couriers_tracking_number_changes_nothing(http: httpx.AsyncClient) -> None:
    order_coi = await booked_order(http, "test-ups", UPS_TRACKING)
    # test-aftership names a tracking number booked with test-ups: unknown in its namespace, so a
    # parcel of no declared shipment: not ours, acknowledged, stored nowhere, counted
    labels = {"partner": "test-aftership", "adapter": "carrier-tracking", "reason": "unknown_identifier"}
    before = counted("cgt_inbound_ignored_total", labels)
    update = orjson.loads(fixture("aftership", "delivered.json"))
    update["msg"]["tracking_number"] = UPS_TRACKING
    body = orjson.dumps(update)
    answer = await http.post(
        "/couriers/test-aftership/tracking", content=body, headers=standard_signed(body, "m1")
    )
    assert answer.status_code == 200 and answer.json()["code"] == "unknown_identifier"
    assert counted("cgt_inbound_ignored_total", labels) == before + 1
    assert (await order_of(http, order_coi))["order"]["status"] == "collected"
    # and naming that order by the COI on its label: not a party to it, refused
    update["msg"]["order_id"], update["event_id"] = order_coi, "evt-2"  # a new event: a new id
    body = orjson.dumps(update)
    answer = await http.post(
        "/couriers/test-aftership/tracking", content=body, headers=standard_signed(body, "m2")
    )
    assert answer.status_code == 403, answer.text
    assert (await order_of(http, order_coi))["order"]["status"] == "collected"


async def test_a_label_of_another_order_quarantines_the_event(http: httpx.AsyncClient) -> None:
    first = await booked_order(http, "test-aftership", "111100000101", n=1)
    second = await booked_order(http, "test-aftership", "111100000999", n=2)
    update = orjson.loads(fixture("aftership", "delivered.json"))
    update["msg"]["order_id"], update["event_id"] = second, "evt-3"  # the other order's label
    body = orjson.dumps(update)
    answer = await http.post(
        "/couriers/test-aftership/tracking", content=body, headers=standard_signed(body, "m3")
    )
    assert answer.status_code == 202 and answer.json()["outcome"] == "quarantined"
    assert answer.json()["error"] == "ConflictingIdentities"
    for order_coi in (first, second):
        assert (await order_of(http, order_coi))["order"]["status"] == "collected"
    update["msg"]["order_id"], update["event_id"] = first, "evt-4"  # its own COI: applied
    body = orjson.dumps(update)
    answer = await http.post(
        "/couriers/test-aftership/tracking", content=body, headers=standard_signed(body, "m4")
    )
    assert answer.status_code == 201, answer.text
    assert (await order_of(http, first))["order"]["status"] == "received_by_manufacturer"


async def test_easypost_events_take_the_vendor_route_with_its_header_hmac(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    order_coi = await booked_order(http, "test-easypost", "EZ1000000101")
    body = fixture("easypost", "tracker_updated_delivered.json")
    vendor = "/couriers/test-easypost/tracking/vendor-hmac"
    answer = await http.post(vendor, content=body, headers=easypost_signed(body))
    assert answer.status_code == 201, answer.text
    assert (await order_of(http, order_coi))["order"]["status"] == "received_by_manufacturer"
    again = await http.post(vendor, content=body, headers=easypost_signed(body))  # EasyPost's retry
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    before = await stored(settings)
    forged = await http.post(vendor, content=body, headers=easypost_signed(body, "another secret"))
    assert forged.status_code == 401
    # an EasyPost partner has no Standard Webhooks secret: the plain route does not know it
    plain = await http.post(
        "/couriers/test-easypost/tracking", content=body, headers=standard_signed(body, "x")
    )
    assert plain.status_code == 401
    assert await stored(settings) == before


@pytest.mark.parametrize(
    ("case", "skew", "secret"),
    [
        ("stale", -330, NEW_SECRET),  # tolerance 300 s, and a margin for a slow request
        ("future", 330, NEW_SECRET),
        ("bad", 0, "whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQtb2YtYW5vdGhlcg=="),
        ("tampered", 0, NEW_SECRET),
    ],
)
async def test_bad_stale_future_and_tampered_signatures_are_refused_unstored(
    http: httpx.AsyncClient, settings: Settings, case: str, skew: int, secret: str
) -> None:
    body = fixture("ups", "alert_picked_up.json")
    headers = standard_signed(body, f"msg_{case}", secret=secret, at=int(time.time()) + skew)
    labels = {"route": ROUTE, "reason": "bad_signature"}
    before = counted("cgt_http_refused_total", labels)
    sent = body.replace(b"Springfield", b"Elsewhere") if case == "tampered" else body
    answer = await http.post("/couriers/test-ups/tracking", content=sent, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert counted("cgt_http_refused_total", labels) == before + 1
    assert await stored(settings) == 0


async def test_a_replayed_attempt_is_refused_and_either_live_secret_admits(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    body = fixture("ups", "alert_picked_up.json")
    for secret, message_id in ((OLD_SECRET, "msg_old"), (NEW_SECRET, "msg_new")):  # rotating
        headers = standard_signed(body, message_id, secret=secret)
        answer = await http.post("/couriers/test-ups/tracking", content=body, headers=headers)
        assert answer.status_code in (201, 202, 200), answer.text  # authenticated: it reached the door
    kept = await stored(settings)
    replayed = await http.post(
        "/couriers/test-ups/tracking", content=body, headers=headers
    )  # that very attempt
    assert replayed.status_code == 401
    assert await stored(settings) == kept
    # traffic that is not the order's business is refused as a replay too, though it stores nothing
    label = fixture("ups", "alert_label_created.json")
    headers = standard_signed(label, "msg_label")
    first = await http.post("/couriers/test-ups/tracking", content=label, headers=headers)
    again = await http.post("/couriers/test-ups/tracking", content=label, headers=headers)
    assert (first.status_code, again.status_code) == (200, 401)
    assert again.json()["detail"] == "this signed request was received before"


# EasyPost's published vector (EasyPost/examples, official/fixtures: client-library-fixtures.json
# `webhooks` and event-body.json): the body file without its trailing LF, the secret "sécret".
EASYPOST_VECTOR = "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"


def samples_dir() -> Path:
    """The shared samples (CGT_SAMPLES_DIR, else beside the repository, else /work/shared): the
    test fails without them, never skips."""
    candidates = [
        os.environ.get("CGT_SAMPLES_DIR"),
        ROOT.parent / "shared" / "samples",
        "/work/shared/samples",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "webhooks").is_dir():
            return Path(candidate)
    pytest.fail(f"the shared samples are not there (set CGT_SAMPLES_DIR): tried {candidates}")


async def test_easypost_published_vector_verifies_through_the_vendor_route(http: httpx.AsyncClient) -> None:
    body = (samples_dir() / "webhooks" / "easypost-event-body.json").read_bytes().removesuffix(b"\n")
    headers = {"X-Hmac-Signature": EASYPOST_VECTOR, "Content-Type": "application/json"}
    answer = await http.post("/couriers/test-easypost/tracking/vendor-hmac", content=body, headers=headers)
    # authenticated, read (FedEx in transit), and not ours: no shipment has its tracking number here
    assert answer.status_code == 200 and answer.json()["code"] == "unknown_identifier", answer.text
    with_lf = await http.post(
        "/couriers/test-easypost/tracking/vendor-hmac", content=body + b"\n", headers=headers
    )
    assert with_lf.status_code == 401  # the vector signs the body without its trailing LF

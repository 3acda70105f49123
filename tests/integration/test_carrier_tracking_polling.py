"""Polling couriers without webhooks, against the real database and the real door, the couriers'
APIs mocked with respx in their own shapes (DHL unified tracking, FedEx Track API): conditional
requests and 304s, 429 with Retry-After and backoff, a restart that takes no event twice, the
delivered shipment no longer polled, and two replicas never polling one shipment at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from sqlalchemy import select

from adapters.couriers.tracking.adapter import CarrierTracking
from adapters.couriers.tracking.poller import PollSettings, TrackingPoller
from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.store import tables as t
from tests.support.builders import coi, envelope_json, event, place
from tests.support.carriers import FEDEX_URL, UPS_TOKEN_URL, UPS_URL, with_carriers

FIXTURES = Path(__file__).parents[1] / "fixtures" / "couriers"
DHL = "https://dhl.test/track/shipments"
T0 = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("CGT_TRACKING_POLL_ENABLED", "false")  # the test drives its pollers itself
    gw = bootstrap(with_carriers(tmp_path).model_copy(update={"amqp_url": amqp_url}))
    await gw.start()
    yield gw
    await gw.stop()


@pytest.fixture
async def either_gateway(
    tmp_path: Path, amqp_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    """The gateway on SQLite and on PostgreSQL (where claims skip rows another replica locked)."""
    monkeypatch.setenv("CGT_TRACKING_POLL_ENABLED", "false")
    settings = with_carriers(tmp_path).model_copy(update={"amqp_url": amqp_url, "database_url": database_url})
    gw = bootstrap(settings)
    await gw.start()
    yield gw
    await gw.stop()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def poller(gw: Gateway, clock: Clock) -> TrackingPoller:
    tracking = gw.adapters["carrier-tracking"]
    assert isinstance(tracking, CarrierTracking)
    made = TrackingPoller.for_runtime(gw, tracking, tracking.profiles, tracking.tables)
    made.clock, made.jitter = clock, lambda: 0.5
    made.settings = PollSettings(enabled=False, enrol_every_s=0)
    made.client = httpx.AsyncClient()
    return made


async def booked(gw: Gateway, courier: str, tracking: str, n: int = 1) -> str:
    """An order of the demo hospital, collected, its shipment booked with `courier`, which bound
    the tracking number in its namespace."""
    site, sender = gw.partners.get("demo-hospital"), gw.partners.get(courier)
    canonical = gw.adapters["canonical-json"]
    outcome, _ = await gw.door.accept(canonical, site, envelope_json(f"p{n}", place(n)), transport="http")
    order_coi = outcome.coi
    assert order_coi
    shipment = {
        "shipment_id": tracking,
        "direction": "to_manufacturer",
        "courier": courier,
        "tracking_number": tracking,
    }
    ref = ExternalRef(namespace=f"courier:{courier}:tracking", value=tracking)
    for partner, raw in (
        (
            site,
            envelope_json(
                f"b{n}",
                event("collection.completed", coi(order_coi), collected_at="2026-11-09T07:00:00Z"),
                event("shipment.booked", coi(order_coi), shipment=shipment),
            ),
        ),
        (
            sender,
            envelope_json(
                f"c{n}", event("shipment.booked", coi(order_coi), ref, binds=(ref,), shipment=shipment)
            ),
        ),
    ):
        outcome, _ = await gw.door.accept(canonical, partner, raw, transport="http")
        assert outcome.status == "applied", outcome
    return order_coi


async def kept(gw: Gateway, partner: str) -> list[str]:
    query = select(t.inbound_messages.c.outcome).where(
        t.inbound_messages.c.partner == partner, t.inbound_messages.c.transport == "poll"
    )
    async with gw.engine.connect() as conn:
        return sorted((await conn.execute(query)).scalars())


async def status_of(gw: Gateway, order_coi: str) -> str:
    async with gw.engine.connect() as conn:
        found = (
            await conn.execute(select(t.orders.c.status).where(t.orders.c.coi == order_coi))
        ).scalar_one()
    return str(found)


def dhl_answer(order_coi: str, keep: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
    document = orjson.loads(
        (FIXTURES / "dhl" / "unified.poll.json").read_bytes().replace(b"CHA999926M00001", order_coi.encode())
    )
    shipment = document["shipments"][0]
    shipment["events"] = [e for e in shipment["events"] if keep(e)]
    return document


async def test_polls_are_conditional_back_off_and_take_no_event_twice_across_a_restart(
    gateway: Gateway,
) -> None:
    order_coi = await booked(gateway, "test-dhl", "7770000101")
    clock, seen = Clock(), []
    answers: list[httpx.Response] = []

    def carrier(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    with respx.mock(assert_all_called=False) as mock:
        mock.get(DHL, params={"trackingNumber": "7770000101"}).mock(side_effect=carrier)
        first = poller(gateway, clock)
        # 1. in transit (and a pre-transit that is not the order's business), with an ETag
        in_transit = dhl_answer(order_coi, lambda e: e["statusCode"] in ("transit", "pre-transit"))
        answers.append(httpx.Response(200, json=in_transit, headers={"ETag": '"v1"'}))
        assert await first.sweep() == 2
        assert seen[-1].headers["DHL-API-Key"] == "dhl-test-key"
        assert "if-none-match" not in seen[-1].headers
        assert await kept(gateway, "test-dhl") == ["applied"]
        await first.stop()

        # 2. a restart: a new poller, its interval later; the ETag goes back, 304: nothing new
        clock.advance(700)
        second = poller(gateway, clock)
        answers.append(httpx.Response(304))
        assert await second.sweep() == 0
        assert seen[-1].headers["if-none-match"] == '"v1"'
        # 3. 429 with Retry-After: nothing taken, and not asked again before it says
        clock.advance(700)
        answers.append(httpx.Response(429, headers={"Retry-After": "1000"}))
        assert await second.sweep() == 0
        asked = len(seen)
        clock.advance(900)  # backoff 600 * 2 with half jitter = 900 s, but Retry-After says 1000
        assert await second.sweep() == 0 and len(seen) == asked
        # 4. the whole history, no validators: only the two events not taken before go in
        clock.advance(200)
        answers.append(httpx.Response(200, json=dhl_answer(order_coi)))
        assert await second.sweep() == 2
        assert await kept(gateway, "test-dhl") == ["applied", "applied", "rejected"]  # + unknown, kept
        assert await status_of(gateway, order_coi) == "received_by_manufacturer"
        # 5. delivered: the shipment is not polled again
        clock.advance(10_000)
        assert await second.sweep() == 0 and len(seen) == asked + 1
        await second.stop()


def dhl_page(document: dict[str, Any], events: slice, offset: int, next_link: str | None) -> dict[str, Any]:
    """One page of a DHL answer: its shipment's `events` slice, its own url and the next's."""
    page = orjson.loads(orjson.dumps(document))
    page["shipments"][0]["events"] = document["shipments"][0]["events"][events]
    page["url"] = f"/track/shipments?trackingNumber=7770000101&offset={offset}&limit=2"
    page["nextUrl"] = next_link or page["url"]  # the last page links to itself
    return page


async def test_an_answer_of_several_pages_is_read_to_its_end_on_the_carriers_own_origin(
    gateway: Gateway,
) -> None:
    order_coi = await booked(gateway, "test-dhl", "7770000101")
    whole, clock, seen = dhl_answer(order_coi), Clock(), []
    pages = {
        "0": dhl_page(whole, slice(0, 2), 0, "/track/shipments?trackingNumber=7770000101&offset=2&limit=2"),
        "2": dhl_page(whole, slice(2, None), 2, None),
    }

    def carrier(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("offset", "0")], headers={"ETag": '"p"'})

    with respx.mock(assert_all_called=False) as mock:
        mock.get(DHL).mock(side_effect=carrier)
        polling = poller(gateway, clock)
        assert await polling.sweep() == 4  # every event of both pages went to the door
        assert [r.url.params.get("offset") for r in seen] == [None, "2"]
        assert seen[1].headers["DHL-API-Key"] == "dhl-test-key" and "if-none-match" not in seen[1].headers
        assert await status_of(gateway, order_coi) == "received_by_manufacturer"
        await polling.stop()


async def test_a_next_page_on_another_origin_is_not_followed(gateway: Gateway) -> None:
    """The carrier's API key goes to the carrier's API only: a link elsewhere ends the answer
    (respx would fail the test on a request to a host it does not mock)."""
    order_coi = await booked(gateway, "test-dhl", "7770000101")
    first = dhl_page(dhl_answer(order_coi), slice(0, 2), 0, "https://elsewhere.test/track?offset=2")
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(DHL).mock(return_value=httpx.Response(200, json=first))
        polling = poller(gateway, Clock())
        assert await polling.sweep() == 2
        assert route.call_count == 1
        await polling.stop()


async def test_fedex_is_polled_by_post_and_its_scans_apply_oldest_first(gateway: Gateway) -> None:
    order_coi = await booked(gateway, "test-fedex", "794600000101")
    clock = Clock()
    body = (
        (FIXTURES / "fedex" / "track_response.poll.json")
        .read_bytes()
        .replace(b"CHA999926M00001", order_coi.encode())
    )
    with respx.mock() as mock:
        route = mock.post(FEDEX_URL).mock(
            side_effect=[httpx.Response(503), httpx.Response(200, content=body)]
        )
        polling = poller(gateway, clock)
        assert await polling.sweep() == 0  # unavailable: backoff
        clock.advance(1200)
        assert await polling.sweep() == 4
        sent = orjson.loads(route.calls.last.request.content)
        assert sent["trackingInfo"][0]["trackingNumberInfo"]["trackingNumber"] == "794600000101"
        await polling.stop()
    assert (
        await kept(gateway, "test-fedex") == ["applied"] * 4
    )  # picked up, exception, out for delivery, delivered
    assert await status_of(gateway, order_coi) == "received_by_manufacturer"


async def test_an_api_that_issues_bearer_tokens_is_polled_with_one_renewed_when_refused(
    gateway: Gateway,
) -> None:
    order_coi = await booked(gateway, "test-ups-api", "1Z999AA10000000202")
    clock = Clock()
    body = (FIXTURES / "ups" / "track_api.poll.json").read_bytes()
    url = UPS_URL.replace("{tracking_number}", "1Z999AA10000000202")
    with respx.mock() as mock:
        tokens = mock.post(UPS_TOKEN_URL).mock(
            side_effect=[
                httpx.Response(200, json={"access_token": "tok-1", "expires_in": 14399}),
                httpx.Response(200, json={"access_token": "tok-2", "expires_in": 14399}),
            ]
        )
        # the first token refused (revoked before its time): renewed once, and the poll asked again
        api = mock.get(url).mock(side_effect=[httpx.Response(401), httpx.Response(200, content=body)])
        polling = poller(gateway, clock)
        assert await polling.sweep() == 3  # every new event handed in: the label (not tracked), two moves
        await polling.stop()
    assert tokens.call_count == 2
    assert [c.request.headers["authorization"] for c in api.calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert await kept(gateway, "test-ups-api") == ["applied"] * 2
    assert await status_of(gateway, order_coi) == "received_by_manufacturer"


async def test_two_replicas_never_poll_one_shipment_at_once(either_gateway: Gateway) -> None:
    gateway = either_gateway
    for n, number in enumerate(("7770000201", "7770000202", "7770000203"), start=1):
        await booked(gateway, "test-dhl", number, n)
    clock = Clock()
    with respx.mock() as mock:
        route = mock.get(DHL).mock(return_value=httpx.Response(304))
        one, other = poller(gateway, clock), poller(gateway, clock)
        await one.sweep()  # enrols and polls the three
        assert route.call_count == 3
        clock.advance(700)
        await asyncio.gather(one.sweep(), other.sweep())
        asked = sorted(str(c.request.url.params["trackingNumber"]) for c in route.calls)
        assert asked == sorted(["7770000201", "7770000202", "7770000203"] * 2)
        await one.stop()
        await other.stop()

"""Shipments declared before couriers speak of them: POST /api/orders/{coi}/shipments, through the
core's one path, on SQLite and PostgreSQL; and a courier acting only on the shipments declared for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.support.builders import coi, event
from tests.support.couriers import (
    OPERATOR,
    OTHER_HOSPITAL,
    declare,
    from_courier,
    order_of,
    placed,
    running,
    settings_for,
)

PROBLEM = "application/problem+json"


@pytest.fixture
async def gateway(
    database_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running(settings_for(database_url, amqp_url, tmp_path)) as pair:
        yield pair


async def _bound(engine: AsyncEngine) -> dict[str, str | None]:
    c = t.crosswalk.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(c.namespace, c.value, c.order_id))).all()
    return {f"{n}={v}": o for n, v, o in rows}


async def _outbox(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [
            r for (r,) in (await conn.execute(select(t.outbox.c.routing_key).order_by(t.outbox.c.id))).all()
        ]


async def _audit(engine: AsyncEngine) -> list[tuple[str, str]]:
    a = t.audit_records.c
    async with engine.connect() as conn:
        return [(x, y) for x, y in (await conn.execute(select(a.actor, a.action).order_by(a.seq))).all()]


async def test_the_ordering_site_declares_a_shipment_bound_in_the_crosswalk(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    order_coi = await placed(http)
    response = await declare(http, order_coi, sscc="106141411234567897", logger_id="LOG-0001")
    assert response.status_code == 201, response.text
    shipment = response.json()["shipment"]
    assert shipment["courier"] == "demo-courier" and shipment["direction"] == "to_manufacturer"
    assert shipment["temperature_class"] == "2-8C"  # S9999's inbound leg, from the class file
    order = (await order_of(http, order_coi))["order"]
    bound = await _bound(gw.engine)
    for key in (
        "courier:demo-courier:tracking=1Z0000000000000001",
        "gs1:sscc=106141411234567897",
        "courier:demo-courier:logger=LOG-0001",
    ):
        assert bound[key] == order["order_id"]
    assert (await _outbox(gw.engine))[-1] == "shipment.booked"
    assert ("partner:demo-hospital", "shipment.booked") in await _audit(gw.engine)
    assert order["shipments"][0]["tracking_number"] == "1Z0000000000000001"


async def test_an_operator_declares_the_outbound_leg_cryogenic_by_default(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, http = gateway
    order_coi = await placed(http)
    response = await declare(http, order_coi, OPERATOR, leg="outbound", tracking_number="OUT-1")
    assert response.status_code == 201, response.text
    assert response.json()["shipment"]["temperature_class"] == "<=-150C"
    given = await declare(http, order_coi, OPERATOR, tracking_number="IN-2", temperature_class="ambient")
    assert given.json()["shipment"]["temperature_class"] == "15-25C"


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"courier": "no-such-courier"}, 422, "/courier"),
        ({"courier": "demo-hospital"}, 422, "/courier"),
        ({"temperature_class": "lukewarm"}, 422, "/temperature_class"),
        ({"leg": "sideways"}, 400, "/leg"),
        ({"sscc": "12"}, 400, "/sscc"),
        ({"extra": 1}, 400, "/extra"),
    ],
)
async def test_a_bad_declaration_is_problem_json(
    gateway: tuple[Gateway, httpx.AsyncClient], body: dict[str, object], status: int, where: str
) -> None:
    _, http = gateway
    order_coi = await placed(http)
    response = await declare(http, order_coi, **body)
    assert response.status_code == status and response.headers["content-type"] == PROBLEM
    assert response.json()["location"] == where


async def test_unknown_order_other_sites_order_and_no_key(gateway: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, http = gateway
    order_coi = await placed(http)
    unknown = await declare(http, "A999926000001" + order_coi[-2:])
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    other = await declare(http, order_coi, OTHER_HOSPITAL)
    assert other.status_code == 403 and other.headers["content-type"] == PROBLEM
    assert ("partner:other-hospital", "message.rejected") in await _audit(gw.engine)
    assert "courier:demo-courier:tracking=1Z0000000000000001" not in await _bound(gw.engine)
    anonymous = await declare(http, order_coi, {"Content-Type": "application/json"})
    assert anonymous.status_code == 401


async def test_a_repeat_with_the_same_idempotency_key_is_answered_again(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    order_coi = await placed(http)
    headers = {"X-API-Key": "demo-hospital-key", "Idempotency-Key": "declare-1"}
    first = await declare(http, order_coi, headers)
    again = await declare(http, order_coi, headers)
    assert first.status_code == 201 and again.status_code == 200 and again.content == first.content
    assert (await _outbox(gw.engine)).count("shipment.booked") == 1


async def test_a_courier_acts_only_on_shipments_declared_for_it(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    order_coi = await placed(http)
    assert (await declare(http, order_coi, sscc="106141411234567897", logger_id="LOG-A")).status_code == 201
    out = await declare(http, order_coi, leg="outbound", courier="other-courier", tracking_number="OC-1")
    assert out.status_code == 201
    ours = event(
        "shipment.in_transit",
        ExternalRef(namespace="courier:demo-courier:tracking", value="1Z0000000000000001"),
        shipment_id="1Z0000000000000001",
    )
    assert (await from_courier(http, "demo-courier", ours)).status_code == 201
    # the other courier names demo-courier's shipment by each of its keys: refused, audited
    for key in ("1Z0000000000000001", "106141411234567897", "LOG-A", "demo-courier-1Z0000000000000001"):
        theirs = event("shipment.in_transit", coi(order_coi), shipment_id=key)
        refused = await from_courier(http, "other-courier", theirs)
        assert refused.status_code == 403, (key, refused.text)
    # by the SSCC as an identifier, while naming its own shipment in the payload
    sscc = event(
        "shipment.in_transit",
        ExternalRef(namespace="gs1:sscc", value="106141411234567897"),
        shipment_id="OC-1",
    )
    assert (await from_courier(http, "other-courier", sscc)).status_code == 403
    # another courier's tracking or logger namespace
    for namespace in ("courier:demo-courier:tracking", "courier:demo-courier:logger"):
        foreign = event(
            "shipment.in_transit", ExternalRef(namespace=namespace, value="X"), shipment_id="OC-1"
        )
        assert (await from_courier(http, "other-courier", foreign)).status_code == 403
    rejected = [x for x in await _audit(gw.engine) if x == ("partner:other-courier", "message.rejected")]
    assert len(rejected) == 7
    # its own shipment, by its own tracking number: taken
    own = event(
        "shipment.in_transit",
        ExternalRef(namespace="courier:other-courier:tracking", value="OC-1"),
        shipment_id="OC-1",
    )
    assert (await from_courier(http, "other-courier", own)).status_code == 201

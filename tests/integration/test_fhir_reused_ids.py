"""FHIR requests under a used id (a placer number's conditional create, a resource version): the
same order sent again, even in a rebuilt Bundle, is answered from the first time; other content is
refused 409 with an OperationOutcome, kept raw, and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.integration.test_fhir_support import (
    KEY,
    MRN,
    PLACER,
    fixture,
    order_bundle,
    running,
    settings,
    valid_fhir,
)

Client = tuple[Gateway, httpx.AsyncClient]


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[Client]:
    async with running(settings(tmp_path, amqp_url)) as pair:
        yield pair


async def send(
    http: httpx.AsyncClient, body: dict[str, Any], path: str = "/fhir/r4", **headers: str
) -> httpx.Response:
    return await http.post(path, content=orjson.dumps(body), headers={**KEY, **headers})


async def count(gateway: Gateway, table: t.Table) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def rebuilt(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same order as a client builds it again: new Bundle id and time, new urn:uuids, other
    key order and spacing."""
    text = orjson.dumps(bundle).decode().replace("8f1c2a6e-0001-4c1e-9d1e-", "0b7d3f10-0002-4aaa-8bbb-")
    again: dict[str, Any] = orjson.loads(text)
    again.update(id="rebuilt", timestamp="2026-11-02T09:05:00Z")
    again["identifier"]["value"] = "BUNDLE-REBUILT"
    return dict(reversed(again.items()))


def refused_with_409(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    assert "location" not in response.headers and "idempotent-replayed" not in response.headers
    outcome = valid_fhir(response.json())
    issue = outcome["issue"][0]
    assert outcome["resourceType"] == "OperationOutcome"
    assert (issue["severity"], issue["code"], issue["diagnostics"]) == ("error", "duplicate", "DuplicateKey")
    assert "new id" in issue["details"]["text"] and "MRN" not in response.text
    return outcome


async def test_a_rebuilt_bundle_of_the_same_order_is_a_repeat(app: Client) -> None:
    gateway, http = app
    first = await send(http, order_bundle(1))
    again = await send(http, rebuilt(order_bundle(1)))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content and again.headers["location"] == first.headers["location"]
    assert await count(gateway, t.orders) == 1 and await count(gateway, t.inbound_messages) == 1


async def test_a_bundle_the_first_answer_does_not_fit_is_refused_409(app: Client) -> None:
    gateway, http = app
    first = await send(http, order_bundle(1))
    longer = order_bundle(1)  # the same order, and one entry more than the first answer answers
    extra = {**longer["entry"][2], "fullUrl": "urn:uuid:0b7d3f10-0002-4aaa-8bbb-000000000009"}
    longer["entry"].append(extra)
    assert first.status_code == 201
    refused_with_409(await send(http, longer))
    assert await count(gateway, t.orders) == 1


async def test_another_order_under_a_used_placer_number_is_refused_409(app: Client) -> None:
    gateway, http = app
    first = await send(http, order_bundle(1))
    other = order_bundle(1)  # the same placer number, another patient
    raw = orjson.dumps(other).replace(b"MRN-000001", b"MRN-000009")
    refused = await http.post("/fhir/r4", content=raw, headers=KEY)
    refused_with_409(refused)
    assert first.status_code == 201
    async with gateway.engine.connect() as conn:
        kept = (await conn.execute(select(t.inbound_messages.c.raw, t.inbound_messages.c.outcome))).all()
        mrns = {r.value for r in await conn.execute(select(t.crosswalk.c.value))}
        actions = [r.action for r in await conn.execute(select(t.audit_records.c.action))]
    assert (raw, "rejected") in [tuple(k) for k in kept]
    assert "MRN-000009" not in mrns and await count(gateway, t.orders) == 1
    assert actions[-1] == "message.rejected"


async def test_a_conditional_create_that_says_something_else_is_refused_409(app: Client) -> None:
    gateway, http = app
    first = await send(http, order_bundle(2))
    single = fixture("order-transaction.json")["entry"][4]["resource"]
    single["identifier"][0]["value"] = "PO-000002"
    single["subject"] = {"identifier": {"system": MRN, "value": "MRN-000002"}}
    conditional = {"If-None-Exist": f"identifier={PLACER}|PO-000002"}
    # Without the Bundle's appointment and practitioner: not what was ordered under PO-000002.
    refused_with_409(await send(http, single, "/fhir/r4/ServiceRequest", **conditional))
    assert first.status_code == 201 and await count(gateway, t.orders) == 1


async def test_a_resource_version_reused_for_other_content_is_refused_409(app: Client) -> None:
    gateway, http = app
    await send(http, order_bundle(1))
    request = fixture("servicerequest-revoked.json")  # meta.versionId 3: the key
    held = await http.put(
        "/fhir/r4/ServiceRequest/sr-000001",
        content=orjson.dumps({**request, "status": "on-hold"}),
        headers=KEY,
    )
    assert held.status_code == 200, held.text
    again = await http.put(
        "/fhir/r4/ServiceRequest/sr-000001",
        content=orjson.dumps({**request, "status": "on-hold"}),
        headers=KEY,
    )
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == held.content
    revoked = await http.put("/fhir/r4/ServiceRequest/sr-000001", content=orjson.dumps(request), headers=KEY)
    refused_with_409(revoked)
    async with gateway.engine.connect() as conn:
        status = (await conn.execute(select(t.orders.c.status))).scalar_one()
    assert status == "on_hold"

"""A hospital's FHIR feed as an EHR sends it, over the running app: every order (lab, imaging,
prescriptions), Bundles with clinical context, patients the gateway never heard of. Therapy orders
are taken; the rest is acknowledged and ignored, or refused when it is not valid R4."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.sql import FromClause

from gateway import metrics
from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.integration.test_fhir_support import (
    FHIR_JSON,
    FIXTURES,
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
CORPUS = FIXTURES / "corpus"


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[Client]:
    async with running(settings(tmp_path, amqp_url)) as pair:
        yield pair


def corpus(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((CORPUS / name).read_bytes())
    return document


async def send(http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    response = await http.request(method, path, content=orjson.dumps(body), headers=KEY)
    assert response.headers["content-type"] == FHIR_JSON
    return response


async def count(gateway: Gateway, table: FromClause) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def ignored(reason: str) -> float:
    value: float = metrics.IGNORED.labels("demo-hospital", "fhir-r4", reason)._value.get()
    return value


def assert_ignored(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 200, response.text
    (issue,) = valid_fhir(response.json())["issue"]
    assert (issue["severity"], issue["code"], issue["diagnostics"]) == (
        "information",
        "informational",
        reason,
    )


# -- item 1: any order code became a CAR-T order --------------------------------------------------
async def test_orders_that_name_no_therapy_product_are_acknowledged_ignored_and_counted(app: Client) -> None:
    gateway, http = app
    before = ignored("not_a_therapy_order")
    lab = corpus("05-servicerequest-lipid-contained.json")
    assert_ignored(await send(http, "POST", "/fhir/r4/ServiceRequest", lab), "not_a_therapy_order")
    prescription = corpus("10-medicationrequest-external-medication.json")
    assert_ignored(
        await send(http, "POST", "/fhir/r4/MedicationRequest", prescription), "not_a_therapy_order"
    )
    # The demo order with its codes stripped of their system: no default makes them ISBT 128.
    bundle = order_bundle(31)
    for entry in (4, 6):
        coding = bundle["entry"][entry]["resource"]["code" if entry == 4 else "productCode"]["coding"][0]
        del coding["system"]
    assert_ignored(await send(http, "POST", "/fhir/r4", bundle), "not_a_therapy_order")
    # An ISBT 128 code, but of a red cell product (not S): no therapy order either.
    bundle = order_bundle(32)
    bundle["entry"][4]["resource"]["code"]["coding"][0]["code"] = "E0001V00"
    bundle["entry"][6]["resource"]["productCode"]["coding"][0]["code"] = "E0001V00"
    assert_ignored(await send(http, "POST", "/fhir/r4", bundle), "not_a_therapy_order")
    assert ignored("not_a_therapy_order") == before + 4
    for table in (t.inbound_messages, t.idempotency_keys, t.orders, t.quarantine, t.outbox):
        assert await count(gateway, table) == 0


async def test_a_bundle_mixing_therapy_and_other_orders_keeps_the_therapy_ones(app: Client) -> None:
    gateway, http = app
    response = await send(http, "POST", "/fhir/r4", corpus("03-bundle-therapy-and-lab-orders.json"))
    assert response.status_code == 201, response.text
    answer = valid_fhir(response.json())
    main = answer["entry"][0]["response"]["outcome"]["issue"]
    assert main[0]["details"]["text"].startswith("applied to Task/")
    assert main[1]["severity"] == "information" and main[1]["expression"] == ["Bundle.entry[2].resource"]
    assert "not a therapy order" in main[1]["details"]["text"]
    assert answer["entry"][1]["response"]["location"].startswith("Task/")
    lab = answer["entry"][2]["response"]
    assert lab["status"] == "200 OK" and "location" not in lab
    assert lab["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource"]
    assert await count(gateway, t.orders) == 1
    found = await http.get("/fhir/r4/Task", params={"identifier": "LAB-700003"}, headers=KEY)
    assert found.json()["total"] == 0  # the lab order's number was bound to nothing


async def test_a_change_to_a_known_order_is_taken_without_a_product_code(app: Client) -> None:
    _, http = app
    location = (await send(http, "POST", "/fhir/r4", order_bundle(33))).headers["location"]
    change = fixture("servicerequest-revoked.json")
    del change["code"]
    change.update(status="on-hold", identifier=[{"system": PLACER, "value": "PO-000033"}])
    change["subject"]["identifier"]["value"] = "MRN-000033"
    held = await send(http, "PUT", "/fhir/r4/ServiceRequest/sr-000001", change)
    assert held.status_code == 200, held.text
    assert (await http.get(location, headers=KEY)).json()["status"] == "on-hold"
    change["identifier"][0]["value"] = "PO-000034"  # no code, and no order of that number
    assert_ignored(
        await send(http, "PUT", "/fhir/r4/ServiceRequest/sr-000001", change), "not_a_therapy_order"
    )


async def test_a_message_bundle_lists_the_orders_it_passed_over(app: Client) -> None:
    gateway, http = app
    message = fixture("order-message.json")
    lab = corpus("10-medicationrequest-external-medication.json")
    message["entry"].append({"fullUrl": "urn:uuid:1b2c3d4e-0002-4000-8000-000000000009", "resource": lab})
    response = await send(http, "POST", "/fhir/r4/$process-message", message)
    assert response.status_code == 201, response.text
    outcome = valid_fhir(response.json())["entry"][1]["resource"]
    assert outcome["issue"][1]["expression"] == ["Bundle.entry[3].resource"]
    assert await count(gateway, t.orders) == 1


# -- item 9: clinical context in an order Bundle; patients the gateway does not know ----------------
async def test_an_order_bundle_with_clinical_context_is_taken_and_says_what_it_ignored(app: Client) -> None:
    gateway, http = app
    response = await send(http, "POST", "/fhir/r4", corpus("01-therapy-order-with-clinical-context.json"))
    assert response.status_code == 201, response.text
    answer = valid_fhir(response.json())
    listed = answer["entry"][0]["response"]["outcome"]["issue"][1]
    assert listed["expression"] == [f"Bundle.entry[{i}].resource" for i in range(2, 8)]
    for kind in ("Encounter", "Condition", "Coverage", "Observation", "DocumentReference", "Provenance"):
        assert kind in listed["details"]["text"]
    assert [e["response"]["status"] for e in answer["entry"]] == ["200 OK", "201 Created", *["200 OK"] * 6]
    assert await count(gateway, t.orders) == 1


async def test_a_patient_the_gateway_does_not_know_is_acknowledged_not_held(app: Client) -> None:
    gateway, http = app
    before = ignored("unknown_patient")
    update = fixture("patient-update.json")  # MRN-000001: no order names it yet
    assert_ignored(await send(http, "PUT", "/fhir/r4/Patient/pat-000001", update), "unknown_patient")
    created = {k: v for k, v in update.items() if k not in ("id", "meta")}
    assert_ignored(await send(http, "POST", "/fhir/r4/Patient", created), "unknown_patient")
    merge = fixture("patient-merge.parameters.json")
    assert_ignored(await send(http, "POST", "/fhir/r4/Patient/$merge", merge), "unknown_patient")
    assert ignored("unknown_patient") == before + 3
    assert await count(gateway, t.quarantine) == 0 and await count(gateway, t.inbound_messages) == 0
    # Once an order names the patient, the same update is applied.
    assert (await send(http, "POST", "/fhir/r4", order_bundle(1))).status_code == 201
    applied = await send(http, "PUT", "/fhir/r4/Patient/pat-000001", update)
    assert applied.status_code == 200 and "applied to" in applied.text


# -- item 10: replays of held requests, the sender's own placer system, multi-order messages -------
async def test_a_replayed_held_request_answers_202_again(app: Client) -> None:
    gateway, http = app
    revoked = fixture("servicerequest-revoked.json")  # an order the gateway does not know: held
    first = await send(http, "PUT", "/fhir/r4/ServiceRequest/sr-000001", revoked)
    again = await send(http, "PUT", "/fhir/r4/ServiceRequest/sr-000001", revoked)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.content == first.content
    assert await count(gateway, t.quarantine) == 1


async def test_a_placer_number_under_the_senders_own_system_is_found_by_that_system(app: Client) -> None:
    _, http = app
    own = "http://example.org/placer-ids"
    request = fixture("order-transaction.json")["entry"][4]["resource"]
    request["identifier"][0].update(system=own, value="20261120-0041")  # typed PLAC
    request["subject"] = {"identifier": {"system": MRN, "value": "MRN-000041"}}
    placed = await send(http, "POST", "/fhir/r4/ServiceRequest", request)
    assert placed.status_code == 201, placed.text
    found = await http.get("/fhir/r4/Task", params={"identifier": f"{own}|20261120-0041"}, headers=KEY)
    (entry,) = valid_fhir(found.json())["entry"]
    assert placed.headers["location"].endswith(entry["resource"]["id"])
    unknown = await http.get("/fhir/r4/Task", params={"identifier": f"{own}|20261120-9999"}, headers=KEY)
    assert unknown.json()["total"] == 0


def two_orders(n: int) -> dict[str, Any]:
    """The demo order Bundle with a second therapy order for the same patient (placer PO-n+1)."""
    bundle = order_bundle(n)
    second = copy.deepcopy(bundle["entry"][4])
    second["fullUrl"] = "urn:uuid:8f1c2a6e-0001-4c1e-9d1e-000000000099"
    second["resource"]["identifier"][0]["value"] = f"PO-{n + 1:06d}"
    second["request"]["ifNoneExist"] = f"identifier={PLACER}|PO-{n + 1:06d}"
    bundle["entry"].append(second)
    return bundle


async def test_a_multi_order_bundle_links_its_inbound_record_to_every_order(app: Client) -> None:
    gateway, http = app
    response = await send(http, "POST", "/fhir/r4", two_orders(51))
    assert response.status_code == 201, response.text
    answer = valid_fhir(response.json())
    locations = [answer["entry"][i]["response"]["location"] for i in (4, 8)]
    assert len(set(locations)) == 2
    for location, placer in zip(locations, ("PO-000051", "PO-000052"), strict=True):
        task = (await http.get(f"/fhir/r4/{location}", headers=KEY)).json()
        assert task["focus"]["identifier"]["value"] == placer
    async with gateway.engine.connect() as conn:
        (inbound_id,) = (await conn.execute(select(t.inbound_messages.c.id))).scalars().all()
        linked = await conn.execute(
            select(t.events.c.order_id, t.events.c.type).where(t.events.c.inbound_id == inbound_id)
        )
        by_order: dict[str, set[str]] = {}
        for row in linked:
            by_order.setdefault(row.order_id, set()).add(row.type)
    assert {f"Task/{o}" for o in by_order} == set(locations)
    assert all("org.cgt.order.placed" in types for types in by_order.values())
    again = await send(http, "POST", "/fhir/r4", two_orders(51))
    assert again.status_code == 200 and again.content == response.content
    assert await count(gateway, t.orders) == 2


# -- issue 9: codes with required bindings ------------------------------------------------------
def _coded(kind: str, element: str, value: str) -> tuple[str, dict[str, Any], str]:
    sources = {
        "Patient": ("PUT /fhir/r4/Patient/pat-000001", fixture("patient-update.json")),
        "ServiceRequest": ("PUT /fhir/r4/ServiceRequest/sr-000001", fixture("servicerequest-revoked.json")),
        "MedicationRequest": ("POST /fhir/r4/MedicationRequest", corpus("02-therapy-medicationrequest.json")),
        "Appointment": ("PUT /fhir/r4/Appointment/appt-infusion-1", fixture("appointment-infusion.json")),
    }
    request, body = sources[kind]
    body[element] = value
    return request, body, f"{kind}.{element}"


CODED = [
    _coded("Patient", "gender", "F"),
    _coded("ServiceRequest", "status", "cancelled"),
    _coded("ServiceRequest", "intent", "orders"),
    _coded("MedicationRequest", "status", "revoked"),
    _coded("MedicationRequest", "intent", "directive"),
    _coded("Appointment", "status", "scheduled"),
]


@pytest.mark.parametrize(("request_line", "body", "where"), CODED, ids=[c[2] for c in CODED])
async def test_a_code_outside_its_required_value_set_is_refused_naming_the_element(
    app: Client, request_line: str, body: dict[str, Any], where: str
) -> None:
    gateway, http = app
    method, path = request_line.split(" ", 1)
    response = await send(http, method, path, body)
    assert response.status_code == 400, response.text
    (issue,) = valid_fhir(response.json())["issue"]
    assert (issue["severity"], issue["code"], issue["expression"]) == ("error", "code-invalid", [where])
    assert await count(gateway, t.orders) == 0 and await count(gateway, t.quarantine) == 0

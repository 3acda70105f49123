"""FHIR R4 over the running app: real HTTP semantics (ASGI), a real SQLite database, real RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from adapters.fhir import request as request_module
from adapters.fhir.adapter import adapter
from adapters.fhir.capability import RESOURCES
from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.integration.test_fhir_support import (
    FHIR_JSON,
    KEY,
    MRN,
    PLACER,
    fixture,
    order_bundle,
    running,
    settings,
    valid_fhir,
)
from tests.support.builders import envelope_json, place
from tests.support.partners import OTHER_SITE, OTHER_SITE_KEY, with_second_site

Client = tuple[Gateway, httpx.AsyncClient]


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[Client]:
    async with running(settings(tmp_path, amqp_url)) as pair:
        yield pair


async def post(http: httpx.AsyncClient, body: Any, path: str = "/fhir/r4", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await http.post(path, content=content, headers={**KEY, **headers})


async def put(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await http.put(path, content=orjson.dumps(body), headers=KEY)


async def orders(gateway: Gateway) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.orders))).scalar_one())


async def test_a_good_bundle_is_201_with_the_tasks_location(app: Client) -> None:
    gateway, http = app
    response = await post(http, order_bundle(1))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == FHIR_JSON
    location = response.headers["location"]
    assert location.startswith("http://gateway/fhir/r4/Task/")
    answer = valid_fhir(response.json())
    assert answer["type"] == "transaction-response" and len(answer["entry"]) == 8
    assert answer["entry"][4]["response"]["location"] == location.removeprefix("http://gateway/fhir/r4/")

    task = valid_fhir((await http.get(location, headers=KEY)).json())
    assert task["status"] == "in-progress"  # the Bundle also booked the apheresis
    assert task["businessStatus"]["coding"][0]["code"] == "collection_scheduled"
    assert task["focus"] == {"type": "ServiceRequest", "identifier": task["basedOn"][0]["identifier"]}
    assert (
        task["focus"]["identifier"]["system"] == PLACER
        and task["focus"]["identifier"]["value"] == "PO-000001"
    )
    systems = {i["system"]: i["value"] for i in task["identifier"]}
    assert systems["urn:cgt:coi"].startswith("CHA9999") and systems[PLACER] == "PO-000001"
    assert task["for"]["identifier"] == {"system": MRN, "value": "MRN-000001"}
    assert await orders(gateway) == 1


async def test_the_body_is_read_and_validated_once_per_request(
    app: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route reads the body before the door (scopes, lookups); decode takes that reading."""
    validated: list[str] = []
    original = request_module.validate

    def counting(document: dict[str, Any], accepted: tuple[str, ...]) -> None:
        validated.append(document["resourceType"])
        original(document, accepted)

    monkeypatch.setattr(request_module, "validate", counting)
    _, http = app
    assert (await post(http, order_bundle(7))).status_code == 201
    assert validated == ["Bundle"]


async def test_a_resent_order_makes_no_second_order_and_gets_the_first_answer(app: Client) -> None:
    gateway, http = app
    first = await post(http, order_bundle(2))
    again = await post(http, order_bundle(2))  # a new Bundle.identifier: the placer number decides
    assert first.status_code == 201 and again.status_code == 200
    assert again.content == first.content and again.headers["location"] == first.headers["location"]
    assert await orders(gateway) == 1  # other content under the placer number: test_fhir_reused_ids.py
    found = (
        await http.get("/fhir/r4/Task", params={"identifier": f"{PLACER}|PO-000002"}, headers=KEY)
    ).json()
    assert valid_fhir(found)["total"] == 1


def _with(document: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


BAD = [
    ("not JSON", b'{"resourceType": "Bundle", ', 400, "structure", None),
    (
        "an element R4 does not have",
        _with(order_bundle(), ["entry", 4, "resource", "colour"], "red"),
        400,
        "structure",
        "Bundle.entry[4].resource.colour",
    ),
    (
        "a bad date",
        _with(order_bundle(), ["entry", 0, "resource", "birthDate"], "1970-13-45"),
        400,
        "structure",
        "Bundle.entry[0].resource.birthDate",
    ),
    ("a batch", _with(order_bundle(), ["type"], "batch"), 422, "not-supported", "Bundle.type"),
    (
        "a Bundle.type R4 does not have",
        _with(order_bundle(), ["type"], "orders"),
        400,
        "code-invalid",
        "Bundle.type",
    ),
    (
        "a gender R4 does not have",
        _with(order_bundle(), ["entry", 0, "resource", "gender"], "F"),
        400,
        "code-invalid",
        "Bundle.entry[0].resource.gender",
    ),
    (
        "a patient without MRN",
        _with(order_bundle(), ["entry", 0, "resource", "identifier"], []),
        422,
        "value",
        "Bundle.entry[4].resource.subject",
    ),
    (
        "no placer number",
        _with(order_bundle(), ["entry", 4, "resource", "identifier"], []),
        422,
        "value",
        "Bundle.entry[4].resource.identifier",
    ),
    (
        "a DELETE entry",
        _with(order_bundle(), ["entry", 2, "request", "method"], "DELETE"),
        422,
        "not-supported",
        "Bundle.entry[2].request.method",
    ),
    (
        "a conditional create on something else",
        _with(order_bundle(), ["entry", 4, "request", "ifNoneExist"], "status=active"),
        422,
        "not-supported",
        "Bundle.entry[4].request.ifNoneExist",
    ),
    (
        "an appointment without time zone",
        _with(order_bundle(), ["entry", 5, "resource", "start"], "2026-11-09T08:00:00"),
        400,
        "structure",
        "Bundle.entry[5].resource.start",
    ),
]


@pytest.mark.parametrize(("why", "body", "status", "code", "where"), BAD, ids=[b[0] for b in BAD])
async def test_each_kind_of_bad_bundle_gets_its_operation_outcome(
    app: Client, why: str, body: Any, status: int, code: str, where: str | None
) -> None:
    gateway, http = app
    response = await post(http, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    outcome = valid_fhir(response.json())
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error" and issue["code"] == code
    assert issue.get("expression") == ([where] if where else None)
    assert "Testpatient" not in response.text
    assert await orders(gateway) == 0


async def test_limits_media_types_and_unsupported_endpoints_answer_in_fhir(app: Client) -> None:
    _, http = app
    big = await post(http, b"{" + b" " * 20_000 + b"}")
    assert big.status_code == 413 and valid_fhir(big.json())["issue"][0]["code"] == "too-long"
    xml = await post(http, b"<Bundle/>", **{"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415
    observation = await post(http, {"resourceType": "Observation"}, "/fhir/r4/Observation")
    assert observation.status_code == 422
    assert "Observation is not supported" in valid_fhir(observation.json())["issue"][0]["details"]["text"]
    wrong_type = await post(http, fixture("patient-update.json"), "/fhir/r4/ServiceRequest")
    assert wrong_type.status_code == 422
    delete = await http.delete("/fhir/r4/Patient/1", headers=KEY)
    assert delete.status_code == 400 and delete.headers["content-type"] == FHIR_JSON
    mismatch = await put(http, "/fhir/r4/Patient/other-id", fixture("patient-update.json"))
    assert mismatch.status_code == 400 and mismatch.json()["issue"][0]["expression"] == ["Patient.id"]


async def test_authentication_is_required_and_answered_in_fhir(app: Client) -> None:
    _, http = app
    for headers in (
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": "demo-operator-key"},
        {"Authorization": "Bearer x"},
    ):
        response = await http.post("/fhir/r4", content=orjson.dumps(order_bundle()), headers=headers)
        assert response.status_code == 401 and response.headers["content-type"] == FHIR_JSON
        assert valid_fhir(response.json())["issue"][0]["code"] == "login"
    courier = await http.get("/fhir/r4/Task/x", headers={"X-API-Key": "demo-manufacturer-key"})
    assert courier.status_code == 403  # a manufacturer is no FHIR site


async def test_the_lifecycle_follows_the_service_request(app: Client) -> None:
    _, http = app
    location = (await post(http, order_bundle(3))).headers["location"]
    request = fixture("servicerequest-revoked.json")
    request["identifier"][0]["value"] = "PO-000003"
    request["subject"]["identifier"]["value"] = "MRN-000003"
    steps = [
        ("on-hold", "on-hold", "on_hold"),
        ("active", "in-progress", "collection_scheduled"),
        ("revoked", "cancelled", "cancelled"),
    ]
    for version, (status, task_status, business) in enumerate(steps, start=10):
        request.update(status=status, meta={"versionId": str(version)})
        response = await put(http, "/fhir/r4/ServiceRequest/sr-000001", request)
        assert response.status_code == 200, response.text
        task = (await http.get(location, headers=KEY)).json()
        assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (task_status, business)
    illegal = await put(
        http, "/fhir/r4/ServiceRequest/sr-000001", {**request, "status": "on-hold", "meta": {}}
    )
    assert illegal.status_code == 409 and illegal.json()["issue"][0]["code"] == "business-rule"


async def test_an_order_put_that_is_unknown_is_placed(app: Client) -> None:
    gateway, http = app
    request = fixture("order-transaction.json")["entry"][4]["resource"]
    request.update(id="sr-4", subject={"identifier": {"system": MRN, "value": "MRN-000004"}})
    request["identifier"][0]["value"] = "PO-000004"
    response = await put(http, "/fhir/r4/ServiceRequest/sr-4", request)
    assert response.status_code == 201 and "/fhir/r4/Task/" in response.headers["location"]
    assert await orders(gateway) == 1


async def test_an_unknown_order_is_held_for_review(app: Client) -> None:
    _, http = app
    response = await put(http, "/fhir/r4/ServiceRequest/sr-000001", fixture("servicerequest-revoked.json"))
    assert response.status_code == 202
    (issue,) = valid_fhir(response.json())["issue"]
    assert issue["severity"] == "warning" and "held for review" in issue["details"]["text"]


async def test_patient_identity_updates_and_merges(app: Client) -> None:
    _, http = app
    location = (await post(http, order_bundle(1))).headers["location"]
    await post(http, order_bundle(9))
    renamed = await put(http, "/fhir/r4/Patient/pat-000001", fixture("patient-update.json"))
    assert renamed.status_code == 200, renamed.text
    merged = await post(http, fixture("patient-merge.parameters.json"), "/fhir/r4/Patient/$merge")
    assert merged.status_code == 200, merged.text
    found = (await http.get("/fhir/r4/Task", params={"identifier": "PO-000009"}, headers=KEY)).json()
    assert found["entry"][0]["resource"]["for"]["identifier"]["value"] in ("MRN-000001", "MRN-000009")
    assert (await http.get(location, headers=KEY)).status_code == 200


async def test_task_reads_are_confined_to_the_sites_own_orders(tmp_path: Path, amqp_url: str) -> None:
    config = settings(tmp_path, amqp_url, partners_file=with_second_site(tmp_path))
    async with running(config) as (_, http):
        other = {"X-API-Key": OTHER_SITE_KEY, "Content-Type": "application/json"}
        placed = await http.post(
            "/api/messages", content=envelope_json("m5", place(5, site=OTHER_SITE)), headers=other
        )
        order_id = placed.json()["order_id"]
        assert (await http.get(f"/fhir/r4/Task/{order_id}", headers=KEY)).status_code == 404
        search = await http.get("/fhir/r4/Task", params={"identifier": "PO-000005"}, headers=KEY)
        assert search.json()["total"] == 0
        unknown = await http.get("/fhir/r4/Task", params={"status": "active"}, headers=KEY)
        assert unknown.status_code == 400


async def test_the_capability_statement_is_true_to_the_routes(app: Client) -> None:
    _, http = app
    response = await http.get("/fhir/r4/metadata")
    statement = valid_fhir(response.json())
    assert statement["fhirVersion"] == "4.0.1" and response.headers["content-type"] == FHIR_JSON
    declared = {r["type"] for r in statement["rest"][0]["resource"]}
    assert declared == set(RESOURCES)
    paths = {(m, r.path) for r in adapter.http_routes().routes for m in getattr(r, "methods", ())}  # type: ignore[attr-defined]
    for kind, spec in RESOURCES.items():
        for interaction in spec["interactions"]:
            method, path = {
                "create": ("POST", "/fhir/r4/{resource_type}"),
                "update": ("PUT", "/fhir/r4/{resource_type}/{resource_id}"),
                "read": ("GET", f"/fhir/r4/{kind}/{{task_id}}"),
                "search-type": ("GET", f"/fhir/r4/{kind}"),
            }[interaction]
            assert (method, path) in paths, (kind, interaction)
    assert ("POST", "/fhir/r4/Patient/$merge") in paths and ("POST", "/fhir/r4") in paths
    token_url = statement["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"]
    assert token_url == "http://gateway/fhir/r4/auth/token"


async def test_intake_duplicates_and_task_reads_on_each_database(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    config = settings(tmp_path, amqp_url).model_copy(update={"database_url": database_url})
    async with running(config) as (gateway, http):
        first = await post(http, order_bundle(11))
        again = await post(http, order_bundle(11))
        assert (first.status_code, again.status_code) == (201, 200) and again.content == first.content
        request = fixture("servicerequest-revoked.json")
        request["identifier"][0]["value"] = "PO-000011"
        request["subject"]["identifier"]["value"] = "MRN-000011"
        held = await put(http, "/fhir/r4/ServiceRequest/sr-000001", {**request, "status": "on-hold"})
        assert held.status_code == 200, held.text
        task = valid_fhir((await http.get(first.headers["location"], headers=KEY)).json())
        assert task["status"] == "on-hold" and task["meta"]["versionId"] == "3"
        found = await http.get(
            "/fhir/r4/Task",
            params={"identifier": f"urn:cgt:coi|{task['identifier'][0]['value']}"},
            headers=KEY,
        )
        assert found.json()["total"] == 1
        assert await orders(gateway) == 1


async def test_a_message_bundle_is_answered_with_a_response_message(app: Client) -> None:
    _, http = app
    response = await post(http, fixture("order-message.json"), "/fhir/r4/$process-message")
    assert response.status_code == 201, response.text
    answer = valid_fhir(response.json())
    header = answer["entry"][0]["resource"]
    assert answer["type"] == "message" and header["resourceType"] == "MessageHeader"
    assert header["response"]["identifier"] == "1b2c3d4e-0002-4000-8000-000000000001"
    assert header["response"]["code"] == "ok"
    task = (await http.get(response.headers["location"], headers=KEY)).json()
    assert {"system": "urn:cgt:coi", "value": "CHA999926AB12CD"} in task["identifier"]  # the site's own COI
    transaction = await post(http, order_bundle(12), "/fhir/r4/$process-message")
    assert transaction.status_code == 422

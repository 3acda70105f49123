"""Over FHIR, as over HL7: a change of who a patient with an open order is waits for a person
(a Patient update of birth date or name, a $merge of records that disagree)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.integration.test_fhir_support import KEY, fixture, order_bundle, running, settings

Client = tuple[Gateway, httpx.AsyncClient]


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[Client]:
    async with running(settings(tmp_path, amqp_url)) as pair:
        yield pair


def born(document: dict[str, Any], birth: str) -> dict[str, Any]:
    for entry in document["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["birthDate"] = birth
    return document


async def send(http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return await http.request(method, path, content=orjson.dumps(body), headers=KEY)


async def reasons(gateway: Gateway) -> list[str]:
    async with gateway.engine.connect() as conn:
        return [r for (r,) in (await conn.execute(select(t.quarantine.c.reason))).all()]


async def test_a_patient_update_of_birth_date_is_held_and_a_middle_name_applies(app: Client) -> None:
    gateway, http = app
    assert (await send(http, "POST", "/fhir/r4", order_bundle(1))).status_code == 201
    reborn = {**fixture("patient-update.json"), "birthDate": "2024-02-02", "meta": {"versionId": "8"}}
    held = await send(http, "PUT", "/fhir/r4/Patient/pat-000001", reborn)
    assert held.status_code == 202, held.text
    assert "held for review" in held.json()["issue"][0]["details"]["text"]
    routine = await send(http, "PUT", "/fhir/r4/Patient/pat-000001", fixture("patient-update.json"))
    assert routine.status_code == 200, routine.text
    assert await reasons(gateway) == ["identity_change"]


async def test_a_merge_of_records_that_disagree_is_held(app: Client) -> None:
    gateway, http = app
    assert (await send(http, "POST", "/fhir/r4", order_bundle(1))).status_code == 201
    assert (await send(http, "POST", "/fhir/r4", born(order_bundle(9), "1988-08-08"))).status_code == 201
    merged = await send(http, "POST", "/fhir/r4/Patient/$merge", fixture("patient-merge.parameters.json"))
    assert merged.status_code == 202, merged.text
    assert await reasons(gateway) == ["disagreeing_merge"]

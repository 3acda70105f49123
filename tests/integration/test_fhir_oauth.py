"""OAuth2 client credentials, SMART Backend Services style, against the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from adapters.fhir.oauth import ASSERTION_TYPE
from tests.integration.test_fhir_support import assertion, order_bundle, running, settings, valid_fhir

TOKEN_URL = "http://gateway/fhir/r4/auth/token"
SCOPES = "system/ServiceRequest.write system/Patient.write system/Appointment.write system/Task.read"


@pytest.fixture
async def http(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings(tmp_path, amqp_url)) as (_, client):
        yield client


async def token(
    http: httpx.AsyncClient, client_assertion: str, scope: str = SCOPES, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        "scope": scope,
        **extra,
    }
    return await http.post("/fhir/r4/auth/token", data=form)


async def test_a_signed_assertion_buys_a_bearer_token_that_places_and_reads_orders(
    http: httpx.AsyncClient,
) -> None:
    response = await token(http, assertion(TOKEN_URL), "system/Observation.read " + SCOPES)
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["token_type"] == "bearer" and grant["expires_in"] == 300
    assert set(grant["scope"].split()) == set(SCOPES.split())  # what the client may have: no Observation
    bearer = {"Authorization": f"Bearer {grant['access_token']}", "Content-Type": "application/fhir+json"}
    placed = await http.post("/fhir/r4", content=orjson.dumps(order_bundle(7)), headers=bearer)
    assert placed.status_code == 201, placed.text
    task = await http.get(placed.headers["location"], headers=bearer)
    assert valid_fhir(task.json())["status"] == "in-progress"
    # the token's scopes do not cover MedicationRequest writes
    patient = await http.post("/fhir/r4/MedicationRequest", content=b"{}", headers=bearer)
    assert patient.status_code == 403 and patient.json()["issue"][0]["code"] == "forbidden"


async def test_a_read_only_token_cannot_place_orders(http: httpx.AsyncClient) -> None:
    grant = (await token(http, assertion(TOKEN_URL), "system/Task.read")).json()
    bearer = {"Authorization": f"Bearer {grant['access_token']}", "Content-Type": "application/fhir+json"}
    refused = await http.post("/fhir/r4", content=orjson.dumps(order_bundle(8)), headers=bearer)
    assert refused.status_code == 403


async def test_bad_assertions_are_refused(http: httpx.AsyncClient) -> None:
    used = assertion(TOKEN_URL)
    assert (await token(http, used)).status_code == 200
    replayed = await token(http, used)
    assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
    for bad in (
        assertion("http://elsewhere/token"),  # another audience
        assertion(TOKEN_URL, client_id="somebody-else"),
        assertion(TOKEN_URL, lifetime=3600),  # longer than five minutes
        "not-a-jwt",
    ):
        response = await token(http, bad)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    wrong_grant = await token(http, assertion(TOKEN_URL), grant_type="password")
    assert wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"
    no_scope = await token(http, assertion(TOKEN_URL), "system/Observation.read")
    assert no_scope.status_code == 400 and no_scope.json()["error"] == "invalid_scope"
    forged = await http.get("/fhir/r4/Task/x", headers={"Authorization": "Bearer " + used})
    assert forged.status_code == 401  # a client's own assertion is no access token

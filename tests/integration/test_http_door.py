"""Requests refused at the door (ASGI, real database, real broker): malformed credentials are 401
in the route's own dialect, only the documented signature form is taken, and refusals are logged
and counted by their metadata, never stored."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.entrypoints.bootstrap import Gateway
from gateway.store.tables import inbound_messages
from tests.integration.test_fhir_support import running, settings
from tests.support.builders import envelope_json, place

PROBLEM = "application/problem+json"


@pytest.fixture
async def door(tmp_path: Path, amqp_url: str) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running(settings(tmp_path, amqp_url)) as (gateway, client):
        yield gateway, client


def signed(body: bytes, signature: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-CGT-Partner": "demo-courier",
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": signature if signature is not None else f"sha256={digest}",
    }


async def stored(gateway: Gateway) -> int:
    async with gateway.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(inbound_messages))).scalar_one())


@pytest.mark.parametrize(
    ("method", "path", "headers", "media"),
    [
        ("POST", "/api/messages", {"X-API-Key": b"demo-hospital-k\xffy"}, PROBLEM),
        ("POST", "/api/messages", {"X-API-Key": b"\x00\x01"}, PROBLEM),
        ("POST", "/api/messages", {"X-API-Key": "k" * 5000}, PROBLEM),
        (
            "POST",
            "/api/messages",
            {"X-CGT-Partner": "demo-courier", "X-CGT-Timestamp": "1", "X-CGT-Signature": b"sha256=\xe9"},
            PROBLEM,
        ),
        (
            "POST",
            "/api/messages",
            {"X-CGT-Partner": "demo-courier", "X-CGT-Timestamp": b"\xd9\xa1", "X-CGT-Signature": "sha256=00"},
            PROBLEM,
        ),
        ("GET", "/api/quarantine", {"X-API-Key": b"demo-operator-k\xe9y"}, PROBLEM),
        ("POST", "/fhir/r4", {"X-API-Key": b"\xff\xfe", "Content-Type": "application/fhir+json"}, "fhir"),
        ("GET", "/fhir/r4/Task/x", {"Authorization": b"Bearer \xff.\xfe.\xfd"}, "fhir"),
    ],
)
async def test_malformed_credentials_are_401_never_500(
    door: tuple[Gateway, httpx.AsyncClient],
    method: str,
    path: str,
    headers: dict[str, str | bytes],
    media: str,
) -> None:
    _, client = door
    response = await client.request(method, path, content=b"{}", headers=headers)
    assert response.status_code == 401, response.text
    assert media in response.headers["content-type"]


async def test_only_the_documented_signature_form_is_taken(door: tuple[Gateway, httpx.AsyncClient]) -> None:
    _, client = door
    body = envelope_json("sig-1", place(1))
    digest = signed(body)["X-CGT-Signature"].removeprefix("sha256=")
    for bad in (digest, f"SHA256={digest}", f"sha1={digest}", f"sha256={digest} ", f"sha256={digest[:-2]}"):
        refused = await client.post("/api/messages", content=body, headers=signed(body, bad))
        assert refused.status_code == 401, bad
        assert refused.headers["content-type"] == PROBLEM
    # the documented form passes authentication (the courier may not place orders: 403, not 401)
    documented = await client.post("/api/messages", content=body, headers=signed(body))
    assert documented.status_code != 401


async def test_refusals_are_logged_and_counted_by_metadata_and_never_stored(
    door: tuple[Gateway, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, client = door
    caplog.set_level(logging.WARNING, logger="gateway.http.door")
    payload = b'{"message_id": "x", "commands": [], "pad": "' + b"p" * 2000 + b'"}'
    await client.post("/api/messages", content=payload, headers={"X-API-Key": "not-a-key"})
    await client.post("/api/messages", content=b"z" * 20_000, headers={"X-API-Key": "demo-hospital-key"})
    await client.post("/fhir/r4", content=payload, headers={"Content-Type": "application/fhir+json"})
    await client.post(
        "/fhir/r4/auth/token",
        content=b"grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.http.door"]
    assert len(lines) == 4
    unknown_key, too_large, fhir_anonymous, bad_grant = lines
    assert "POST /api/messages from 127.0.0.1" in unknown_key and "not_authenticated" in unknown_key
    assert "no partner has this API key" in unknown_key and f"{len(payload)} bytes read" in unknown_key
    assert "too_large" in too_large and "20000 declared" in too_large
    assert "POST /fhir/r4 " in fhir_anonymous and "0 bytes read" in fhir_anonymous
    assert "/fhir/r4/auth/token" in bad_grant and "unsupported_grant_type" in bad_grant
    assert not any("p" * 100 in line or "not-a-key" in line for line in lines)  # metadata, no content
    metrics = (await client.get("/metrics")).text
    assert 'cgt_http_refused_total{reason="not_authenticated",route="/api/messages"}' in metrics
    assert 'cgt_http_refused_total{reason="too_large",route="/api/messages"}' in metrics
    assert 'cgt_http_refused_total{reason="unsupported_grant_type",route="/fhir/r4/auth/token"}' in metrics
    assert await stored(gateway) == 0  # nothing of what the door refused reached the database


async def test_the_access_log_names_the_route_never_the_path_or_query(
    tmp_path: Path, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Paths and queries carry identifiers (a COI in the path, an identifier in a FHIR search):
    the access line has the route's template only, and uvicorn's own line (raw path and query)
    is never written."""
    from gateway.entrypoints.server import server_config

    config = settings(tmp_path, amqp_url, http_access_log=True)
    assert server_config(lambda *_: None, config, host="127.0.0.1", port=1).access_log is False  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="gateway.http.access")
    async with running(config) as (_, client):
        await client.get("/api/orders/CHA999926M0000X/custody", headers={"X-API-Key": "demo-hospital-key"})
        await client.get("/fhir/r4/Task?identifier=urn:oid:2.16.840.1.113883.3.9999.1|MRN-SECRET-1")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.http.access"]
    assert any(line.startswith("GET /api/orders/{coi}/custody ") for line in lines), lines
    assert any(line.startswith("GET /fhir/r4/Task ") for line in lines), lines
    assert not any("CHA999926M0000X" in line or "MRN-SECRET" in line for line in lines)


async def test_no_access_line_unless_asked(
    door: tuple[Gateway, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.http.access")
    await door[1].get("/health")
    assert not [r for r in caplog.records if r.name == "gateway.http.access"]

"""Task push to the site's FHIR server, against a small real HTTP server started here (uvicorn on a
free port), through the real outbox relay, RabbitMQ and the consumer's retry and dead-letter path."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from adapters.fhir.profile import PROFILES_DIR
from gateway.store import tables as t
from tests.integration.test_fhir_support import KEY, fixture, order_bundle, running, settings, valid_fhir

SECRET = b"demo-hospital-hook-secret"


@dataclass
class SiteFhirServer:
    """The hospital's FHIR server: records each Task PUT; answers `failures` first, then 200."""

    failures: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        if self.failures:
            self.refused += 1
            await Response(status_code=self.failures.pop(0))(scope, receive, send)
            return
        self.received.append((f"{request.method} {request.url.path}", dict(request.headers), body))
        await Response(body, status_code=200, media_type="application/fhir+json")(scope, receive, send)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def site() -> AsyncIterator[tuple[SiteFhirServer, str]]:
    app, port = SiteFhirServer(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{port}/fhir"
    server.should_exit = True
    await task


@pytest.fixture
def fast_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo profile with short backoff, so that retries fit in a test."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (PROFILES_DIR / "demo-hospital.yaml").read_text()
    text = text.replace("backoff_seconds: 0.5", "backoff_seconds: 0.05").replace(
        "max_backoff_seconds: 5", "max_backoff_seconds: 0.2"
    )
    (profiles / "demo-hospital.yaml").write_text(text)
    monkeypatch.setenv("CGT_PROFILE_DIRS", orjson.dumps({"fhir": str(profiles)}).decode())


async def until(condition: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("fast_profile")
async def test_the_site_gets_each_status_change_in_order_signed_despite_failures(
    tmp_path: Path, amqp_url: str, site: tuple[SiteFhirServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = site
    server.failures = [503, 500]  # the site's server is down at first: retried, not lost
    monkeypatch.setenv("CGT_FHIR_HOOK_URL_DEMO_HOSPITAL", url)
    async with running(settings(tmp_path, amqp_url, consumer_delivery_limit=3)) as (_, http):
        placed = await http.post("/fhir/r4", content=orjson.dumps(order_bundle(1)), headers=KEY)
        order_id = placed.headers["location"].rsplit("/", 1)[-1]
        request = fixture("servicerequest-revoked.json")
        for version, status in enumerate(("on-hold", "active", "revoked")):
            request.update(status=status, meta={"versionId": str(version)})
            answer = await http.put(
                "/fhir/r4/ServiceRequest/sr-000001", content=orjson.dumps(request), headers=KEY
            )
            assert answer.status_code == 200, answer.text

        async def all_five() -> bool:
            return len(server.received) >= 5

        await until(all_five)
    assert server.refused == 2
    tasks = [valid_fhir(orjson.loads(body)) for _, _, body in server.received]
    assert [(t["status"], t["businessStatus"]["coding"][0]["code"]) for t in tasks] == [
        ("requested", "ordered"),
        ("in-progress", "collection_scheduled"),
        ("on-hold", "on_hold"),
        ("in-progress", "collection_scheduled"),
        ("cancelled", "cancelled"),
    ]
    assert {line for line, _, _ in server.received} == {f"PUT /fhir/Task/{order_id}"}
    event_ids = set()
    for _, headers, body in server.received:
        stamp = headers["x-cgt-timestamp"]
        expected = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["x-cgt-signature"] == f"sha256={expected}"
        assert headers["content-type"] == "application/fhir+json"
        event_ids.add(headers["x-cgt-event-id"])
    assert len(event_ids) == 5
    assert "Testpatient" not in b"".join(body for _, _, body in server.received).decode()


@pytest.mark.usefixtures("fast_profile")
async def test_a_site_that_stays_down_gets_an_alert_raised_not_silence(
    tmp_path: Path, amqp_url: str, site: tuple[SiteFhirServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = site
    server.failures = [500] * 100
    monkeypatch.setenv("CGT_FHIR_HOOK_URL_DEMO_HOSPITAL", url)
    async with running(settings(tmp_path, amqp_url, consumer_delivery_limit=3)) as (gateway, http):
        await http.post("/fhir/r4", content=orjson.dumps(order_bundle(2)), headers=KEY)

        async def alerts() -> list[dict[str, Any]]:
            async with gateway.engine.connect() as conn:
                rows = await conn.execute(
                    select(t.events.c.envelope).where(t.events.c.type == "org.cgt.delivery.failed")
                )
                return [dict(r.envelope) for r in rows]

        async def both_given_up() -> bool:
            return len(await alerts()) == 2

        await until(both_given_up)
        found = await alerts()
    assert server.received == []
    assert {a["data"]["adapter"] for a in found} == {"fhir-r4"}
    assert {a["data"]["partner"] for a in found} == {"demo-hospital"}
    assert all(a["data"]["attempts"] == 3 for a in found)

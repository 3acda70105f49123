"""A gateway with two couriers and two sites, and the steps of a shipment's life, over HTTP (ASGI)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.canonical.ids import ExternalRef
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from tests.support.builders import envelope_json, place
from tests.support.partners import with_second_site

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OTHER_HOSPITAL = {"X-API-Key": "other-hospital-key", "Content-Type": "application/json"}
OPERATOR = {"X-API-Key": "demo-operator-key", "Content-Type": "application/json"}
SECRETS = {"demo-courier": b"demo-courier-secret", "other-courier": b"other-courier-secret"}


def partners_file(directory: Path) -> Path:
    """The demo partners, a second site, and `other-courier` (HMAC `other-courier-secret`)."""
    path = with_second_site(directory)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": "other-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "demo": True,
            "auth": {
                "hmac_secret": {"env": "CGT_SECRET_OTHER_COURIER", "demo_default": "other-courier-secret"}
            },
        }
    )
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def settings_for(database_url: str, amqp_url: str, directory: Path, **more: Any) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        amqp_url=amqp_url,
        mllp_port=0,
        partners_file=partners_file(directory),
        # the test's own: beside a PostgreSQL database the default is the repository's var/
        audit_checkpoints_file=directory / "audit-checkpoints.jsonl",
        **{"clock_sweep_seconds": 3600.0, **more},  # swept when a test says so (gateway.sweeper.sweep)
    )


@asynccontextmanager
async def running(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gateway = bootstrap(settings, clock=clock or utcnow)
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield gateway, http
    finally:
        await gateway.stop()


async def placed(
    http: httpx.AsyncClient, n: int = 1, headers: dict[str, str] = HOSPITAL, **extra: Any
) -> str:
    """A new order's COI."""
    site = "other-hospital" if headers is OTHER_HOSPITAL else "demo-hospital"
    response = await http.post(
        "/api/messages",
        content=envelope_json(str(uuid.uuid4()), place(n, site=site, **extra)),
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["coi"])


async def declare(
    http: httpx.AsyncClient, coi: str, headers: dict[str, str] = HOSPITAL, **body: Any
) -> httpx.Response:
    document = {"leg": "inbound", "courier": "demo-courier", "tracking_number": "1Z0000000000000001", **body}
    return await http.post(f"/api/orders/{coi}/shipments", content=orjson.dumps(document), headers=headers)


async def from_courier(http: httpx.AsyncClient, courier: str, *commands: Command) -> httpx.Response:
    """A courier's canonical-json message, signed with its HMAC secret."""
    body = envelope_json(str(uuid.uuid4()), *commands)
    stamp = str(int(time.time()))
    digest = hmac.new(SECRETS[courier], stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "X-CGT-Partner": courier,
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }
    return await http.post("/api/messages", content=body, headers=headers)


async def order_of(http: httpx.AsyncClient, coi: str) -> dict[str, Any]:
    response = await http.get(f"/api/orders/{coi}", headers=OPERATOR)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def readings(
    logger: str,
    start: datetime,
    values: list[float],
    *,
    every_s: int = 60,
    courier: str = "demo-courier",
    **more: Any,
) -> Command:
    """A logger's `shipment.readings_reported`, one reading every `every_s` from `start`."""
    return Command.model_validate(
        {
            "event": "shipment.readings_reported",
            "refs": [ExternalRef(namespace=f"courier:{courier}:logger", value=logger)],
            "payload": {
                "shipment_id": logger,
                "device_id": logger,
                "readings": [
                    {"at": start + timedelta(seconds=i * every_s), "temperature_c": v, **more}
                    for i, v in enumerate(values)
                ],
            },
        }
    )

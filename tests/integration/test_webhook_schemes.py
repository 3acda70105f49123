"""One webhook route, several schemes: each partner verified with the one it has credentials for
(Standard Webhooks, a vendor HMAC header, an API key); refused requests naming a known partner
kept raw within the partner's hourly cap, unknown partners counted only (ASGI, SQLite, RabbitMQ)."""

from __future__ import annotations

import hashlib
import hmac
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from adapters.canonical_json.adapter import adapter
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.sdk.signatures import EASYPOST, ApiKey, StandardWebhooks
from gateway.sdk.webhooks import WebhookRoute, webhook_router
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.refusals import StoreRefusals
from tests.support.builders import coi, envelope_json, event

VENDOR_SECRET = "a-vendor-secret"
WEBHOOK_SECRET = "whsec_ZGVtby1jb3VyaWVyLXNlY3JldA=="
KEY = "a-key-courier-key"
PATH = "/webhooks/any/{partner}"


def partner_file(directory: Path) -> Path:
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"] += [
        {
            "id": "vendor-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "demo": True,
            "auth": {"header_hmac": {"secrets": [{"env": "CGT_TEST_VENDOR", "demo_default": VENDOR_SECRET}]}},
        },
        {
            "id": "key-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "demo": True,
            "auth": {"api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]},
        },
    ]
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
async def served(tmp_path: Path, amqp_url: str) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json",
        partners_file=partner_file(tmp_path),
        webhook_refused_kept_per_hour=2,
    )
    gateway = bootstrap(settings)
    await gateway.start()
    app = create_app(gateway)
    app.include_router(webhook_router(adapter, WebhookRoute(PATH, StandardWebhooks(), EASYPOST, ApiKey())))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield gateway, http
    await gateway.stop()


def body(message_id: str) -> bytes:
    # about an order nobody placed: authenticated, then held for review (202)
    return envelope_json(message_id, event("shipment.delivered", coi("CHA999926M00001"), shipment_id="S-1"))


def standard(raw: bytes, message_id: str) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": StandardWebhooks().sign(WEBHOOK_SECRET, message_id, stamp, raw),
    }


async def _kept(gw: Gateway) -> list[tuple[str, str, bytes]]:
    m = t.inbound_messages.c
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(m.partner, m.reason, m.raw).where(m.outcome == "refused"))).all()
    return [(p, r, raw) for p, r, raw in rows]


async def test_each_partner_is_verified_with_the_scheme_it_has(
    served: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, http = served
    raw = body("sw-1")
    signed = await http.post("/webhooks/any/demo-courier", content=raw, headers=standard(raw, "sw-1"))
    assert signed.status_code == 202, signed.text
    raw = body("v-1")
    key = unicodedata.normalize("NFKD", VENDOR_SECRET).encode()
    vendor = {"X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, raw, hashlib.sha256).hexdigest()}
    assert (await http.post("/webhooks/any/vendor-courier", content=raw, headers=vendor)).status_code == 202
    bearer = await http.post(
        "/webhooks/any/key-courier", content=body("k-1"), headers={"Authorization": f"Bearer {KEY}"}
    )
    assert bearer.status_code == 202
    header = await http.post("/webhooks/any/key-courier", content=body("k-2"), headers={"X-API-Key": KEY})
    assert header.status_code == 202
    # a partner verified with its own scheme only: demo-courier's API key would not do
    wrong = await http.post(
        "/webhooks/any/key-courier", content=body("k-3"), headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    vendor_as_key = await http.post(
        "/webhooks/any/vendor-courier", content=body("v-2"), headers={"X-API-Key": KEY}
    )
    assert vendor_as_key.status_code == 401


async def test_refused_requests_of_known_partners_are_kept_within_the_cap(
    served: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = served
    raw = body("sw-2")
    headers = standard(raw, "sw-2")
    assert (await http.post("/webhooks/any/demo-courier", content=raw, headers=headers)).status_code == 202
    replayed = await http.post("/webhooks/any/demo-courier", content=raw, headers=headers)
    assert replayed.status_code == 401
    bad = {**headers, "webhook-signature": "v1,AAAA"}
    assert (
        await http.post("/webhooks/any/demo-courier", content=b"tampered", headers=bad)
    ).status_code == 401
    kept = await _kept(gw)
    assert [(p, r.split(":")[0], x) for p, r, x in kept] == [
        ("demo-courier", "replayed", raw),
        ("demo-courier", "bad_signature", b"tampered"),
    ]
    # past the cap of 2 an hour: refused and counted, not kept
    assert (await http.post("/webhooks/any/demo-courier", content=b"third", headers=bad)).status_code == 401
    assert len(await _kept(gw)) == 2
    # another partner has its own cap; an unknown one is counted only
    no_key = await http.post("/webhooks/any/key-courier", content=b"no key")
    assert no_key.status_code == 401
    assert (await http.post("/webhooks/any/nobody-known", content=b"anything")).status_code == 401
    assert [(p, x) for p, _, x in await _kept(gw)][2:] == [("key-courier", b"no key")]


async def test_the_cap_is_shared_by_every_process_on_the_database(
    served: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = served
    # a second replica: its own process state, the same database and settings
    replica = StoreRefusals(gw.engine, per_hour=2, bytes_per_hour=10_000)
    assert await replica.keep("key-courier", "canonical-json", "http", b"one", None, "no_credentials")
    assert (await http.post("/webhooks/any/key-courier", content=b"two")).status_code == 401
    # the gateway's process kept the second; the cap of 2 is reached for both of them
    assert not await replica.keep("key-courier", "canonical-json", "http", b"three", None, "no_credentials")
    assert (await http.post("/webhooks/any/key-courier", content=b"four")).status_code == 401
    assert sorted(x for p, _, x in await _kept(gw) if p == "key-courier") == [b"one", b"two"]
    # the bytes count too, whoever kept them
    assert not await StoreRefusals(gw.engine, per_hour=10, bytes_per_hour=7).keep(
        "key-courier", "canonical-json", "http", b"five", None, "no_credentials"
    )

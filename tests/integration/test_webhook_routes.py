"""The webhook route factory with the other schemes (ASGI, real database, real broker): a vendor
header HMAC signed as EasyPost signs, and the gateway's own X-CGT scheme with its replays refused."""

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

from adapters.canonical_json.adapter import adapter
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.sdk.signatures import EASYPOST, CgtHmac
from gateway.sdk.webhooks import WebhookRoute, webhook_router
from gateway.settings import Settings
from tests.support.builders import coi, envelope_json, event

VENDOR_SECRET = "sécret-of-the-vendor"  # keyed in its NFKD form
CGT_SECRET = "a-courier-hmac-secret"


def partner_file(directory: Path) -> Path:
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": "vendor-courier",
            "kind": "courier",
            "adapter": "canonical-json",
            "demo": True,
            "auth": {
                "header_hmac": {
                    "secrets": [{"env": "CGT_TEST_VENDOR_SECRET", "demo_default": VENDOR_SECRET}]
                },
                "hmac_secret": {"env": "CGT_TEST_VENDOR_CGT", "demo_default": CGT_SECRET},
            },
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
async def client(tmp_path: Path, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json",
        partners_file=partner_file(tmp_path),
    )
    gateway = bootstrap(settings)
    await gateway.start()
    app = create_app(gateway)
    app.include_router(
        webhook_router(
            adapter,
            WebhookRoute("/webhooks/vendor/{partner}", EASYPOST),
            WebhookRoute("/webhooks/cgt/{partner}", CgtHmac(), partners=frozenset({"vendor-courier"})),
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield http
    await gateway.stop()


def body(message_id: str) -> bytes:
    # a courier's event about an order nobody placed: authenticated, then quarantined (202)
    return envelope_json(message_id, event("shipment.delivered", coi("CHA999926M00001"), shipment_id="S-1"))


async def test_a_vendor_signature_admits_and_a_wrong_one_is_refused(client: httpx.AsyncClient) -> None:
    raw = body("v-1")
    key = unicodedata.normalize("NFKD", VENDOR_SECRET).encode()
    signature = "hmac-sha256-hex=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    answer = await client.post(
        "/webhooks/vendor/vendor-courier", content=raw, headers={"X-Hmac-Signature": signature}
    )
    assert answer.status_code == 202 and answer.json()["message_id"] == "v-1"
    # no timestamp is signed: the same request again is a repeat, answered with the first answer
    again = await client.post(
        "/webhooks/vendor/vendor-courier", content=raw, headers={"X-Hmac-Signature": signature}
    )
    assert again.headers.get("idempotent-replayed") == "true" and again.content == answer.content
    plain = "hmac-sha256-hex=" + hmac.new(VENDOR_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    refused = await client.post(
        "/webhooks/vendor/vendor-courier", content=raw, headers={"X-Hmac-Signature": plain}
    )
    assert refused.status_code == 401


async def test_the_cgt_scheme_on_a_route_refuses_a_replayed_attempt(client: httpx.AsyncClient) -> None:
    raw = body("c-1")
    stamp = str(int(time.time()))
    digest = hmac.new(CGT_SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {"X-CGT-Timestamp": stamp, "X-CGT-Signature": f"sha256={digest}"}
    first = await client.post("/webhooks/cgt/vendor-courier", content=raw, headers=headers)
    assert first.status_code == 202 and first.json()["message_id"] == "c-1"
    replayed = await client.post("/webhooks/cgt/vendor-courier", content=raw, headers=headers)
    assert (
        replayed.status_code == 401 and replayed.json()["detail"] == "this signed request was received before"
    )
    # a partner the route does not name is refused, even with a good signature of its own
    other = await client.post("/webhooks/cgt/demo-courier", content=raw, headers=headers)
    assert other.status_code == 401

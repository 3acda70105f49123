"""Shared helpers of the FHIR integration tests: a running gateway, fixtures, FHIR checks."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson

from adapters.fhir.validation import model
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
KEY = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/fhir+json"}
FHIR_JSON = "application/fhir+json"
PLACER = "urn:oid:2.16.840.1.113883.3.9999.2"
MRN = "urn:oid:2.16.840.1.113883.3.9999.1"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return document


def order_bundle(n: int = 1, *, bundle_id: str | None = None) -> dict[str, Any]:
    """The official-style order Bundle, renumbered: patient MRN-n, placer PO-n."""
    text = (FIXTURES / "order-transaction.json").read_text()
    text = text.replace("MRN-000001", f"MRN-{n:06d}").replace("PO-000001", f"PO-{n:06d}")
    document: dict[str, Any] = orjson.loads(text)
    document["identifier"]["value"] = bundle_id or f"BUNDLE-{uuid.uuid4().hex[:8]}"
    return document


def valid_fhir(resource: dict[str, Any]) -> dict[str, Any]:
    """The answer is a valid R4 resource (checked with the R4B models)."""
    model(resource["resourceType"]).model_validate(resource)
    return resource


def assertion(audience: str, *, client_id: str = "demo-hospital-backend", lifetime: int = 240) -> str:
    key = (FIXTURES / "demo-hospital-backend.key.pem").read_bytes()
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "demo-hospital-backend-1"})


def settings(tmp_path: Path, amqp_url: str, **extra: Any) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        max_body_bytes=16_384,
        adapters="canonical-json,fhir-r4",  # the dialects these tests speak
        **extra,
    )


@asynccontextmanager
async def running(config: Settings) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gateway = bootstrap(config)
    try:
        await gateway.start()
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield gateway, http
    finally:
        await gateway.stop()

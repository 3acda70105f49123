"""SMART Backend Services state in the database, on SQLite and PostgreSQL: an assertion's jti is
taken once across replicas and restarts, expired ones are purged, and a bearer token issued by one
replica holds on another and after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select

from adapters.fhir.oauth import ASSERTION_TYPE, SECRET_ENV, check_token_secret
from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.store.tables import smart_assertions
from tests.integration.test_fhir_support import assertion, running

TOKEN_URL = "http://gateway/fhir/r4/auth/token"


def replica(database_url: str, amqp_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,fhir-r4",
    )


async def token(http: httpx.AsyncClient, client_assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        "scope": "system/Task.read",
    }
    return await http.post("/fhir/r4/auth/token", data=form)


async def test_an_assertion_is_taken_once_across_replicas_and_restarts(
    database_url: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)  # the key the first replica makes and stores
    used, fresh = assertion(TOKEN_URL), assertion(TOKEN_URL)
    async with (
        running(replica(database_url, amqp_url)) as (_, first),
        running(replica(database_url, amqp_url)) as (_, second),
    ):
        granted = await token(first, used)
        assert granted.status_code == 200, granted.text
        replayed = await token(second, used)
        assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
        bearer = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        # the other replica knows the token: authenticated, and the Task is simply not there
        assert (await second.get("/fhir/r4/Task/unknown", headers=bearer)).status_code == 404
    async with running(replica(database_url, amqp_url)) as (_, restarted):
        assert (await token(restarted, used)).status_code == 401
        assert (await restarted.get("/fhir/r4/Task/unknown", headers=bearer)).status_code == 404
        assert (await token(restarted, fresh)).status_code == 200


async def test_expired_assertions_are_purged(database_url: str, amqp_url: str) -> None:
    async with running(replica(database_url, amqp_url)) as (gateway, http):
        past = datetime.now(UTC) - timedelta(minutes=10)
        async with gateway.engine.begin() as conn:
            row = {"client_id": "demo-hospital-backend", "jti": "long-gone", "expires_at": past}
            await conn.execute(insert(smart_assertions).values(row))
        assert (await token(http, assertion(TOKEN_URL))).status_code == 200
        async with gateway.engine.connect() as conn:
            left = (await conn.execute(select(smart_assertions.c.jti))).scalars().all()
    assert len(left) == 1 and left[0] != "long-gone"


def test_production_signs_tokens_with_a_long_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production = Settings(env="production")
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(ConfigError, match=SECRET_ENV):
        check_token_secret(production)
    monkeypatch.setenv(SECRET_ENV, "k" * 32)
    check_token_secret(production)

"""The Secrets port over the database, on SQLite and PostgreSQL: a secret is made once and shared
by every replica (two stores on one database), a key is taken once, an expired one is forgotten."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.sdk import Secrets
from gateway.store.secrets import StoreSecrets
from gateway.store.tables import smart_assertions


async def test_a_secret_is_made_once_and_shared(engine: AsyncEngine) -> None:
    one, two = StoreSecrets(engine), StoreSecrets(engine)
    first, second = await asyncio.gather(one.secret("signing"), two.secret("signing"))
    assert first == second and len(first) >= 32
    assert await one.secret("signing") == first
    assert await one.secret("another") != first


async def test_a_key_is_taken_once_and_forgotten_when_expired(engine: AsyncEngine) -> None:
    store: Secrets = StoreSecrets(engine)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.first_use("client-a", "jti-1", later)
    assert not await StoreSecrets(engine).first_use("client-a", "jti-1", later)
    assert await store.first_use("client-b", "jti-1", later)  # another holder's key of the same name
    assert await store.first_use("client-a", "gone", datetime.now(UTC) - timedelta(minutes=1))
    assert await store.first_use("client-a", "jti-2", later)  # purges the expired one on the way
    async with engine.connect() as conn:
        left = set((await conn.execute(select(smart_assertions.c.jti))).scalars())
    assert left == {"jti-1", "jti-2"}

"""The webhook replay memory on SQLite and PostgreSQL: an attempt is taken once, whichever
replica sees it, in a transaction of its own or in the intake's, and expired sightings are taken
over and purged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import utcnow
from gateway.claims import Claim
from gateway.store import replays as module
from gateway.store.replays import StoreReplays
from gateway.store.tables import webhook_receipts


async def rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(webhook_receipts))).scalar_one())


async def test_an_attempt_is_taken_once_across_replicas(engine: AsyncEngine) -> None:
    one, other = StoreReplays(engine), StoreReplays(engine)  # two replicas on one database
    until = utcnow() + timedelta(minutes=5)
    assert await one.take(Claim.of("webhook:demo-lab-courier", "msg_1.1800000000", until))
    assert not await other.take(Claim.of("webhook:demo-lab-courier", "msg_1.1800000000", until))
    assert not await one.take(Claim.of("webhook:demo-lab-courier", "msg_1.1800000000", until))
    # another attempt, or the same one from another partner, is new
    assert await other.take(Claim.of("webhook:demo-lab-courier", "msg_1.1800000001", until))
    assert await other.take(Claim.of("webhook:rotating-lab-courier", "msg_1.1800000000", until))
    assert await rows(engine) == 3


async def test_expired_sightings_are_purged(engine: AsyncEngine) -> None:
    replays = StoreReplays(engine)
    assert await replays.take(Claim.of("webhook:a", "old", utcnow() - timedelta(seconds=1)))
    assert await replays.take(Claim.of("webhook:a", "live", utcnow() + timedelta(minutes=5)))
    assert await rows(engine) == 2
    # an expired sighting no longer refuses its key: the next attempt under it takes the row over
    assert await replays.take(Claim.of("webhook:a", "old", utcnow() - timedelta(seconds=1)))
    assert await rows(engine) == 2
    module._purged_at[0] -= module.PURGE_EVERY_S  # a minute later
    assert await replays.take(Claim.of("webhook:a", "next", utcnow() + timedelta(minutes=5)))
    assert await rows(engine) == 2  # "old" went, "next" came
    assert not await replays.take(Claim.of("webhook:a", "live", utcnow() + timedelta(minutes=5)))

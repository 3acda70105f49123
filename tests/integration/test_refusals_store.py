"""The cap on keeping refused requests, counted in the database (SQLite and PostgreSQL): shared by
every process on it, count and bytes, over the last hour only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.envelope import utcnow
from gateway.store import tables as t
from gateway.store.refusals import StoreRefusals


async def keep(refusals: StoreRefusals, raw: bytes, partner: str = "demo-courier") -> bool:
    return await refusals.keep(partner, "carrier-tracking", "http", raw, "application/json", "bad_signature")


async def kept(engine: AsyncEngine) -> list[tuple[str, bytes]]:
    m = t.inbound_messages.c
    query = select(m.partner, m.raw).where(m.outcome == "refused").order_by(m.received_at)
    async with engine.connect() as conn:
        return [(p, raw) for p, raw in (await conn.execute(query)).all()]


async def test_replicas_share_one_cap(engine: AsyncEngine) -> None:
    one, two = (StoreRefusals(engine, per_hour=3, bytes_per_hour=1000) for _ in range(2))
    assert await keep(one, b"a")
    assert await keep(two, b"b")
    assert await keep(one, b"c")
    assert not await keep(two, b"d")  # the third was kept by the other replica
    assert not await keep(one, b"e")
    assert await keep(two, b"f", partner="other-courier")  # each partner has its own
    assert await kept(engine) == [
        ("demo-courier", b"a"),
        ("demo-courier", b"b"),
        ("demo-courier", b"c"),
        ("other-courier", b"f"),
    ]


async def test_bytes_count_and_the_window_is_the_last_hour(engine: AsyncEngine) -> None:
    assert await keep(StoreRefusals(engine, per_hour=100, bytes_per_hour=10), b"123456")
    assert not await keep(StoreRefusals(engine, per_hour=100, bytes_per_hour=10), b"12345")
    # an hour later the first no longer counts (a new process: nothing remembered)
    async with engine.begin() as conn:
        await conn.execute(update(t.inbound_messages).values(received_at=utcnow() - timedelta(minutes=61)))
    assert await keep(StoreRefusals(engine, per_hour=100, bytes_per_hour=10), b"12345")
    assert len(await kept(engine)) == 2


async def test_a_partner_at_its_cap_costs_no_read_for_a_minute(engine: AsyncEngine) -> None:
    refusals = StoreRefusals(engine, per_hour=1, bytes_per_hour=1000)
    assert await keep(refusals, b"a")
    assert not await keep(refusals, b"b")
    async with engine.begin() as conn:  # room again, but this process does not ask before a minute
        await conn.execute(t.inbound_messages.delete())
    assert not await keep(refusals, b"c")
    assert await kept(engine) == []

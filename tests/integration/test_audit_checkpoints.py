"""Signed checkpoints of the audit chain, on SQLite and PostgreSQL: a chain rewritten by someone
with the database (every hash recomputed to the head) verifies on its own and is caught by the
checkpoints; replicas sharing a database take one checkpoint an interval between them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import verify
from gateway.audit.checkpoint import DEMO_AUDIT_KEY, Checkpoint, Due, audit_key, read_file
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.verify import stored_checkpoints
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import bootstrap
from gateway.errors import ConfigError
from gateway.service.intake import Intake
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.audit import rewrite_from
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send

KEY = b"a-key-the-database-never-sees"
EVERY_RECORD = Due(records=1, seconds=3600)


async def place_orders(gate: Intake, numbers: range) -> None:
    for n in numbers:
        assert (await send(gate, place(n))).status == "applied"


async def checkpoints_of(engine: AsyncEngine, path: Path) -> list[Checkpoint | str]:
    async with engine.connect() as conn:
        return [*read_file(path), *await stored_checkpoints(conn)]


async def test_a_chain_rewritten_from_the_middle_is_caught_by_its_checkpoints(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "audit-checkpoints.jsonl"
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    signer = Checkpointer(engine, KEY, EVERY_RECORD, path=path)
    for numbers in (range(1, 4), range(4, 7), range(7, 10)):
        await place_orders(gate, numbers)
        assert await signer.once() is not None
    assert await signer.once() is None  # nothing new to sign

    signed = await checkpoints_of(engine, path)
    async with engine.connect() as conn:
        report = await verify(conn, signed, [KEY])
    assert report.ok and report.checked == 9 and report.checkpoints == 3 and report.covered == 9
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["seq"] for line in lines] == [3, 6, 9]
    async with engine.connect() as conn:
        keys = (await conn.execute(select(t.outbox.c.routing_key).order_by(t.outbox.c.id))).scalars().all()
    assert keys.count("audit.checkpoint") == 3

    await rewrite_from(engine, 5)
    async with engine.begin() as conn:
        await conn.execute(delete(t.audit_checkpoints))  # the attacker removes the copies they can reach
    async with engine.connect() as conn:
        assert (await verify(conn)).ok  # the bare chain cannot tell: it has no key
        caught = await verify(conn, await checkpoints_of(engine, path), [KEY])
    assert not caught.ok and caught.first_broken == 4 and caught.checked == 5
    assert caught.reason is not None and "up to record 3" in caught.reason


async def test_checkpoints_that_the_key_did_not_sign_and_a_cut_chain_are_reported(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "audit-checkpoints.jsonl"
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    await place_orders(gate, range(1, 5))
    assert await Checkpointer(engine, KEY, EVERY_RECORD, path=path).once() is not None
    async with engine.begin() as conn:  # an attacker adds a checkpoint signed with a key of theirs
        head = (await conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash))).one()
        forged = Checkpoint.signed(b"not-the-key", head.seq, head.hash, utcnow())
        await conn.execute(
            insert(t.audit_checkpoints).values(**forged.to_json() | {"at": forged.at, "event_id": "x"})
        )
    async with engine.connect() as conn:
        report = await verify(conn, await stored_checkpoints(conn), [KEY])
    assert report.first_broken is None and not report.ok
    assert len(report.problems) == 1 and report.checkpoints == 1
    assert "record 4" in report.problems[0] and "not signed by the key" in report.problems[0]

    # Cut the chain after record 2 and rewind the head: the chain alone cannot tell.
    async with engine.begin() as conn:
        head = (await conn.execute(select(t.audit_records.c.hash).where(t.audit_records.c.seq == 2))).scalar()
        await conn.execute(delete(t.audit_records).where(t.audit_records.c.seq > 2))
        await conn.execute(update(t.audit_head).values(seq=2, hash=head))
        assert (await verify(conn)).ok
        cut = await verify(conn, list(read_file(path)), [KEY])
    assert cut.first_broken == 3 and cut.reason is not None and "up to record 4" in cut.reason


async def test_replicas_on_one_database_take_one_checkpoint_an_interval(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    others = [create_engine(database_url) for _ in range(2)]  # two more replicas: their own pools
    try:
        gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
        replicas = [
            Checkpointer(e, KEY, EVERY_RECORD, path=tmp_path / "audit-checkpoints.jsonl")
            for e in (engine, *others)
        ]
        for n in range(1, 6):
            await place_orders(gate, range(n, n + 1))
            taken = await asyncio.gather(*(r.once() for r in replicas))
            assert sum(c is not None for c in taken) == 1
        async with engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(t.audit_checkpoints))).scalar()
            signed = [*read_file(tmp_path / "audit-checkpoints.jsonl"), *await stored_checkpoints(conn)]
            report = await verify(conn, signed, [KEY])
        assert rows == 5 and len((tmp_path / "audit-checkpoints.jsonl").read_bytes().splitlines()) == 5
        assert report.ok and report.covered == 5
    finally:
        for other in others:
            await dispose(other)


async def test_a_checkpoint_is_due_by_count_or_by_time(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    by_count = Checkpointer(engine, KEY, Due(records=3, seconds=3600), path=None)
    assert await by_count.once() is None  # an empty chain has nothing to sign
    await place_orders(gate, range(1, 3))
    assert await by_count.once() is None
    await place_orders(gate, range(3, 4))
    assert (signed := await by_count.once()) is not None and signed.seq == 3
    await place_orders(gate, range(4, 5))
    by_time = Checkpointer(engine, KEY, Due(records=1000, seconds=0.2), path=None)
    assert await by_time.once() is None
    await asyncio.sleep(0.25)
    assert (later := await by_time.once()) is not None and later.seq == 4


def test_production_refuses_a_missing_or_demo_audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CGT_AUDIT_KEY", raising=False)
    assert audit_key("development") == DEMO_AUDIT_KEY.encode()
    with pytest.raises(ConfigError, match="must be set"):
        audit_key("production")
    monkeypatch.setenv("CGT_AUDIT_KEY", DEMO_AUDIT_KEY)
    with pytest.raises(ConfigError, match="demo key"):
        audit_key("production")
    monkeypatch.setenv("CGT_AUDIT_KEY", "a-real-one")
    assert audit_key("production") == b"a-real-one"


async def test_a_running_gateway_signs_its_chain_and_publishes_the_checkpoint(
    tmp_path: Path, amqp_url: str
) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        audit_checkpoint_seconds=0.2,
    )
    assert settings.checkpoints_file == tmp_path / "audit-checkpoints.jsonl"
    gateway = bootstrap(settings)
    await gateway.start()
    try:
        await place_orders(gateway.intake, range(1, 3))
        async with asyncio.timeout(15):
            while True:
                async with gateway.engine.connect() as conn:
                    sent = (
                        await conn.execute(
                            select(t.outbox.c.sent_at).where(t.outbox.c.routing_key == "audit.checkpoint")
                        )
                    ).scalar()
                if sent is not None:  # the broker confirmed it
                    break
                await asyncio.sleep(0.1)
    finally:
        await gateway.stop()
    seqs = [orjson.loads(line)["seq"] for line in settings.checkpoints_file.read_bytes().splitlines()]
    assert seqs[-1] == 2 and seqs == sorted(set(seqs))  # one a head, however the polls fell

"""Clocks that outlive the process: started by the events they wait for, swept on a schedule,
warned of at 75 %, 90 % and at breach as `shipment.delayed`, once, even across a restart and with
several replicas sweeping the same database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit
from gateway.canonical.ids import ExternalRef
from gateway.service.sweep import ClockSweeper
from gateway.store import tables as t
from gateway.store.unit_of_work import SqlTransactions
from tests.support.builders import coi, envelope_json, event
from tests.support.couriers import HOSPITAL, declare, from_courier, placed, readings, running, settings_for

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


class Clock:
    """The gateway's time, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _delayed(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t.outbox.c.body)
                .where(t.outbox.c.routing_key == "shipment.delayed")
                .order_by(t.outbox.c.id)
            )
        ).all()
    return [orjson.loads(body)["data"] for (body,) in rows]


async def _collected(http: httpx.AsyncClient, at: datetime, n: int = 1) -> str:
    order_coi = await placed(http, n)
    completed = event("collection.completed", coi(order_coi), collected_at=at)
    response = await http.post(
        "/api/messages", content=envelope_json(f"c-{order_coi}", completed), headers=HOSPITAL
    )
    assert response.status_code == 201, response.text
    return order_coi


async def _eventually(engine: AsyncEngine, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = await _delayed(engine)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return await _delayed(engine)


async def test_the_viability_warning_comes_after_a_restart(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, amqp_url, tmp_path, clock_sweep_seconds=0.05)
    clock = Clock(NOW)
    async with running(settings, clock) as (gw, http):
        order_coi = await _collected(http, NOW - timedelta(hours=35))  # S9999: 48 h, 73 % gone
        await asyncio.sleep(0.3)  # a few sweeps: nothing to warn of yet
        assert await _delayed(gw.engine) == []
    clock.now = NOW + timedelta(hours=2)  # while the gateway is stopped: 77 %
    async with running(settings, clock) as (gw, _):
        (warning,) = await _eventually(gw.engine, 1)
        assert (
            warning["clock"] == "viability" and warning["elapsed_pct"] == 77 and warning["coi"] == order_coi
        )
        assert warning["time_left_s"] == 11 * 3600
        assert warning["deadline"] == (NOW + timedelta(hours=13)).isoformat().replace("+00:00", "Z")
        clock.now = NOW + timedelta(hours=14)  # past the deadline: the breach, once
        found = await _eventually(gw.engine, 2)
        assert [w["elapsed_pct"] for w in found] == [77, 102] and found[1]["time_left_s"] == -3600
        await asyncio.sleep(0.2)
        assert len(await _delayed(gw.engine)) == 2
        async with gw.engine.connect() as conn:
            actions = (await conn.execute(select(t.audit_records.c.action, t.audit_records.c.actor))).all()
        assert actions.count(("shipment.delayed", "gateway:clocks")) == 2


async def test_several_replicas_warn_once(database_url: str, amqp_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, amqp_url, tmp_path, clock_sweep_seconds=3600)
    clock = Clock(NOW)
    async with running(settings, clock) as (gw, http):
        await _collected(http, NOW - timedelta(hours=44))  # 91 %
        replicas = [
            ClockSweeper(SqlTransactions(gw.engine, audit.append, pipelined=False), 1, clock, lambda: None)
            for _ in range(4)
        ]
        counts = await asyncio.gather(*(r.sweep() for r in replicas), return_exceptions=True)
        warned = [c for c in counts if isinstance(c, int)]
        assert sum(warned) <= 1
        assert [w["elapsed_pct"] for w in await _delayed(gw.engine)] == [91]  # 90 % only: the highest step
        assert sum([await r.sweep() for r in replicas]) == 0


async def test_a_sweep_reads_the_clocks_that_are_due_and_each_keeps_its_next_warning(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, amqp_url, tmp_path, clock_sweep_seconds=3600)
    clock = Clock(NOW)
    async with running(settings, clock) as (gw, http):
        for n, hours in enumerate((1, 2, 3), start=1):  # young clocks: their first warning is hours away
            await _collected(http, NOW - timedelta(hours=hours), n)
        await _collected(http, NOW - timedelta(hours=37), 4)  # 77 % of 48 h: due
        sweeper = ClockSweeper(
            SqlTransactions(gw.engine, audit.append, pipelined=False), 1, clock, lambda: None
        )
        due = select(t.deadlines.c.id).where(t.deadlines.c.next_at <= NOW)
        async with gw.engine.connect() as conn:
            assert len((await conn.execute(due)).all()) == 1  # what a sweep reads, by the index
        assert await sweeper.sweep() == 1
        async with gw.engine.connect() as conn:
            assert (await conn.execute(due)).all() == []
            rows = (await conn.execute(select(t.deadlines.c.warned_pct, t.deadlines.c.next_at))).all()
        warned = [r for r in rows if r.warned_pct == 75]
        assert len(warned) == 1 and warned[0].next_at.replace(tzinfo=UTC) > NOW  # next: its 90 %
        clock.now = NOW + timedelta(hours=48)  # every clock past its deadline
        assert await sweeper.sweep() == 4  # each at its deadline, the highest step only
        assert [w["elapsed_pct"] >= 100 for w in await _delayed(gw.engine)] == [False, True, True, True, True]


async def test_delivery_stops_the_clocks_and_a_promised_window_moves(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, amqp_url, tmp_path, clock_sweep_seconds=3600)
    clock = Clock(NOW)
    async with running(settings, clock) as (gw, http):
        order_coi = await _collected(http, NOW - timedelta(hours=10))
        assert (await declare(http, order_coi, tracking_number="TRK-1")).status_code == 201
        tracking = ExternalRef(namespace="courier:demo-courier:tracking", value="TRK-1")
        promised = event(
            "shipment.picked_up",
            tracking,
            shipment_id="TRK-1",
            occurred_at=NOW,
            expected_delivery=NOW + timedelta(hours=10),
        )
        assert (await from_courier(http, "demo-courier", promised)).status_code == 201
        async with gw.engine.connect() as conn:
            clocks = (await conn.execute(select(t.deadlines.c.clock, t.deadlines.c.due_at))).all()
        assert sorted(c for c, _ in clocks) == ["promised_delivery", "viability"]
        clock.now = NOW + timedelta(hours=8)  # promised window 80 %
        assert await gw.sweeper.sweep() == 1
        moved = event(
            "shipment.in_transit", tracking, shipment_id="TRK-1", expected_delivery=NOW + timedelta(hours=30)
        )
        assert (await from_courier(http, "demo-courier", moved)).status_code == 201
        assert await gw.sweeper.sweep() == 0  # moved: 8 of 30 hours
        delivered = event("shipment.delivered", tracking, shipment_id="TRK-1", occurred_at=clock.now)
        assert (await from_courier(http, "demo-courier", delivered)).status_code == 201
        clock.now = NOW + timedelta(days=5)
        assert await gw.sweeper.sweep() == 0
        async with gw.engine.connect() as conn:
            stopped = (await conn.execute(select(t.deadlines.c.stopped_at))).all()
        assert all(s is not None for (s,) in stopped)


async def test_a_silent_logger_is_a_fault_once(database_url: str, amqp_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, amqp_url, tmp_path)
    clock = Clock(NOW)
    async with running(settings, clock) as (gw, http):
        order_coi = await _collected(http, NOW - timedelta(hours=1))  # its viability clock: 1 of 48 h
        assert (await declare(http, order_coi, logger_id="LOG-S")).status_code == 201
        batch = readings("LOG-S", NOW - timedelta(minutes=50), [5.0] * 10)  # the latest at NOW - 41 min
        assert (await from_courier(http, "demo-courier", batch)).status_code == 201
        assert await gw.sweeper.sweep() == 0  # 41 of the 60 minutes tolerated: no warning steps
        clock.now = NOW + timedelta(minutes=20)
        assert await gw.sweeper.sweep() == 1
        assert await gw.sweeper.sweep() == 0
        async with gw.engine.connect() as conn:
            bodies = (
                await conn.execute(
                    select(t.outbox.c.body).where(t.outbox.c.routing_key == "shipment.logger_fault")
                )
            ).all()
        (fault,) = [orjson.loads(b)["data"] for (b,) in bodies]
        assert (
            fault["fault"] == "no_data"
            and fault["device_id"] == "LOG-S"
            and fault["detail"] == "no reading for 61 minutes"
        )
        assert await _delayed(gw.engine) == []
        # the logger speaks again: its silence counts from its new latest reading
        again = readings("LOG-S", clock.now - timedelta(minutes=1), [5.0])
        assert (await from_courier(http, "demo-courier", again)).status_code == 201
        assert await gw.sweeper.sweep() == 0
        # delivered, then read out at the dock: the readings are kept, and no silence clock restarts
        tracking = ExternalRef(namespace="courier:demo-courier:tracking", value="1Z0000000000000001")
        for step in ("shipment.picked_up", "shipment.delivered"):
            moved = event(step, tracking, shipment_id="1Z0000000000000001", occurred_at=clock.now)
            assert (await from_courier(http, "demo-courier", moved)).status_code == 201
        late = readings("LOG-S", clock.now, [5.0, 5.1])
        assert (await from_courier(http, "demo-courier", late)).status_code == 201
        clock.now += timedelta(hours=3)
        assert await gw.sweeper.sweep() == 0
        async with gw.engine.connect() as conn:
            running_clocks = (
                await conn.execute(select(t.deadlines.c.clock).where(t.deadlines.c.stopped_at.is_(None)))
            ).all()
        assert running_clocks == []

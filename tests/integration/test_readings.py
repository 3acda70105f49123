"""A logger's readings through the core, on SQLite and PostgreSQL: stored once each, never
published one by one, evaluated in time order even when they come late."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.support.couriers import declare, from_courier, order_of, placed, readings, running, settings_for

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(
    database_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running(settings_for(database_url, amqp_url, tmp_path)) as pair:
        yield pair


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.shipment_readings))).scalar_one())


async def _state_written(engine: AsyncEngine) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(select(t.cold_chain_states.c.updated_at))).scalar_one()


async def _published(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.outbox.c.body).order_by(t.outbox.c.id))).all()
    return [orjson.loads(body) for (body,) in rows]


async def _declared(http: httpx.AsyncClient, logger: str = "LOG-1", **body: Any) -> str:
    order_coi = await placed(http)
    response = await declare(http, order_coi, logger_id=logger, **body)
    assert response.status_code == 201, response.text
    return order_coi


async def test_readings_are_stored_once_and_never_published(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    order_coi = await _declared(http)
    batch = readings("LOG-1", T0, [5.0] * 100)
    assert (await from_courier(http, "demo-courier", batch)).status_code == 201
    assert await _count(gw.engine) == 100
    evaluated = await _state_written(gw.engine)
    again = await from_courier(http, "demo-courier", batch)  # the same readings, another message
    assert again.status_code == 201 and await _count(gw.engine) == 100
    assert await _state_written(gw.engine) == evaluated  # nothing new: not evaluated again
    types = [e["type"] for e in await _published(gw.engine)]
    assert "org.cgt.shipment.readings_reported" not in types
    assert not [x for x in types if "excursion" in x or "summary" in x]
    timeline = (await order_of(http, order_coi))["timeline"]
    assert [e["type"] for e in timeline].count("org.cgt.shipment.readings_reported") == 2


async def test_late_readings_are_evaluated_in_time_order(gateway: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, http = gateway
    await _declared(http)
    # minutes 0-29 in range, and minutes 70-99; minutes 30-69 (out of range) arrive last
    assert (await from_courier(http, "demo-courier", readings("LOG-1", T0, [5.0] * 30))).status_code == 201
    later = readings("LOG-1", T0.replace(hour=9, minute=10), [5.0] * 30)
    assert (await from_courier(http, "demo-courier", later)).status_code == 201
    assert not [e for e in await _published(gw.engine) if "excursion" in e["type"]]
    late = readings("LOG-1", T0.replace(minute=30), [9.5] * 40)
    assert (await from_courier(http, "demo-courier", late)).status_code == 201
    found = [e["data"] for e in await _published(gw.engine) if e["type"].endswith("temperature_excursion")]
    assert [bool(e.get("ended_at")) for e in found] == [False, True]
    assert found[0]["started_at"] == "2026-11-02T08:30:00Z" and found[1]["ended_at"] == "2026-11-02T09:10:00Z"
    assert found[1]["duration_s"] == 40 * 60 and found[1]["temperature_class"] == "fresh"
    # the same late batch again: stored once, published nothing more
    assert (await from_courier(http, "demo-courier", late)).status_code == 201
    assert len([e for e in await _published(gw.engine) if "excursion" in e["type"]]) == 2
    assert await _count(gw.engine) == 100


async def test_readings_of_an_undeclared_shipment_or_of_another_courier_are_refused(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gw, http = gateway
    await _declared(http)
    unknown = await from_courier(http, "demo-courier", readings("LOG-9", T0, [5.0]))
    assert unknown.status_code == 202  # an identifier nobody declared: held for review, nothing stored
    theirs = await from_courier(http, "other-courier", readings("LOG-1", T0, [5.0], courier="other-courier"))
    assert theirs.status_code == 202
    assert await _count(gw.engine) == 0


async def test_battery_low_is_a_logger_fault(gateway: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, http = gateway
    await _declared(http)
    batch = readings("LOG-1", T0, [5.0] * 3, battery_pct=12.0)
    assert (await from_courier(http, "demo-courier", batch)).status_code == 201
    faults = [e["data"] for e in await _published(gw.engine) if e["type"].endswith("logger_fault")]
    assert len(faults) == 1 and faults[0]["fault"] == "battery_low" and faults[0]["device_id"] == "LOG-1"

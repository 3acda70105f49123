"""One excursion scenario per temperature class, through the whole gateway (HTTP, the core, the
outbox) on SQLite and PostgreSQL: a leg in range, then out past its tolerated minutes, then back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.coldchain.classes import default_cold_chain
from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.support.couriers import declare, from_courier, order_of, placed, readings, running, settings_for

T0 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
SCENARIOS = {  # class: (in range, out of range, the limit crossed)
    "fresh": (5.0, 10.0, 8.0),
    "ambient": (21.0, 12.0, 15.0),
    "frozen": (-78.0, -52.0, -60.0),
    "cryogenic": (-185.0, -141.0, -150.0),
}


@pytest.fixture
async def gateway(
    database_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with running(settings_for(database_url, amqp_url, tmp_path)) as pair:
        yield pair


async def _excursions(gw: Gateway) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        bodies = (
            await conn.execute(
                select(t.outbox.c.body)
                .where(t.outbox.c.routing_key == "shipment.temperature_excursion")
                .order_by(t.outbox.c.id)
            )
        ).all()
    return [orjson.loads(b)["data"] for (b,) in bodies]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_an_excursion_of_each_class(gateway: tuple[Gateway, httpx.AsyncClient], name: str) -> None:
    gw, http = gateway
    inside, outside, limit = SCENARIOS[name]
    tolerated = int(default_cold_chain().classes[name].tolerated_minutes)
    order_coi = await placed(http)
    response = await declare(http, order_coi, logger_id=f"LOG-{name}", temperature_class=name)
    assert response.status_code == 201, response.text
    logger = f"LOG-{name}"
    steps = [[inside] * 20, [outside] * (tolerated + 10), [inside] * 20]
    start = T0
    for values in steps:
        sent = await from_courier(http, "demo-courier", readings(logger, start, values))
        assert sent.status_code == 201, sent.text
        start += timedelta(minutes=len(values))
    began, ended = await _excursions(gw)
    assert (
        began["temperature_class"] == name and began["limit_c"] == limit and began["temperature_c"] == outside
    )
    assert began["started_at"] == (T0 + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    assert began["severity"] in ("major", "critical") and began["coi"] == order_coi
    assert ended["duration_s"] == (tolerated + 10) * 60 and ended["ended_at"]
    timeline = [e["type"] for e in (await order_of(http, order_coi))["timeline"]]
    assert timeline.count("org.cgt.shipment.temperature_excursion") == 2

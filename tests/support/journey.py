"""A whole synthetic journey, vein to vein, sent through the core's real path (tests/support/
drive.py): the site places and collects, the courier picks up, hands over and delivers, the
manufacturer receives, makes, releases and ships, the site infuses. Logger readings and clocks
are written as rows (their handlers are the couriers' part); one excursion is sent as an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.builders import T0, coi, event, place
from tests.support.drive import send
from tests.support.manufacturing import TESTS

DIN = "A999926123456"
TRACKING = ExternalRef(namespace="courier:demo-courier:tracking", value="TRK-7731-0001")
BATCH = ExternalRef(namespace="mes:demo-manufacturer:batch", value="BATCH-0917")
INBOUND = {"shipment_id": "SH-IN-1", "direction": "to_manufacturer", "courier": "demo-courier",
           "tracking_number": TRACKING.value, "temperature_class": "2-8C", "logger_id": "LOG-0001"}  # fmt: skip
OUTBOUND = {"shipment_id": "SH-OUT-1", "direction": "to_site", "courier": "demo-courier",
            "temperature_class": "<=-150C", "logger_id": "LOG-0002"}  # fmt: skip


@dataclass
class Seeded:
    coi: str
    order_id: str


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


async def journey(intake: Intake, engine: AsyncEngine, n: int = 1, *, infused: bool = True) -> Seeded:
    placed = await send(intake, place(n))
    assert placed.status == "applied", placed
    assert placed.coi is not None and placed.order_id is not None
    the = coi(placed.coi)
    steps: list[tuple[str, Command]] = [
        ("demo-hospital", event("collection.completed", the, collected_at=at(2), din=DIN,
                                site={"id": "demo-hospital"}, occurred_at=at(2))),
        ("demo-hospital", event("shipment.booked", the, shipment=INBOUND, occurred_at=at(2.5))),
        ("demo-courier", event("shipment.picked_up", the, TRACKING, binds=(TRACKING,), shipment_id="SH-IN-1",
                               handed_over_by="demo-hospital", custodian="demo-courier",
                               signed_by="Driver D. Example", location="Demo Hospital apheresis unit",
                               occurred_at=at(3))),
        ("demo-courier", event("shipment.custody_transferred", the, shipment_id=TRACKING.value,
                               handed_over_by="demo-courier", custodian="Demo Air Cargo",
                               signed_by="Agent A. Sample", location="Airport cargo hub", occurred_at=at(6))),
        ("demo-courier", event("shipment.temperature_excursion", the, shipment_id="SH-IN-1", temperature_c=9.4,
                               limit_c=8.0, duration_s=1200, severity="minor", temperature_class="2-8C",
                               started_at=at(7), ended_at=at(7.33), occurred_at=at(7.33))),
        ("demo-courier", event("shipment.delivered", the, shipment_id="SH-IN-1", handed_over_by="Demo Air Cargo",
                               custodian="demo-manufacturer", signed_by="Receiver R. Sample",
                               location="Demo manufacturer goods-in", occurred_at=at(10))),
        ("demo-manufacturer", event("manufacturing.material_received", the, din=DIN, scanned_coi=placed.coi,
                                    condition="intact", occurred_at=at(10.5))),
        ("demo-manufacturer", event("manufacturing.started", the, BATCH, binds=(BATCH,), batch_id=BATCH.value,
                                    occurred_at=at(24))),
        *[  # the product's release tests, all passed: the release is applied only then
            ("demo-manufacturer", event("manufacturing.qc_result", the, batch_id=BATCH.value, test=test,
                                        result="pass", occurred_at=at(230 + i)))
            for i, test in enumerate(TESTS)
        ],
        ("demo-manufacturer", event("manufacturing.released", the, batch_id=BATCH.value, occurred_at=at(240))),
        ("demo-manufacturer", event("shipment.booked", the, shipment=OUTBOUND, occurred_at=at(241))),
        ("demo-manufacturer", event("manufacturing.shipped", the, batch_id=BATCH.value, shipment_id="SH-OUT-1",
                                    courier="demo-courier", occurred_at=at(242))),
        ("demo-courier", event("shipment.picked_up", the, shipment_id="SH-OUT-1", occurred_at=at(242.5))),
        ("demo-courier", event("shipment.delivered", the, shipment_id="SH-OUT-1", custodian="demo-hospital",
                               signed_by="Pharmacist P. Sample", location="Demo Hospital cell therapy lab",
                               occurred_at=at(264))),
    ]  # fmt: skip
    if infused:
        steps.append(
            ("demo-hospital", event("infusion.completed", the, infused_at=at(290), occurred_at=at(290)))
        )
    for partner, command in steps:
        outcome = await send(intake, command, partner=partner)
        assert outcome.status == "applied", (command.event, outcome)
    await _rows(engine, placed.order_id)
    return Seeded(placed.coi, placed.order_id)


async def _rows(engine: AsyncEngine, order_id: str) -> None:
    """The inbound leg's logger readings (one excursion above 8 °C). The legs' clocks are the
    core's own (gateway.service.clocks), started and stopped by the journey's events."""
    readings: list[dict[str, Any]] = []
    for i in range(29):  # every 15 minutes from pickup to delivery
        when = T0 + timedelta(hours=3, minutes=15 * i)
        value = 9.4 if 16 <= i <= 17 else 4.0 + (i % 5) * 0.4
        readings.append({"order_id": order_id, "shipment_id": "SH-IN-1", "device_id": "LOG-0001", "probe": "",
                         "at": when, "temperature_c": value})  # fmt: skip
    readings.append({"order_id": order_id, "shipment_id": "SH-OUT-1", "device_id": "LOG-0002", "probe": "",
                     "at": T0 + timedelta(hours=243), "until": T0 + timedelta(hours=263),
                     "min_c": -192.0, "max_c": -181.5, "mean_c": -188.0})  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(insert(t.shipment_readings), readings[:-1])
        await conn.execute(insert(t.shipment_readings), readings[-1:])

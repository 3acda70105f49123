"""Which events start, move and stop a shipment's clocks (gateway.service.clocks), on the fake store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.canonical.command import Command
from gateway.canonical.order import Shipment, ShipmentDirection, TemperatureClass, TherapyOrder
from gateway.coldchain.classes import default_cold_chain
from gateway.service.clocks import move_clocks
from gateway.service.sweep import step_reached
from tests.unit.fakes import FakeColdChain, State

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
CRYO = Shipment(
    shipment_id="SH-OUT",
    direction=ShipmentDirection.to_site,
    courier="demo-courier",
    temperature_class=TemperatureClass.cryo_minus_150c,
)


def order(*shipments: Shipment) -> TherapyOrder:
    return TherapyOrder.model_validate(
        {
            "order_id": "o-1",
            "coi": "CHA999926ABC123",
            "patient_id": "p-1",
            "product": {"code": "S9999"},
            "ordering_site": {"id": "demo-hospital"},
            "shipments": [s.model_dump() for s in shipments],
            "created_at": T0,
            "updated_at": T0,
        }
    )


def command(name: str, **payload: object) -> Command:
    return Command.model_validate(
        {"event": name, "refs": [{"namespace": "coi", "value": "CHA999926ABC123"}], "payload": payload}
    )


def test_the_dry_shippers_hold_time_runs_from_pickup_and_stops_at_delivery() -> None:
    state = State()
    rows = FakeColdChain(state)
    move_clocks(
        rows,
        default_cold_chain(),
        command("shipment.picked_up", shipment_id="SH-OUT", occurred_at=T0),
        order(CRYO),
        T0,
    )
    hold = state.clocks[("o-1", "SH-OUT", "hold_time")]
    assert hold["due_at"] - hold["starts_at"] == timedelta(days=10)
    move_clocks(
        rows,
        default_cold_chain(),
        command("shipment.delivered", shipment_id="SH-OUT", occurred_at=T0),
        order(CRYO),
        T0,
    )
    assert hold["stopped_at"] == T0


def test_a_fresh_leg_has_no_hold_time_and_viability_runs_from_collection() -> None:
    state = State()
    rows = FakeColdChain(state)
    fresh = CRYO.model_copy(
        update={"direction": ShipmentDirection.to_manufacturer, "temperature_class": None}
    )
    move_clocks(
        rows, default_cold_chain(), command("shipment.picked_up", shipment_id="SH-OUT"), order(fresh), T0
    )
    move_clocks(
        rows, default_cold_chain(), command("collection.completed", collected_at=T0), order(fresh), T0
    )
    assert list(state.clocks) == [("o-1", "", "viability")]
    assert state.clocks[("o-1", "", "viability")]["due_at"] == T0 + timedelta(hours=48)
    move_clocks(rows, default_cold_chain(), command("order.cancelled"), order(fresh), T0)
    assert state.clocks[("o-1", "", "viability")]["stopped_at"] == T0


def test_the_warning_steps() -> None:
    due = T0 + timedelta(hours=100)
    assert step_reached(T0, due, T0 + timedelta(hours=74), 0) is None
    assert step_reached(T0, due, T0 + timedelta(hours=75), 0) == (75, 75)
    assert step_reached(T0, due, T0 + timedelta(hours=95), 0) == (90, 95)
    assert step_reached(T0, due, T0 + timedelta(hours=95), 90) is None
    assert step_reached(T0, due, T0 + timedelta(hours=120), 90) == (100, 120)

"""The chain of custody as a pure function of an order's events: gaps named, parties named by
partner id or name, a receipt by the holder listed as a check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.canonical.order import TherapyOrder
from gateway.service.custody import custody
from gateway.store.journey import Sent
from tests.support.builders import T0

ORDER = TherapyOrder.model_validate(
    {
        "order_id": "o-1",
        "coi": "CHA999926ABC123",
        "patient_id": "p-1",
        "product": {"code": "S9999"},
        "ordering_site": {"id": "demo-hospital"},
        "shipments": [{"shipment_id": "SH-1", "direction": "to_manufacturer", "courier": "demo-courier"}],
        "created_at": T0,
        "updated_at": T0,
    }
)
PARTIES = {"demo-hospital": "demo-hospital", "demo hospital": "demo-hospital", "demo-courier": "demo-courier"}


def sent(n: int, kind: str, partner: str | None = None, **data: Any) -> Sent:
    return Sent(f"e-{n}", kind, T0 + timedelta(hours=n), data, partner, "canonical-json")


def test_a_pickup_with_no_collection_recorded_is_a_gap() -> None:
    chain = custody(
        ORDER, [sent(1, "shipment.picked_up", "demo-courier", shipment_id="SH-1")], parties=PARTIES
    )
    assert [g.reason for g in chain.gaps] == [
        "no record of who held the material before (no collection recorded)"
    ]
    assert not chain.complete and chain.holder == "demo-courier"


def test_parties_are_named_by_partner_id_or_name_and_a_handoff_needs_its_custodian() -> None:
    events = [
        sent(1, "collection.completed", "demo-hospital", site={"id": "demo-hospital"}),
        sent(2, "shipment.picked_up", "demo-courier", shipment_id="SH-1", handed_over_by="Demo Hospital"),
        sent(
            3,
            "shipment.custody_transferred",
            "demo-courier",
            shipment_id="SH-1",
            handed_over_by="demo-courier",
        ),
        sent(4, "shipment.delivered", "demo-courier", shipment_id="SH-1"),
        sent(5, "manufacturing.material_received", "demo-manufacturer"),
    ]
    chain = custody(ORDER, events, parties=PARTIES)
    assert [(h.from_holder, h.to_holder, h.kind) for h in chain.handoffs] == [
        ("patient", "demo-hospital", "handoff"),
        ("demo-hospital", "demo-courier", "handoff"),  # "Demo Hospital" is the partner's name
        ("demo-courier", "demo-courier", "check"),
        ("demo-courier", "manufacturer", "handoff"),  # no manufacturer named yet: its role
        ("manufacturer", "demo-manufacturer", "handoff"),
    ]
    assert [g.reason for g in chain.gaps] == ["a handoff that names no new custodian"]

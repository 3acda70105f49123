"""Status messages to the site (pure rendering): which events the site hears of, and how they read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.hl7v2 import er7
from adapters.hl7v2.profile import Outbound
from adapters.hl7v2.render import SiteOrder, control_id, status_message
from gateway.canonical.envelope import CloudEvent
from tests.support.builders import status_event
from tests.support.hl7 import load_profile

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PROFILE = load_profile("demo-hospital")
ORDER = SiteOrder(
    "PO-1001", "MRN0001001", "Testpatient^Alpha", "S1234", "Demo autologous CAR-T", "isbt128", "ORM0001"
)
STATUSES = {
    "manufacturing.started": {"code": "MFG-STARTED", "text": "Manufacturing started"},
    "shipment.picked_up": {"code": "SHIPPED", "text": "Shipped to site"},
    "shipment.delivered": {"code": "DELIVERED", "text": "Delivered to site", "order_status": "CM"},
}


def outbound(**changes: Any) -> Outbound:
    return Outbound.model_validate(
        {
            "host": "ehr",
            "port": 6661,
            "events": ["order.accepted", *STATUSES],
            "statuses": STATUSES,
            **changes,
        }
    )


def event(name: str, **data: Any) -> CloudEvent:
    return status_event(name, time=NOW, **data)


def render(ev: CloudEvent, **changes: Any) -> er7.Message:
    raw = status_message(ev, ORDER, PROFILE, outbound(**changes), now=NOW)
    assert raw is not None
    return er7.parse(raw)


def test_a_shipment_to_the_site_carries_its_expected_delivery() -> None:
    msg = render(
        event(
            "shipment.picked_up",
            status="in_transit_to_site",
            shipment_id="SH-9",
            expected_delivery="2026-11-21T09:00:00+00:00",
        )
    )
    assert msg.get("MSH-9.1") == "ORU" and msg.get("MSH-9.2") == "R01"
    assert (
        msg.get("ORC-2") == "PO-1001"
        and msg.get("ORC-3.1") == "CHA999926ABC123"
        and msg.get("ORC-3.2") == "CGT"
    )
    observations = {s.value(3, 1): s.value(5, 1) for s in msg.all("OBX")}
    assert observations == {
        "CGT-STATUS": "SHIPPED",
        "CGT-EXPECTED-DELIVERY": "20261121090000+0000",
        "CGT-SHIPMENT": "SH-9",
    }


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("shipment.picked_up", "in_transit_to_manufacturer"),
        ("shipment.delivered", "received_by_manufacturer"),
    ],
)
def test_a_shipment_to_the_manufacturer_is_not_the_sites_business(name: str, status: str) -> None:
    assert (
        status_message(event(name, status=status, shipment_id="SH-1"), ORDER, PROFILE, outbound(), now=NOW)
        is None
    )


def test_manufacturing_carries_the_batch_and_delivery_completes_the_order() -> None:
    started = render(event("manufacturing.started", status="in_manufacturing", batch_id="B-42"))
    assert {s.value(3, 1): s.value(5) for s in started.all("OBX")}["CGT-BATCH"] == "B-42"
    assert started.get("ORC-5") == "IP" and started.get("OBR-25") == "F"
    delivered = render(event("shipment.delivered", status="delivered_to_site", shipment_id="SH-9"))
    assert delivered.get("ORC-5") == "CM"


def test_acceptance_answers_the_original_order_as_orr_or_orl() -> None:
    orr = render(event("order.accepted", status="ordered"))
    assert (orr.get("MSH-9.1"), orr.get("MSH-9.2")) == ("ORR", "O02")
    assert orr.get("MSA-1") == "AA" and orr.get("MSA-2") == "ORM0001" and orr.get("ORC-1") == "OK"
    orl = render(event("order.accepted", status="ordered"), acceptance="ORL^O22")
    assert orl.get("MSH-9.3") == "ORL_O22"


def test_an_orm_dialect_site_gets_the_status_as_a_note() -> None:
    msg = render(
        event("manufacturing.started", status="in_manufacturing", batch_id="B-42"), message_type="ORM^O01"
    )
    assert msg.get("MSH-9.1") == "ORM" and msg.get("ORC-1") == "SC" and not msg.all("OBX")
    assert msg.get("NTE-3") == "MFG-STARTED: Manufacturing started"


def test_values_are_escaped_and_the_control_id_follows_the_event() -> None:
    ev = event("manufacturing.started", status="in_manufacturing", batch_id="B|4^2")
    msg = render(ev)
    assert {s.value(3, 1): s.value(5) for s in msg.all("OBX")}["CGT-BATCH"] == "B|4^2"
    assert msg.get("MSH-10") == control_id(ev) == "CGT6F1C2A4E000040008"
    assert len(control_id(ev)) == 20  # fits MSH-10 in every version

from datetime import UTC, datetime

import pytest

from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import spec_for
from gateway.canonical.lifecycle import OrderStatus as S
from gateway.canonical.lifecycle import transition_refusal
from gateway.canonical.order import TherapyOrder
from gateway.errors import IllegalTransition

NOW = datetime(2026, 11, 2, tzinfo=UTC)
JOURNEY = [
    ("collection.scheduled", {"scheduled_start": NOW}, S.collection_scheduled),
    ("collection.completed", {"collected_at": NOW, "din": "A999921123456"}, S.collected),
    ("shipment.booked", {"shipment": {"shipment_id": "SH1", "direction": "to_manufacturer"}}, S.collected),
    ("shipment.picked_up", {"shipment_id": "SH1"}, S.in_transit_to_manufacturer),
    ("shipment.delivered", {"shipment_id": "SH1"}, S.received_by_manufacturer),
    ("manufacturing.material_received", {}, S.received_by_manufacturer),
    ("manufacturing.started", {"batch_id": "B1"}, S.in_manufacturing),
    (
        "manufacturing.qc_result",
        {"batch_id": "B1", "test": "sterility", "result": "pass"},
        S.in_manufacturing,
    ),
    ("manufacturing.released", {"batch_id": "B1"}, S.released),
    ("shipment.booked", {"shipment": {"shipment_id": "SH2", "direction": "to_site"}}, S.released),
    ("shipment.picked_up", {"shipment_id": "SH2"}, S.in_transit_to_site),
    ("shipment.delivered", {"shipment_id": "SH2"}, S.delivered_to_site),
    ("infusion.completed", {"infused_at": NOW}, S.infused),
]


def order(status: S = S.ordered) -> TherapyOrder:
    return TherapyOrder(
        order_id="o1",
        coi="CHA999926ABC123",
        patient_id="p1",
        status=status,
        product={"code": "S9999"},
        ordering_site={"id": "demo-hospital"},
        created_at=NOW,
        updated_at=NOW,
    )


def payload(name: str, fields: dict[str, object]) -> object:
    return spec_for(name).payload.model_validate(fields)


def test_the_whole_autologous_journey_applies_in_order() -> None:
    current = order()
    for name, fields, expected in JOURNEY:
        current = apply_event(current, name, payload(name, fields), NOW)
        assert current.status is expected, name
    assert current.version == len(JOURNEY) + 1
    assert current.collection.din == "A999921123456"
    assert current.manufacturing.batch_id == "B1"
    assert {s.shipment_id: s.status for s in current.shipments} == {"SH1": "delivered", "SH2": "delivered"}


@pytest.mark.parametrize(
    ("status", "name", "fields"),
    [
        (S.ordered, "manufacturing.released", {"batch_id": "B1"}),
        (S.collected, "infusion.completed", {"infused_at": NOW}),
        (S.infused, "order.cancelled", {}),
        (S.cancelled, "shipment.in_transit", {"shipment_id": "SH1", "direction": "to_site"}),
        (S.released, "manufacturing.started", {"batch_id": "B1"}),
    ],
)
def test_illegal_transitions_are_refused_with_a_reason(
    status: S, name: str, fields: dict[str, object]
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        apply_event(order(status), name, payload(name, fields), NOW)
    assert caught.value.public_message


def test_hold_and_resume_return_to_where_the_order_was() -> None:
    held = apply_event(order(S.in_manufacturing), "order.held", payload("order.held", {}), NOW)
    assert held.status is S.on_hold and held.status_before_hold is S.in_manufacturing
    resumed = apply_event(held, "order.resumed", payload("order.resumed", {}), NOW)
    assert resumed.status is S.in_manufacturing and resumed.status_before_hold is None
    with pytest.raises(IllegalTransition):
        apply_event(resumed, "order.resumed", payload("order.resumed", {}), NOW)


def test_a_shipment_update_for_an_unknown_shipment_needs_its_direction() -> None:
    with pytest.raises(IllegalTransition, match="direction"):
        apply_event(
            order(S.collected), "shipment.picked_up", payload("shipment.picked_up", {"shipment_id": "X"}), NOW
        )


def test_every_terminal_status_refuses_every_transition() -> None:
    for terminal in (S.infused, S.cancelled, S.failed):
        for target in S:
            assert transition_refusal(terminal, target) is not None


def test_order_updates_change_only_the_fields_given() -> None:
    changed = apply_event(
        order(), "order.updated", payload("order.updated", {"changes": {"notes": "x"}}), NOW
    )
    assert changed.notes == "x" and changed.product.code == "S9999"


def test_a_cancelled_infusion_clears_the_plan_and_keeps_the_status() -> None:
    planned = apply_event(
        order(S.delivered_to_site),
        "infusion.scheduled",
        payload("infusion.scheduled", {"planned_at": NOW}),
        NOW,
    )
    cancelled = apply_event(
        planned, "infusion.cancelled", payload("infusion.cancelled", {"reason": "unwell"}), NOW
    )
    assert planned.infusion.planned_at == NOW
    assert cancelled.infusion.planned_at is None and cancelled.status is S.delivered_to_site

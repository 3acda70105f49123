"""Schedule risk: the projection, when it is published, and the schedule table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.canonical.apply import apply_event
from gateway.canonical.catalogue import spec_for
from gateway.canonical.command import Command
from gateway.canonical.order import Infusion, ScheduleRisk, TherapyOrder
from gateway.errors import ConfigError
from gateway.service.risk import RiskRules, load_schedule, news, projection
from gateway.settings import Settings
from tests.support.builders import T0, coi, event, place
from tests.support.manufacturing import MAKER
from tests.unit.fakes import FakeTransactions
from tests.unit.test_intake_service import send, service

SCHEDULE = load_schedule(Settings().schedule_file)  # S9999: 17 days; demo-manufacturer to demo-hospital: 30 h
RULES = RiskRules(SCHEDULE, margin=timedelta(hours=48), step=timedelta(hours=12))
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def order(**parts: object) -> TherapyOrder:
    return TherapyOrder.model_validate(
        {
            "order_id": "o1",
            "coi": "CHA999926ABC123",
            "patient_id": "p1",
            "product": {"code": "S9999"},
            "ordering_site": {"id": "demo-hospital"},
            "created_at": T0,
            "updated_at": T0,
            **parts,
        }
    )


def planned(at: object) -> dict[str, object]:
    return {"infusion": Infusion(planned_at=at)}


def test_the_projection_runs_from_the_slot_the_start_or_the_release() -> None:
    maker = {"id": "demo-manufacturer"}
    slot = order(manufacturing={"slot_start": T0, "manufacturer": maker}, **planned(T0 + 21 * DAY))
    risk = projection(slot, RULES)
    assert risk is not None and risk.projected_release == T0 + 17 * DAY
    assert risk.projected_delivery == T0 + 17 * DAY + 30 * HOUR
    assert risk.slack_s == 18 * 3600 and not risk.at_risk  # 21 days - 48 h - (17 days + 30 h)
    started = order(
        manufacturing={"slot_start": T0, "started_at": T0 + 2 * DAY, "manufacturer": maker},
        **planned(T0 + 21 * DAY),
    )
    later = projection(started, RULES)
    assert later is not None and later.at_risk and later.slack_s == risk.slack_s - 2 * 86400
    done = order(manufacturing={"released_at": T0 + 10 * DAY}, **planned(T0 + 20 * DAY))
    assert projection(done, RULES).projected_delivery == T0 + 10 * DAY + 48 * HOUR  # type: ignore[union-attr]  # default transit


def test_the_couriers_expected_delivery_wins_over_the_projected_transit() -> None:
    shipment = {"shipment_id": "SH", "direction": "to_site", "expected_delivery": T0 + 19 * DAY}
    risk = projection(
        order(manufacturing={"released_at": T0}, shipments=[shipment], **planned(T0 + 20 * DAY)), RULES
    )
    assert (
        risk is not None
        and risk.projected_delivery == T0 + 19 * DAY
        and risk.slack_s == -86400
        and risk.at_risk
    )


def test_nothing_is_projected_without_a_planned_infusion_or_a_start() -> None:
    assert projection(order(manufacturing={"slot_start": T0}), RULES) is None
    assert projection(order(**planned(T0)), RULES) is None
    assert (
        projection(order(status="cancelled", manufacturing={"slot_start": T0}, **planned(T0)), RULES) is None
    )


def test_news_only_on_a_change_of_state() -> None:
    base = T0 + 19 * DAY + 18 * HOUR  # delivery at T0 + 19 days (the default transit): slack -30 h
    at_risk = order(manufacturing={"slot_start": T0}, **planned(base))
    first = news(at_risk, RULES, T0)
    assert first is not None and first.at_risk and first.slack_s == -30 * 3600
    told = at_risk.model_copy(update={"schedule_risk": ScheduleRisk(at_risk=True, slack_s=first.slack_s)})
    assert news(told, RULES, T0) is None
    slipped = told.model_copy(update={"infusion": Infusion(planned_at=base - 11 * HOUR)})
    assert news(slipped, RULES, T0) is None  # moved less than the step
    worse = told.model_copy(update={"infusion": Infusion(planned_at=base - 12 * HOUR)})
    assert news(worse, RULES, T0).slack_s == -42 * 3600  # type: ignore[union-attr]
    clear = told.model_copy(update={"infusion": Infusion(planned_at=T0 + 30 * DAY)})
    cleared = news(clear, RULES, T0)
    assert cleared is not None and not cleared.at_risk
    assert news(clear.model_copy(update={"schedule_risk": None}), RULES, T0) is None  # never was at risk


@pytest.mark.parametrize(
    "text",
    [
        "transit_default: PT1H\n",
        "manufacturing_default: P1D\ntransit_default: -PT1H\n",
        "manufacturing_default: [\n",
    ],
)
def test_a_bad_schedule_refuses_to_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="schedule"):
        load_schedule(path)


async def test_order_at_risk_is_published_when_the_state_changes_and_not_otherwise() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await send(gate, place(1))
    the_coi = coi(placed.coi or "")

    def infusion(at: object) -> Command:
        return event("infusion.scheduled", the_coi, planned_at=at)

    steps = [
        ("demo-hospital", infusion(T0 + 20 * DAY), None),  # no slot yet: nothing to project
        (
            MAKER,
            event(
                "slot.confirmed", the_coi, manufacturer={"id": MAKER}, slot_id="SL-1", slot_start=T0 + 2 * DAY
            ),
            -54,
        ),
        (MAKER, event("order.accepted", the_coi, accepted_by={"id": MAKER}), None),  # no date moved
        ("demo-hospital", infusion(T0 + 22 * DAY + 6 * HOUR), 0),  # back on schedule
        ("demo-hospital", infusion(T0 + 21 * DAY), -30),
        ("demo-hospital", infusion(T0 + 20 * DAY + 20 * HOUR), None),  # slack -34 h: moved 4 h
        ("demo-hospital", infusion(T0 + 20 * DAY), -54),
    ]
    for sender, command, slack_h in steps:
        before = len(store.committed.events)
        outcome = await send(gate, command, partner=sender)
        assert outcome.status == "applied", outcome
        published = store.committed.events[before:]
        risks = [e for e, _, _ in published if e.routing_key == "order.at_risk"]
        if slack_h is None:
            assert risks == [], command.event
            continue
        [risk] = risks
        assert published[-1][0] is risk and risk.source == "/gateway/schedule-risk"
        assert risk.data["slack_s"] == slack_h * 3600 and risk.data["at_risk"] is (slack_h < 0)
        assert risk.data["margin_s"] == 48 * 3600 and risk.subject == placed.coi
        assert len(outcome.event_ids) == 2 and risk.id in outcome.event_ids
    actions = [a.action for a in store.committed.audit if a.action == "order.at_risk"]
    assert len(actions) == 4


def test_a_couriers_expected_delivery_is_kept_on_the_shipment() -> None:
    booked = order(
        status="released", shipments=[{"shipment_id": "SH", "direction": "to_site", "courier": "c"}]
    )
    update = spec_for("shipment.in_transit").payload.model_validate(
        {"shipment_id": "SH", "expected_delivery": T0 + 3 * DAY}
    )
    moved = apply_event(booked, "shipment.in_transit", update, T0)
    assert moved.shipment("SH").expected_delivery == T0 + 3 * DAY  # type: ignore[union-attr]

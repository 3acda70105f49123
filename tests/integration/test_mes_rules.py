"""The manufacturing rules through the core's one path, on real SQLite and PostgreSQL: receipt
verification, QC-gated release, schedule risk (docs/mes-rules.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import verify
from gateway.canonical.envelope import utcnow
from gateway.service.desk import ReviewDesk
from gateway.service.intake import Intake
from gateway.service.review import ReviewConflict
from gateway.service.transaction import Rules
from gateway.store import tables as t
from gateway.store.reads import order_by_coi
from tests.support.builders import T0, coi, event
from tests.support.drive import AUTHORITY, send
from tests.support.manufacturing import (
    MAKER,
    TESTS,
    collected,
    din_of,
    in_manufacturing,
    keyed,
    qc,
    receipt,
    released,
)

PASSWORDS = {"ana": "ana-password-123", "bo": "bo-password-4567"}


def intake(engine: AsyncEngine) -> Intake:
    return Intake(engine, coi_facility="A9999", authority=AUTHORITY)


async def routing_keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(t.outbox.c.routing_key).order_by(t.outbox.c.id))).scalars())


async def test_the_bag_of_another_patient_is_quarantined_both_orders_held_nothing_applied(
    engine: AsyncEngine,
) -> None:
    gate = intake(engine)
    mine, theirs = await collected(send, gate, 1), await collected(send, gate, 2)
    before = await routing_keys(engine)
    outcome = await send(gate, receipt(mine.coi or "", din=keyed(din_of(2))), partner=MAKER)
    assert (
        outcome.status == "quarantined" and outcome.error == "ReceiptMismatch" and outcome.http_status == 202
    )
    assert (await routing_keys(engine))[len(before) :] == ["identity.mismatch", "order.held", "order.held"]
    async with engine.connect() as conn:
        for placed in (mine, theirs):
            order = await order_by_coi(conn, placed.coi or "")
            assert order is not None and order.status.value == "on_hold"
            assert order.status_before_hold is not None and order.status_before_hold.value == "collected"
        [row] = (await conn.execute(select(t.quarantine.c.reason, t.quarantine.c.detail))).all()
        assert row.reason == "receipt_mismatch" and "not the order's collection DIN" in row.detail
        mismatch = (
            await conn.execute(
                select(t.events.c.envelope).where(t.events.c.type == "org.cgt.identity.mismatch")
            )
        ).scalar_one()
        assert mismatch["data"]["severity"] == "critical" and mismatch["data"]["reason"] == "receipt_mismatch"
        held = (
            await conn.execute(select(t.events.c.order_id).where(t.events.c.type == "org.cgt.order.held"))
        ).scalars()
        assert set(held) == {mine.order_id, theirs.order_id}
        applied = (
            select(func.count())
            .select_from(t.events)
            .where(t.events.c.type == "org.cgt.manufacturing.material_received")
        )
        assert (await conn.execute(applied)).scalar_one() == 0
        actions = (
            await conn.execute(select(t.audit_records.c.action).order_by(t.audit_records.c.seq))
        ).scalars()
        assert list(actions)[-3:] == ["message.quarantined", "order.held", "order.held"]
        assert (await verify(conn)).ok


async def test_an_unknown_din_and_a_wrong_check_character_hold_the_order(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await collected(send, gate, 1)
    for scanned in (keyed("A999926009999"), din_of(1) + "Z"):
        outcome = await send(gate, receipt(placed.coi or "", din=scanned), partner=MAKER)
        assert outcome.status == "quarantined" and outcome.error == "ReceiptMismatch"
    async with engine.connect() as conn:
        order = await order_by_coi(conn, placed.coi or "")
        reasons = (
            await conn.execute(select(t.quarantine.c.detail).order_by(t.quarantine.c.created_at))
        ).scalars()
        assert sorted(reasons) == [
            "the scanned DIN is not the order's collection DIN",
            "the scanned DIN is refused: DIN check character does not match (ISO/IEC 7064 MOD 37-2)",
        ]
    assert order is not None and order.status.value == "on_hold"


async def test_a_matching_receipt_is_applied(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await collected(send, gate, 1)
    outcome = await send(gate, receipt(placed.coi or "", din=keyed(din_of(1))), partner=MAKER)
    assert outcome.status == "applied"
    assert (await routing_keys(engine))[-1] == "manufacturing.material_received"


async def test_the_release_waits_for_every_required_test(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    await send(
        gate, *(qc(the_coi, test) for test in TESTS[:-1]), qc(the_coi, "potency", "fail"), partner=MAKER
    )
    refused = await send(gate, released(the_coi), partner=MAKER)
    assert refused.status == "rejected" and refused.error == "ReleaseRefused"
    assert refused.reason == "release refused: QC tests failed: potency"
    await send(gate, qc(the_coi, "potency", "pass"), partner=MAKER)
    assert (await send(gate, released(the_coi), partner=MAKER)).status == "applied"
    async with engine.connect() as conn:
        order = await order_by_coi(conn, the_coi)
        assert order is not None and order.status.value == "released"
        assert order.manufacturing.qc == dict.fromkeys(TESTS, "pass")
        rejected = select(t.audit_records.c.detail).where(t.audit_records.c.action == "message.rejected")
        [detail] = (await conn.execute(rejected)).scalars()
        assert detail["error"] == "ReleaseRefused" and "potency" in detail["reason"]
        kept = (
            select(func.count())
            .select_from(t.inbound_messages)
            .where(t.inbound_messages.c.outcome == "rejected")
        )
        assert (await conn.execute(kept)).scalar_one() == 1


async def test_order_at_risk_goes_to_the_outbox_on_the_order(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await collected(send, gate, 1)
    the_coi = coi(placed.coi or "")
    assert (
        await send(gate, event("infusion.scheduled", the_coi, planned_at=T0 + timedelta(days=20)))
    ).status == "applied"
    slot = event(
        "slot.confirmed",
        the_coi,
        manufacturer={"id": MAKER},
        slot_id="SL-1",
        slot_start=T0 + timedelta(days=2),
    )
    outcome = await send(gate, slot, partner=MAKER)
    assert (await routing_keys(engine))[-2:] == ["slot.confirmed", "order.at_risk"]
    async with engine.connect() as conn:
        envelope = (
            await conn.execute(
                select(t.events.c.envelope, t.events.c.order_id).where(
                    t.events.c.type == "org.cgt.order.at_risk"
                )
            )
        ).one()
        order = await order_by_coi(conn, placed.coi or "")
    assert envelope.order_id == placed.order_id and envelope.envelope["id"] == outcome.event_ids[1]
    assert envelope.envelope["data"]["slack_s"] == -54 * 3600 and envelope.envelope["data"]["at_risk"] is True
    assert order is not None and order.schedule_risk is not None and order.schedule_risk.slack_s == -54 * 3600


async def test_a_mismatch_in_a_message_of_several_commands_holds_the_order_and_applies_none_of_them(
    engine: AsyncEngine,
) -> None:
    gate = intake(engine)
    placed = await collected(send, gate, 1)
    async with engine.connect() as conn:
        before = await order_by_coi(conn, placed.coi or "")
    accepted = event("order.accepted", coi(placed.coi or ""), accepted_by={"id": MAKER})
    outcome = await send(gate, accepted, receipt(placed.coi or "", din=keyed("A999926009999")), partner=MAKER)
    assert outcome.status == "quarantined" and outcome.error == "ReceiptMismatch"
    async with engine.connect() as conn:
        after = await order_by_coi(conn, placed.coi or "")
        types = (
            await conn.execute(select(t.events.c.type).where(t.events.c.order_id == placed.order_id))
        ).scalars()
    assert before is not None and after is not None
    assert after.status.value == "on_hold" and after.version == before.version + 1  # the hold alone
    assert "org.cgt.order.accepted" not in set(types)


async def test_a_receipt_mismatch_released_by_two_signatures_still_does_not_apply(
    engine: AsyncEngine,
) -> None:
    gate = intake(engine)
    desk = ReviewDesk(engine, Rules("A9999", AUTHORITY, utcnow), production=False)
    await desk.add_user("ana", "operator", "Ana Example", PASSWORDS["ana"])
    await desk.add_user("bo", "qa", "Bo Sample", PASSWORDS["bo"])
    mine = await collected(send, gate, 1)
    await collected(send, gate, 2)
    await send(gate, receipt(mine.coi or "", din=keyed(din_of(2))), partner=MAKER)
    [held] = await desk.held(reason="receipt_mismatch")
    await desk.approve(held["quarantine_id"], "ana", PASSWORDS["ana"], "reviewed")
    with pytest.raises(ReviewConflict, match="still does not reconcile"):  # not a reason to apply as is
        await desk.approve(held["quarantine_id"], "bo", PASSWORDS["bo"], "confirmed")
    assert [h["quarantine_id"] for h in await desk.held()] == [held["quarantine_id"]]

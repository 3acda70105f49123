"""The one-transaction intake against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import verify
from gateway.errors import TransientError
from gateway.service.intake import Intake
from gateway.store import tables as t
from gateway.store.db import writer_for
from gateway.store.repository import order_by_coi
from tests.support.builders import coi, envelope_json, event, mrn, place, placer
from tests.support.drive import AUTHORITY, send, send_raw


def intake(engine: AsyncEngine) -> Intake:
    return Intake(engine, coi_facility="A9999", authority=AUTHORITY)


async def count(engine: AsyncEngine, table: t.Table, *where: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_a_placed_order_is_stored_bound_published_and_audited(engine: AsyncEngine) -> None:
    outcome = await send(intake(engine), place(1))
    assert outcome.status == "applied" and outcome.coi and outcome.coi.startswith("CHA9999")
    async with engine.connect() as conn:
        order = await order_by_coi(conn, outcome.coi)
        assert order is not None and order.status.value == "ordered"
        assert order.patient.family_name == "Testpatient"
        namespaces = {r.namespace for r in await conn.execute(select(t.crosswalk.c.namespace))}
        assert namespaces == {"site:demo-hospital:mrn", "site:demo-hospital:placer-order", "coi"}
        box = (await conn.execute(select(t.outbox.c.routing_key, t.outbox.c.event_id))).all()
        assert [(b.routing_key, b.event_id) for b in box] == [("order.placed", outcome.event_ids[0])]
        report = await verify(conn)
    assert report.ok and report.checked == 1


async def test_a_repeated_message_id_returns_the_first_answer_and_adds_nothing(engine: AsyncEngine) -> None:
    gate = intake(engine)
    raw = envelope_json("msg-1", place(1))
    first, first_ack = await send_raw(gate, raw)
    again, again_ack = await send_raw(gate, raw)
    assert again.duplicate and not first.duplicate
    assert again_ack == first_ack and again.event_ids == first.event_ids
    assert await count(engine, t.orders) == 1
    assert await count(engine, t.outbox) == 1
    assert await count(engine, t.inbound_messages) == 1


async def test_events_follow_the_order_and_carry_its_coi(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await send(gate, place(1))
    scheduled = await send(
        gate, event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z")
    )
    assert scheduled.status == "applied" and scheduled.coi == placed.coi
    collected = await send(
        gate,
        event(
            "collection.completed",
            coi(placed.coi or ""),
            collected_at="2026-11-09T12:00:00Z",
            din="A9999211234563",
        ),
    )
    assert collected.status == "applied"
    async with engine.connect() as conn:
        order = await order_by_coi(conn, placed.coi or "")
    assert order is not None and order.status.value == "collected" and order.version == 3
    assert order.collection.din == "A999921123456"


async def test_an_unknown_order_is_quarantined_and_nothing_is_applied(engine: AsyncEngine) -> None:
    outcome = await send(intake(engine), event("order.cancelled", placer("PO-404")))
    assert outcome.status == "quarantined" and outcome.error == "UnknownIdentity"
    assert await count(engine, t.quarantine, t.quarantine.c.reason == "unknown_identity") == 1
    async with engine.connect() as conn:
        keys = [r.routing_key for r in await conn.execute(select(t.outbox.c.routing_key))]
        raw = (await conn.execute(select(t.inbound_messages.c.raw, t.inbound_messages.c.outcome))).one()
    assert keys == ["identity.mismatch"]
    assert raw.outcome == "quarantined" and b"PO-404" in raw.raw


async def test_identifiers_of_two_orders_quarantine_and_change_neither(engine: AsyncEngine) -> None:
    gate = intake(engine)
    first, second = await send(gate, place(1)), await send(gate, place(2))
    mixed = await send(gate, event("order.cancelled", placer("PO-000001"), coi(second.coi or "")))
    assert mixed.status == "quarantined" and mixed.error == "ConflictingIdentities"
    async with engine.connect() as conn:
        for placed in (first, second):
            order = await order_by_coi(conn, placed.coi or "")
            assert order is not None and order.status.value == "ordered" and order.version == 1


async def test_a_second_order_with_the_same_placer_number_is_quarantined(engine: AsyncEngine) -> None:
    gate = intake(engine)
    await send(gate, place(1))
    again = await send(gate, place(1))
    assert again.status == "quarantined" and again.error == "AlreadyBound"
    assert await count(engine, t.orders) == 1


async def test_a_known_mrn_with_other_demographics_is_quarantined(engine: AsyncEngine) -> None:
    gate = intake(engine)
    await send(gate, place(1))
    other = place(1, birth="1980-05-05").model_copy(update={"refs": (mrn("MRN-000001"), placer("PO-777777"))})
    outcome = await send(gate, other)
    assert outcome.status == "quarantined" and outcome.error == "DemographicMismatch"


async def test_an_illegal_transition_is_rejected_recorded_and_not_applied(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await send(gate, place(1))
    released = event("manufacturing.released", coi(placed.coi or ""), batch_id="B1")
    outcome = await send(gate, released, partner="demo-manufacturer")
    assert outcome.status == "rejected" and outcome.error == "IllegalTransition"
    assert outcome.http_status == 409 and "ordered" in (outcome.reason or "")
    async with engine.connect() as conn:
        order = await order_by_coi(conn, placed.coi or "")
        actions = [r.action for r in await conn.execute(select(t.audit_records.c.action))]
    assert order is not None and order.status.value == "ordered"
    assert actions == ["order.placed", "message.rejected"]


async def test_a_message_is_applied_whole_or_not_at_all(engine: AsyncEngine) -> None:
    gate = intake(engine)
    await send(gate, place(1))
    outcome = await send(
        gate,
        event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z"),
        event("order.cancelled", placer("PO-404")),
    )
    assert outcome.status == "quarantined"
    async with engine.connect() as conn:
        status = (await conn.execute(select(t.orders.c.status))).scalar_one()
    assert status == "ordered"


async def test_a_malformed_message_is_kept_and_rejected(engine: AsyncEngine) -> None:
    outcome, answer = await send_raw(intake(engine), b'{"message_id": "m", "commands": [')
    assert outcome.status == "rejected" and outcome.error == "MalformedMessage"
    assert answer is not None and b"MalformedMessage" in answer
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.inbound_messages.c.raw, t.inbound_messages.c.outcome))).one()
    assert row.raw == b'{"message_id": "m", "commands": [' and row.outcome == "rejected"


async def test_concurrent_messages_keep_one_gapless_audit_chain(engine: AsyncEngine) -> None:
    gate = intake(engine)
    outcomes = await asyncio.gather(*(send(gate, place(n)) for n in range(1, 21)))
    assert all(o.status == "applied" for o in outcomes)
    assert len({o.coi for o in outcomes}) == 20
    await asyncio.gather(
        *(
            send(
                gate,
                event("collection.scheduled", placer(f"PO-{n:06d}"), scheduled_start="2026-11-09T08:00:00Z"),
            )
            for n in range(1, 21)
        )
    )
    async with engine.connect() as conn:
        report = await verify(conn)
    assert report.ok and report.checked == 40


async def test_racing_placements_of_one_order_bind_it_once(engine: AsyncEngine) -> None:
    gate = intake(engine)
    outcomes = await asyncio.gather(*(send(gate, place(7)) for _ in range(5)))
    assert sorted(o.status for o in outcomes) == ["applied"] + ["quarantined"] * 4
    assert await count(engine, t.orders) == 1


async def test_tampering_with_the_audit_trail_is_found(engine: AsyncEngine) -> None:
    gate = intake(engine)
    for n in range(1, 4):
        await send(gate, place(n))
    async with engine.begin() as conn:
        await conn.execute(
            update(t.audit_records).where(t.audit_records.c.seq == 2).values(actor="partner:someone-else")
        )
    async with engine.connect() as conn:
        report = await verify(conn)
    assert not report.ok and report.first_broken == 2 and report.checked == 1
    async with engine.begin() as conn:
        await conn.execute(t.audit_records.delete().where(t.audit_records.c.seq == 2))
    async with engine.connect() as conn:
        report = await verify(conn)
    assert report.first_broken == 2 and "missing" in (report.reason or "")


def merge(surviving: str, prior: str) -> object:
    from gateway.canonical.command import Command

    return Command.model_validate(
        {"event": "patient.merged", "refs": [mrn(surviving), mrn(prior)], "payload": {"prior": [mrn(prior)]}}
    )


async def test_a_merge_folds_the_prior_patient_into_the_surviving_one(engine: AsyncEngine) -> None:
    gate = intake(engine)
    first, second = await send(gate, place(1)), await send(gate, place(2))
    outcome = await send(gate, merge("MRN-000001", "MRN-000002"))  # type: ignore[arg-type]
    assert outcome.status == "applied", outcome
    async with engine.connect() as conn:
        a = await order_by_coi(conn, first.coi or "")
        b = await order_by_coi(conn, second.coi or "")
        assert a is not None and b is not None and b.patient_id == a.patient_id
        owners = {
            r.patient_id
            for r in await conn.execute(
                select(t.crosswalk.c.patient_id).where(t.crosswalk.c.namespace.like("%:mrn"))
            )
        }
        envelope = (
            await conn.execute(select(t.events.c.envelope).where(t.events.c.type == "org.cgt.patient.merged"))
        ).scalar_one()
    assert owners == {a.patient_id}
    assert envelope["data"]["patient_id"] == a.patient_id
    assert envelope["data"]["merged_patient_id"] != a.patient_id
    assert sorted(envelope["data"]["cois"]) == sorted([first.coi, second.coi])
    # the prior MRN still finds the (same) patient's orders afterwards
    later = await send(gate, event("order.cancelled", placer("PO-000002"), mrn("MRN-000002")))
    assert later.status == "applied"


async def test_a_merge_into_a_new_identifier_binds_it_to_the_known_patient(engine: AsyncEngine) -> None:
    gate = intake(engine)
    await send(gate, place(1))
    assert (await send(gate, merge("MRN-NEW", "MRN-000001"))).status == "applied"  # type: ignore[arg-type]
    moved = await send(gate, event("order.cancelled", placer("PO-000001"), mrn("MRN-NEW")))
    assert moved.status == "applied"


async def test_a_merge_of_patients_the_gateway_never_saw_is_quarantined(engine: AsyncEngine) -> None:
    outcome = await send(intake(engine), merge("MRN-X", "MRN-Y"))  # type: ignore[arg-type]
    assert outcome.status == "quarantined" and outcome.error == "UnknownIdentity"


async def test_a_message_resent_while_the_first_is_in_flight_is_applied_once(engine: AsyncEngine) -> None:
    gate = intake(engine)
    raw = envelope_json("same-id", place(1))
    results = await asyncio.gather(*(send_raw(gate, raw) for _ in range(5)))
    assert [r[0].duplicate for r in results].count(False) == 1
    assert len({r[1] for r in results}) == 1  # every sender gets the same answer
    assert await count(engine, t.orders) == 1


async def test_a_defect_in_one_message_leaves_the_messages_committed_with_it_alone(
    engine: AsyncEngine,
) -> None:
    from gateway.canonical.envelope import utcnow
    from gateway.store.repository import InboundRecord

    gate = intake(engine)

    def defective() -> list[object]:
        raise RuntimeError("a bug in a mapping")

    async def send_defect() -> object:
        record = InboundRecord("demo-hospital", "http", "canonical-json", "bad-1", utcnow(), None, b"{raw}")
        return (await gate.receive(record, defective))[0]  # type: ignore[arg-type]

    outcomes = await asyncio.gather(send(gate, place(1)), send_defect(), send(gate, place(2)))
    good_1, bad, good_2 = outcomes
    assert good_1.status == good_2.status == "applied"  # type: ignore[union-attr]
    assert bad.status == "rejected" and bad.error in ("MappingError", "InternalError")  # type: ignore[attr-defined]
    assert await count(engine, t.orders) == 2
    assert await count(engine, t.inbound_messages, t.inbound_messages.c.raw == b"{raw}") == 1
    async with engine.connect() as conn:
        assert (await verify(conn)).ok


async def test_a_failure_while_committing_a_batch_is_isolated_to_its_message(engine: AsyncEngine) -> None:
    from adapters.canonical_json.adapter import adapter
    from gateway.canonical.envelope import utcnow
    from gateway.store.repository import InboundRecord

    gate = intake(engine)

    def broken_render(outcome: object) -> bytes:
        raise RuntimeError("renderer bug")

    async def one(n: int, render: object) -> object:
        command = place(n)
        record = InboundRecord("demo-hospital", "http", "canonical-json", f"m-{n}", utcnow(), None, b"raw")
        return (await gate.receive(record, lambda: [command], render))[0]  # type: ignore[arg-type]

    outcomes = await asyncio.gather(
        *(one(n, broken_render if n == 3 else partial(adapter.answer, decoded=None)) for n in range(1, 6))
    )
    statuses = [o.status for o in outcomes]  # type: ignore[attr-defined]
    assert statuses == ["applied", "applied", "rejected", "applied", "applied"]
    assert outcomes[2].error == "InternalError"  # type: ignore[attr-defined]
    assert await count(engine, t.orders) == 4
    async with engine.connect() as conn:
        assert (await verify(conn)).ok


async def test_a_defect_is_logged_without_the_patient_data_its_message_may_carry(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.canonical.envelope import utcnow
    from gateway.store.repository import InboundRecord

    def leaky() -> list[object]:
        raise KeyError("MRN-SECRET-0042")

    record = InboundRecord("demo-hospital", "http", "canonical-json", "leak-1", utcnow(), None, b"{}")
    outcome, _ = await intake(engine).receive(record, leaky)  # type: ignore[arg-type]
    assert outcome.error == "MappingError"
    assert "KeyError" in caplog.text and "MRN-SECRET-0042" not in caplog.text


async def test_a_transient_error_in_a_batch_is_its_message_alone(engine: AsyncEngine) -> None:
    from gateway.canonical.envelope import utcnow
    from gateway.errors import TransientError
    from gateway.store.repository import InboundRecord

    gate = intake(engine)

    def busy() -> list[object]:
        raise TransientError("a downstream lookup is busy")

    async def one(n: int) -> object:
        command = place(n)
        record = InboundRecord("demo-hospital", "http", "canonical-json", f"t-{n}", utcnow(), None, b"raw")
        decode = busy if n == 2 else (lambda: [command])
        return (await gate.receive(record, decode))[0]  # type: ignore[arg-type]

    results = await asyncio.gather(*(one(n) for n in range(1, 5)), return_exceptions=True)
    assert isinstance(results[1], TransientError)
    assert [r.status for i, r in enumerate(results) if i != 1] == ["applied"] * 3  # type: ignore[union-attr]


async def audit_times(engine: AsyncEngine) -> list[object]:
    async with engine.connect() as conn:
        return list(
            (await conn.execute(select(t.audit_records.c.at).order_by(t.audit_records.c.seq))).scalars()
        )


async def test_a_message_sees_what_an_earlier_one_of_its_batch_did(engine: AsyncEngine) -> None:
    gate = intake(engine)
    scheduled = event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z")
    placed, followed = await asyncio.gather(send(gate, place(1)), send(gate, scheduled))
    assert (placed.status, followed.status) == ("applied", "applied")
    assert followed.coi == placed.coi
    times = await audit_times(engine)
    assert len(times) == 2 and times[0] == times[1]  # one transaction: they were one batch


async def test_a_message_rolled_back_in_a_batch_leaves_nothing_for_the_next_to_see(
    engine: AsyncEngine,
) -> None:
    gate = intake(engine)
    # Places order 2, then names an order nobody placed: quarantined whole, its placement undone.
    broken = (
        place(2),
        event("collection.scheduled", placer("PO-999999"), scheduled_start="2026-11-09T08:00:00Z"),
    )
    first, second = await asyncio.gather(send(gate, *broken), send(gate, place(2)))
    assert (first.status, second.status) == ("quarantined", "applied")
    times = await audit_times(engine)
    assert len(times) == 2 and times[0] == times[1]
    assert await count(engine, t.orders) == 1
    assert await count(engine, t.crosswalk, t.crosswalk.c.order_id == second.order_id) == 2


async def test_one_message_id_twice_in_a_batch_is_applied_once(engine: AsyncEngine) -> None:
    gate = intake(engine)
    first, again = await asyncio.gather(
        send(gate, place(3), message_id="same-id"), send(gate, place(3), message_id="same-id")
    )
    assert (first.duplicate, again.duplicate) == (False, True) and again.event_ids == first.event_ids
    assert await count(engine, t.orders) == 1


async def test_two_changes_to_one_order_in_a_batch_are_both_kept(engine: AsyncEngine) -> None:
    gate = intake(engine)
    placed = await send(gate, place(4))
    scheduled = event("collection.scheduled", placer("PO-000004"), scheduled_start="2026-11-09T08:00:00Z")
    collected = event("collection.completed", placer("PO-000004"), collected_at="2026-11-09T12:00:00Z")
    first, second = await asyncio.gather(send(gate, scheduled), send(gate, collected))
    assert (first.status, second.status) == ("applied", "applied")
    async with engine.connect() as conn:
        order = await order_by_coi(conn, placed.coi or "")
        report = await verify(conn)
    assert order is not None and (order.status.value, order.version) == ("collected", 3)
    assert order.collection is not None and order.collection.scheduled_start is not None
    times = await audit_times(engine)
    assert len(times) == 3 and times[1] == times[2] and report.ok


async def test_a_database_locked_by_another_process_is_a_transient_error(sqlite_engine: AsyncEngine) -> None:
    gate = intake(sqlite_engine)
    writer = writer_for(sqlite_engine)  # the intake's writer: one an engine

    def impatient() -> None:  # the pooled writer connection gives up after 0.1 s, not 10
        with writer.engine.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=100")  # type: ignore[union-attr]

    await writer.run(impatient)
    other = sqlite3.connect(str(sqlite_engine.url.database), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    try:
        with pytest.raises(TransientError):
            await send(gate, place(1))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await count(sqlite_engine, t.inbound_messages) == 0
    assert (await send(gate, place(1))).status == "applied"  # and once it is free, all is well

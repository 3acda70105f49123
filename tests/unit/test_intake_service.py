"""The intake's service logic on the in-memory fakes of its ports: no database, milliseconds.

The same behaviours run against SQLite and PostgreSQL in tests/integration/test_intake.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from gateway.canonical.command import Command, fingerprint
from gateway.claims import Claim
from gateway.errors import ConcurrentChange, NotOurs, Replayed, TransientError
from gateway.outcome import Outcome
from gateway.service.decoding import Decode
from gateway.service.handlers import advance_order, handler_for, merge_patients, place_order, update_patient
from gateway.service.intake import Intake
from gateway.store.records import InboundRecord
from tests.support.builders import coi, event, mrn, place, placer
from tests.support.drive import AUTHORITY
from tests.unit.fakes import FakeTransactions

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def service(store: FakeTransactions) -> Intake:
    return Intake(store, coi_facility="A9999", authority=AUTHORITY, clock=lambda: NOW)


def record(
    *commands: Command, message_id: str | None = None, partner: str = "demo-hospital"
) -> InboundRecord:
    return InboundRecord(
        partner=partner,
        transport="test",
        adapter="unit",
        message_id=message_id or str(uuid.uuid4()),
        received_at=NOW,
        content_type="application/json",
        raw=fingerprint(commands),
    )


def render(outcome: Outcome) -> bytes:
    return orjson.dumps({"status": outcome.status, "error": outcome.error})


async def send(
    gate: Intake, *commands: Command, message_id: str | None = None, partner: str = "demo-hospital"
) -> Outcome:
    outcome, _ = await gate.receive(
        record(*commands, message_id=message_id, partner=partner), lambda: list(commands), render
    )
    return outcome


async def test_a_placed_order_is_stored_bound_published_and_audited() -> None:
    store = FakeTransactions()
    outcome = await send(service(store), place(1))
    assert outcome.status == "applied" and outcome.coi and outcome.coi.startswith("CHA9999")
    state = store.committed
    order = state.orders[outcome.order_id or ""]
    assert order.status.value == "ordered" and order.patient.family_name == "Testpatient"
    assert {ns for ns, _ in state.crosswalk} == {
        "site:demo-hospital:mrn",
        "site:demo-hospital:placer-order",
        "coi",
    }
    assert [(e.routing_key, o) for e, o, _ in state.events] == [("order.placed", order.order_id)]
    assert [a.action for a in state.audit] == ["order.placed"]
    assert [m["outcome"] for m in state.inbound] == ["applied"]


async def test_a_repeat_gets_the_first_answer_and_adds_nothing() -> None:
    store = FakeTransactions()
    gate = service(store)
    rec = record(place(1), message_id="msg-1")
    first = await gate.receive(rec, lambda: [place(1)], render)
    again = await gate.receive(rec, lambda: [place(1)], render)
    assert again[0].duplicate and not first[0].duplicate
    assert again[1] == first[1] and again[0].event_ids == first[0].event_ids
    assert len(store.committed.orders) == 1 and len(store.committed.events) == 1
    assert len(store.committed.inbound) == 1


async def test_another_message_under_a_used_id_is_kept_and_refused() -> None:
    store = FakeTransactions()
    gate = service(store)
    await send(gate, place(1), message_id="msg-1")
    other = await send(gate, place(2), message_id="msg-1")
    assert other.status == "rejected" and other.error == "DuplicateKey"
    assert [m["outcome"] for m in store.committed.inbound] == ["applied", "rejected"]
    assert len(store.committed.orders) == 1
    assert store.committed.answers[("demo-hospital", "msg-1")].outcome["status"] == "applied"


async def test_an_unknown_order_is_quarantined_and_announced() -> None:
    store = FakeTransactions()
    outcome = await send(service(store), event("order.cancelled", placer("PO-404")))
    assert outcome.status == "quarantined" and outcome.error == "UnknownIdentity"
    assert [q["reason"] for q in store.committed.quarantine] == ["unknown_identity"]
    assert [e.routing_key for e, _, _ in store.committed.events] == ["identity.mismatch"]
    assert outcome.event_ids == (store.committed.events[0][0].id,)
    assert [a.action for a in store.committed.audit] == ["message.quarantined"]


async def test_an_illegal_transition_is_rejected_recorded_and_not_applied() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await send(gate, place(1))
    released = event("manufacturing.released", coi(placed.coi or ""), batch_id="B1")
    outcome = await send(gate, released, partner="demo-manufacturer")
    assert (
        outcome.status == "rejected" and outcome.error == "IllegalTransition" and outcome.http_status == 409
    )
    assert store.committed.orders[placed.order_id or ""].status.value == "ordered"
    assert [a.action for a in store.committed.audit] == ["order.placed", "message.rejected"]


async def test_a_message_is_applied_whole_or_not_at_all() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await send(gate, place(1))
    outcome = await send(
        gate,
        event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z"),
        event("order.cancelled", placer("PO-404")),
    )
    assert outcome.status == "quarantined"
    order = store.committed.orders[placed.order_id or ""]
    assert order.status.value == "ordered" and order.version == 1


async def test_a_merge_folds_the_prior_patient_into_the_surviving_one() -> None:
    store = FakeTransactions()
    gate = service(store)
    first, second = await send(gate, place(1)), await send(gate, place(2))
    merge = Command.model_validate(
        {
            "event": "patient.merged",
            "refs": [mrn("MRN-000001"), mrn("MRN-000002")],
            "payload": {"prior": [mrn("MRN-000002")]},
        }
    )
    outcome = await send(gate, merge)
    assert outcome.status == "applied", outcome
    a, b = (store.committed.orders[o.order_id or ""] for o in (first, second))
    assert b.patient_id == a.patient_id and b.version == 2
    assert {binding.patient_id for binding in store.committed.crosswalk.values()} == {a.patient_id}
    merged = store.committed.events[-1][0]
    assert merged.routing_key == "patient.merged" and sorted(merged.data["cois"]) == sorted([a.coi, b.coi])


async def test_messages_arriving_together_are_committed_in_one_transaction() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await send(gate, place(1))
    outcomes = await asyncio.gather(
        send(gate, place(2)),
        send(
            gate, event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z")
        ),
        send(gate, event("order.cancelled", placer("PO-000001"))),  # sees what the one before did
    )
    assert [o.status for o in outcomes] == ["applied"] * 3
    assert store.commits == 2  # the first message, then the three together
    assert store.committed.orders[placed.order_id or ""].status.value == "cancelled"


async def test_a_defect_in_one_message_of_a_batch_is_its_alone() -> None:
    store = FakeTransactions()
    gate = service(store)

    def broken(outcome: Outcome) -> bytes:
        raise RuntimeError("a defect in the dialect's renderer")

    outcomes = await asyncio.gather(
        send(gate, place(1)),
        gate.receive(record(place(2)), lambda: [place(2)], broken),
        send(gate, place(3)),
    )
    first, (failed, answer), third = outcomes
    assert first.status == third.status == "applied"
    assert failed.status == "rejected" and failed.error == "InternalError" and answer is None
    assert len(store.committed.orders) == 2
    assert [a.action for a in store.committed.audit].count("message.failed") == 1


async def test_a_concurrent_change_runs_the_message_again() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await send(gate, place(1))
    order_id = placed.order_id or ""
    raced: list[bool] = []

    def decode() -> list[Command]:
        if not raced:  # another writer moves the order on while this transaction runs
            raced.append(True)
            bumped = store.committed.orders[order_id]
            store.committed.orders[order_id] = bumped.model_copy(update={"version": bumped.version + 1})
        return [event("order.cancelled", placer("PO-000001"))]

    outcome, _ = await gate.receive(record(event("order.cancelled", placer("PO-000001"))), decode, render)
    assert outcome.status == "applied" and store.runs == 3  # the placement, then two attempts
    assert store.committed.orders[order_id].version == 3


async def test_concurrent_changes_past_the_attempts_are_a_transient_error() -> None:
    store = FakeTransactions()
    store.fail = [
        ConcurrentChange(detail="raced"),
        ConcurrentChange(detail="raced"),
        ConcurrentChange(detail="raced"),
    ]
    with pytest.raises(TransientError) as raised:
        await send(service(store), place(1))
    assert type(raised.value) is TransientError and store.runs == 3 and store.commits == 0


async def test_a_transient_store_error_reaches_the_sender_at_once() -> None:
    store = FakeTransactions()
    store.fail = [TransientError(detail="database: OperationalError")]
    with pytest.raises(TransientError):
        await send(service(store), place(1))
    assert store.runs == 1 and store.committed.inbound == []
    assert (await send(service(store), place(1))).status == "applied"


async def test_a_signed_attempt_is_taken_with_its_message_once() -> None:
    store = FakeTransactions()
    gate = service(store)
    claim = Claim.of("webhook:demo-hospital", "msg_1.1800000000", datetime(2026, 11, 30, 9, 5, tzinfo=UTC))
    rec = record(place(1), message_id="msg_1")
    first, _ = await gate.receive(rec, lambda: [place(1)], render, claim=claim)
    assert first.status == "applied" and store.commits == 1
    with pytest.raises(Replayed):  # a copy of the same attempt: refused, nothing stored
        await gate.receive(rec, lambda: [place(1)], render, claim=claim)
    assert len(store.committed.inbound) == 1 and gate.recent.summary()["failed"] == 0
    # the same message sent again in a new attempt (a new signature): the first answer again
    again = Claim.of("webhook:demo-hospital", "msg_1.1800000060", claim.expires_at)
    repeat, _ = await gate.receive(rec, lambda: [place(1)], render, claim=again)
    assert repeat.duplicate and repeat.inbound_id == first.inbound_id


async def test_an_attempt_whose_transaction_failed_is_not_taken() -> None:
    store = FakeTransactions()
    store.fail = [TransientError(detail="database: OperationalError")]
    gate = service(store)
    claim = Claim.of("webhook:demo-hospital", "msg_1.1800000000", datetime(2026, 11, 30, 9, 5, tzinfo=UTC))
    rec = record(place(1))
    with pytest.raises(TransientError):
        await gate.receive(rec, lambda: [place(1)], render, claim=claim)
    outcome, _ = await gate.receive(rec, lambda: [place(1)], render, claim=claim)  # the retry, as sent
    assert outcome.status == "applied"


async def test_a_message_about_nothing_bound_is_not_ours_when_its_adapter_says_so() -> None:
    store = FakeTransactions()
    gate = service(store)
    await send(gate, place(1))
    cancel = event("order.cancelled", placer("PO-000001"))
    # a carrier's event about a parcel no shipment was declared for: ignored, stored nowhere
    unknown = (placer("PO-999999"),)
    rec = record(cancel, message_id="parcel-1")
    outcome, _ = await gate.receive(rec, lambda: [cancel], render, ours_if_known=unknown)
    assert outcome.status == "ignored" and outcome.code == "unknown_identifier"
    assert len(store.committed.inbound) == 1 and ("demo-hospital", "parcel-1") not in store.committed.answers
    # the same message once what it names is bound: applied
    outcome, _ = await gate.receive(rec, lambda: [cancel], render, ours_if_known=(placer("PO-000001"),))
    assert outcome.status == "applied"


async def test_traffic_found_not_ours_while_mapping_is_answered_and_not_stored() -> None:
    store = FakeTransactions()

    def decode() -> list[Command]:
        raise NotOurs("lab_order")

    outcome, answer = await service(store).receive(record(place(1)), decode, render)
    assert outcome.status == "ignored" and outcome.code == "lab_order" and answer is not None
    assert store.committed.inbound == [] and store.committed.answers == {}


async def test_a_mapping_defect_is_kept_and_rejected() -> None:
    store = FakeTransactions()
    decode: Decode = lambda: [][0]  # noqa: E731 - an adapter's IndexError
    outcome, _ = await service(store).receive(record(place(1)), decode, render)
    assert outcome.status == "rejected" and outcome.error == "MappingError"
    assert [m["outcome"] for m in store.committed.inbound] == ["rejected"]


def test_handlers_are_found_by_event_name_then_by_scope() -> None:
    assert handler_for(place(1)) is place_order
    assert handler_for(event("order.cancelled", placer("PO-1"))) is advance_order
    updated = Command.model_validate(
        {
            "event": "patient.updated",
            "refs": [mrn("MRN-1")],
            "payload": {"patient": {"family_name": "Testpatient"}},
        }
    )
    assert handler_for(updated) is update_patient
    merged = Command.model_validate(
        {
            "event": "patient.merged",
            "refs": [mrn("MRN-1"), mrn("MRN-2")],
            "payload": {"prior": [mrn("MRN-2")]},
        }
    )
    assert handler_for(merged) is merge_patients

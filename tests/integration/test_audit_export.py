"""`gateway.audit.export`: the chain as a FHIR R4 Bundle, valid, PHI-free, and verifiable from the
file alone; an edited export is caught (both databases)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.fhir.validation import model
from gateway.audit.chain import AuditEntry, append
from gateway.audit.export import RECORD, export, verify_export
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send


async def _orders(engine: AsyncEngine, numbers: range) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    for n in numbers:
        await send(gate, place(n, family="Exportpatient", birth="1961-02-03"))


async def _export(engine: AsyncEngine, **selection: Any) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await export(conn, **selection)


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _part(event: dict[str, Any], name: str) -> dict[str, Any]:
    ext = next(e for e in event["extension"] if e["url"] == RECORD)
    part: dict[str, Any] = next(p for p in ext["extension"] if p["url"] == name)
    return part


async def test_the_whole_chain_exports_as_valid_fhir_without_patient_data_and_verifies(
    engine: AsyncEngine,
) -> None:
    await _orders(engine, range(1, 4))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.audit_records).order_by(t.audit_records.c.seq))).all()
    bundle = await _export(engine)

    model("Bundle").model_validate(bundle)
    for entry in bundle["entry"]:
        model(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    events = _resources(bundle, "AuditEvent")
    assert [_part(e, "seq")["valueInteger"] for e in events] == [r.seq for r in rows]
    assert [e["subtype"][0]["code"] for e in events] == [r.action for r in rows]
    assert [_part(e, "hash")["valueString"] for e in events] == [r.hash for r in rows]
    placed = [r for r in rows if r.action == "order.placed"]
    assert len(placed) == 3
    first = next(e for e in events if e["subtype"][0]["code"] == "order.placed")
    identifiers = {
        (x["what"]["identifier"]["system"], x["what"]["identifier"]["value"]) for x in first["entity"]
    }
    assert ("urn:cgt:fhir:NamingSystem:coi", placed[0].subject) in identifiers
    assert ("urn:cgt:fhir:NamingSystem:inbound-message", placed[0].detail["inbound_id"]) in identifiers
    assert first["agent"][0]["who"]["identifier"]["value"] == placed[0].actor
    provenances = _resources(bundle, "Provenance")
    assert [p["target"][0]["identifier"]["value"] for p in provenances] == [r.subject for r in placed]

    text = orjson.dumps(bundle).decode()
    assert "Exportpatient" not in text and "1961-02-03" not in text and "MRN" not in text

    report = verify_export(bundle)
    assert report.ok and report.checked == len(rows)


async def test_an_edited_export_names_the_first_record_that_does_not_verify(engine: AsyncEngine) -> None:
    await _orders(engine, range(1, 4))
    bundle = await _export(engine)
    events = _resources(bundle, "AuditEvent")
    assert len(events) >= 3

    edited = copy.deepcopy(bundle)
    detail = _part(_resources(edited, "AuditEvent")[1], "detail")
    detail["valueString"] = detail["valueString"].replace('"status_to":"', '"status_to":"x')
    report = verify_export(edited)
    assert report.first_broken == 2 and report.reason == "its content does not match its hash"

    removed = copy.deepcopy(bundle)
    removed["entry"] = [
        e
        for e in removed["entry"]
        if e["resource"]["resourceType"] != "AuditEvent" or _part(e["resource"], "seq")["valueInteger"] != 2
    ]
    report = verify_export(removed)
    assert report.first_broken == 2 and report.reason == "record 2 is missing"

    retimed = copy.deepcopy(bundle)
    _resources(retimed, "AuditEvent")[2]["recorded"] = "2001-01-01T00:00:00+00:00"
    report = verify_export(retimed)
    assert report.first_broken == 3 and report.reason == "its recorded time is not the record's"

    unreadable = copy.deepcopy(bundle)
    _part(_resources(unreadable, "AuditEvent")[0], "detail")["valueString"] = '{"inbound_id": '
    report = verify_export(unreadable)
    assert report.first_broken == 1 and report.reason == "its record cannot be read (JSONDecodeError)"


async def test_a_period_starts_from_the_hash_before_it_and_an_order_holds_its_own_records(
    engine: AsyncEngine,
) -> None:
    await _orders(engine, range(1, 3))
    mark = datetime.now(UTC)
    await _orders(engine, range(3, 5))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.audit_records).order_by(t.audit_records.c.seq))).all()
    later = [r for r in rows if r.at >= mark]
    assert later and later[0].seq > 1

    period = await _export(engine, since=mark)
    events = _resources(period, "AuditEvent")
    assert [_part(e, "seq")["valueInteger"] for e in events] == [r.seq for r in later]
    assert _part(events[0], "prevHash")["valueString"] == rows[later[0].seq - 2].hash
    assert verify_export(period).ok
    unlinked = copy.deepcopy(period)
    _part(_resources(unlinked, "AuditEvent")[-1], "prevHash")["valueString"] = "f" * 64
    assert verify_export(unlinked).first_broken == later[-1].seq

    coi = next(r.subject for r in rows if r.action == "order.placed")
    order = await _export(engine, coi=coi)
    assert {_part(e, "subject")["valueString"] for e in _resources(order, "AuditEvent")} == {coi}
    assert verify_export(order).ok
    model("Bundle").model_validate(order)


async def test_a_period_holds_every_record_between_its_first_and_last_even_one_timed_earlier(
    engine: AsyncEngine,
) -> None:
    """A record's time is taken before its commit: a slow transaction's record can follow one timed
    after it. The period keeps the run of seq whole, so it still links."""
    await _orders(engine, range(1, 2))
    mark = datetime.now(UTC)
    await _orders(engine, range(2, 3))
    late = AuditEntry(actor="gateway", action="order.noted", subject=None, detail={"reason": "slow"})
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: append(sync, [late], mark - timedelta(seconds=5)))
    await _orders(engine, range(3, 4))

    period = await _export(engine, since=mark)
    actions = [e["subtype"][0]["code"] for e in _resources(period, "AuditEvent")]
    assert "order.noted" in actions and actions[-1] != "order.noted"
    assert verify_export(period).ok

    empty = await _export(engine, until=datetime(2000, 1, 1, tzinfo=UTC))
    assert empty["entry"] == [] and verify_export(empty).ok
    model("Bundle").model_validate(empty)

"""Changes of who a patient is wait for a person, while the patient has an open therapy order:
an update of birth date, sex or name, and a merge of records whose demographics disagree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.command import Command
from gateway.canonical.order import PatientIdentity
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.builders import event, mrn, place, placer
from tests.support.drive import AUTHORITY, send


def update(n: int, **patient: Any) -> Command:
    return event("patient.updated", mrn(f"MRN-{n:06d}"), patient=patient)


def merge(survivor: int, prior: int) -> Command:
    old = mrn(f"MRN-{prior:06d}")
    return Command.model_validate(
        {"event": "patient.merged", "refs": [mrn(f"MRN-{survivor:06d}"), old], "payload": {"prior": [old]}}
    )


async def stored_patients(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted(str(d) for (d,) in (await conn.execute(select(t.patients.c.identity))).all())


async def test_identity_defining_changes_are_held_and_routine_ones_apply(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    assert (await send(gate, place(1))).status == "applied"
    before = await stored_patients(engine)
    for change in (
        {"birth_date": "2024-01-01"},
        {"sex": "M"},  # place() makes no sex: the first one given is not a change
        {"family_name": "Otherfamily"},
        {"given_name": "Beta"},
    ):
        if change == {"sex": "M"}:
            assert (await send(gate, update(1, sex="F"))).status == "applied"
            before = await stored_patients(engine)
        outcome = await send(gate, update(1, **change))
        assert outcome.status == "quarantined" and outcome.error == "IdentityChange", (change, outcome)
        assert await stored_patients(engine) == before
    for routine in (
        {"family_name": "TESTPATIENT", "given_name": "alpha"},  # the same after normalisation
        {"given_name": "Alpha Q."},  # a middle initial
    ):
        assert (await send(gate, update(1, **routine))).status == "applied", routine
    async with engine.connect() as conn:
        reasons = [r for (r,) in (await conn.execute(select(t.quarantine.c.reason))).all()]
    assert reasons == ["identity_change"] * 4


async def test_without_an_open_order_an_identity_change_applies(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    await send(gate, place(1))
    assert (await send(gate, event("order.cancelled", placer("PO-000001")))).status == "applied"
    assert (await send(gate, update(1, birth_date="1971-01-01"))).status == "applied"


async def test_a_merge_of_records_that_disagree_is_held_and_one_that_agrees_applies(
    engine: AsyncEngine,
) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    for n, birth in ((1, "1970-01-01"), (2, "1985-05-05"), (3, "1970-01-01")):
        assert (await send(gate, place(n, birth=birth))).status == "applied"
    held = await send(gate, merge(1, 2))
    assert held.status == "quarantined" and held.error == "DisagreeingMerge"
    assert (await send(gate, merge(1, 3))).status == "applied"
    async with engine.connect() as conn:
        patients = (await conn.execute(select(t.patients.c.patient_id))).all()
        reasons = [r for (r,) in (await conn.execute(select(t.quarantine.c.reason))).all()]
    assert reasons == ["disagreeing_merge"]
    assert len(patients) == 3  # the agreeing merge tombstones, it does not delete


def test_what_counts_as_a_change_of_identity() -> None:
    known = PatientIdentity(
        family_name="Dupont-Éva", given_name="Marie Claire", birth_date="1970-01-01", sex="F"
    )
    assert known.identity_changes(PatientIdentity(family_name="DUPONT EVA", given_name="marie")) == []
    assert known.identity_changes(PatientIdentity(given_name="Claire")) == ["given_name"]
    assert known.identity_changes(PatientIdentity(birth_date="1970-01-02", sex="M")) == ["birth_date", "sex"]
    assert known.identity_changes(PatientIdentity()) == []

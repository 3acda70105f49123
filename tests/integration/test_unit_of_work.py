"""The SQL unit of work (gateway.store.unit_of_work) on real SQLite and PostgreSQL: database
errors translated at its edge, savepoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit
from gateway.canonical.order import PatientIdentity
from gateway.errors import ConcurrentChange
from gateway.service.intake import Intake
from gateway.store import tables as t
from gateway.store.unit_of_work import SqlTransactions, SqlUnitOfWork
from tests.support.builders import mrn, place
from tests.support.drive import AUTHORITY, send

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def test_an_identifier_another_transaction_bound_first_is_a_concurrent_change(
    engine: AsyncEngine,
) -> None:
    await send(Intake(engine, coi_facility="A9999", authority=AUTHORITY), place(1))

    def bind_again(uow: SqlUnitOfWork) -> None:
        uow.insert_patient("p-late", PatientIdentity(), NOW)
        # Bound without reading the crosswalk first, as a transaction that read before the other
        # committed would.
        uow.bind([mrn("MRN-000001")], "p-late", None, NOW, None)

    with pytest.raises(ConcurrentChange) as raised:
        await SqlTransactions(engine, audit.append).run(bind_again)
    assert isinstance(raised.value.__cause__, IntegrityError)
    async with engine.connect() as conn:
        assert (
            await conn.execute(select(t.patients.c.patient_id).where(t.patients.c.patient_id == "p-late"))
        ).all() == []


async def test_a_savepoint_drops_only_what_its_block_wrote(engine: AsyncEngine) -> None:
    def work(uow: SqlUnitOfWork) -> None:
        uow.insert_patient("p-kept", PatientIdentity(family_name="Keptpatient"), NOW)
        with pytest.raises(RuntimeError), uow.savepoint():
            uow.insert_patient("p-dropped", PatientIdentity(), NOW)
            uow.write_pending()  # written inside the block, then rolled back with it
            raise RuntimeError("the block fails")
        assert uow.patients(["p-dropped"]) == {}

    await SqlTransactions(engine, audit.append).run(work)
    async with engine.connect() as conn:
        stored = [r.patient_id for r in await conn.execute(select(t.patients.c.patient_id))]
    assert stored == ["p-kept"]

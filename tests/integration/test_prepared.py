"""Prepared statements on the driver's cursor: what they write, SQLAlchemy reads back the same;
driver errors come out as SQLAlchemy's; on PostgreSQL, pipelined writes still fail their
transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ConcurrentChange
from gateway.service.intake import Intake
from gateway.store.db import writer_for
from gateway.store.lookups import lookup
from gateway.store.prepared import Prepared
from gateway.store.repository import Repository
from gateway.store.statements import ORDERS_OF_PATIENT
from gateway.store.tables import audit_head, crosswalk, events, orders, patients
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send

_INSERT = Prepared(
    insert(events).values(
        {name: bindparam(name) for name in ("event_id", "order_id", "type", "time", "envelope", "inbound_id")}
    )
)
_BY_ORDER = Prepared(
    select(events.c.event_id, events.c.time, events.c.envelope)
    .where(events.c.order_id == bindparam("oid"))
    .order_by(events.c.event_id)
)
_HEAD = Prepared(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1))
_RETYPE = Prepared(update(events).where(events.c.event_id == bindparam("eid")).values(type=bindparam("type")))


def _row(event_id: str, at: datetime) -> dict[str, object]:
    return {
        "event_id": event_id,
        "order_id": "o-1",
        "type": "order.placed",
        "time": at,
        "envelope": {"id": event_id, "nested": {"n": 1, "list": [1, "two"]}},
        "inbound_id": None,
    }


async def test_what_a_prepared_statement_writes_reads_back_the_same_both_ways(engine: AsyncEngine) -> None:
    writer = writer_for(engine)
    at = datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))

    def work() -> tuple[list[tuple[object, ...]], tuple[object, ...] | None, int]:
        with writer.engine.begin() as conn:
            _INSERT.execute_many(conn, [_row("e-1", at), _row("e-2", at + timedelta(seconds=1))])
            touched = _RETYPE.execute(conn, {"eid": "e-2", "type": "order.cancelled"}).rowcount
            return _BY_ORDER.rows(conn, {"oid": "o-1"}), _HEAD.first(conn), touched

    rows, head, touched = await writer.run(work)
    assert touched == 1
    assert [r[0] for r in rows] == ["e-1", "e-2"]
    assert rows[0][1] == at.astimezone(UTC) and rows[0][1].tzinfo is not None
    assert rows[0][2] == {"id": "e-1", "nested": {"n": 1, "list": [1, "two"]}}
    assert head is not None and head[0] == 0  # a literal in the statement (`id == 1`) is bound too
    async with engine.connect() as conn:  # SQLAlchemy's own reading of the same rows
        read = (await conn.execute(select(events).order_by(events.c.event_id))).all()
    assert [(r.event_id, r.type, r.time, r.envelope) for r in read] == [
        ("e-1", "order.placed", at.astimezone(UTC), rows[0][2]),
        ("e-2", "order.cancelled", (at + timedelta(seconds=1)).astimezone(UTC), rows[1][2]),
    ]


async def test_a_driver_error_is_sqlalchemys_and_rolls_the_transaction_back(engine: AsyncEngine) -> None:
    writer = writer_for(engine)
    at = datetime.now(UTC)

    def work() -> None:
        with writer.engine.begin() as conn, writer.pipelined(conn):
            _INSERT.execute(conn, _row("e-1", at))
            _INSERT.execute(conn, _row("e-1", at))  # the same key: fails here or, pipelined, later
            _BY_ORDER.rows(conn, {"oid": "o-1"})

    with pytest.raises(IntegrityError):
        await writer.run(work)
    async with engine.connect() as conn:
        assert (await conn.execute(select(events.c.event_id))).all() == []


async def test_a_pipelined_write_is_seen_by_the_next_read(engine: AsyncEngine) -> None:
    writer = writer_for(engine)

    def work() -> list[tuple[object, ...]]:
        with writer.engine.begin() as conn, writer.pipelined(conn):
            _INSERT.execute(conn, _row("e-1", datetime.now(UTC)))
            return _BY_ORDER.rows(conn, {"oid": "o-1"})

    assert [r[0] for r in await writer.run(work)] == ["e-1"]


async def test_an_order_update_that_finds_another_version_fails_before_the_commit(
    engine: AsyncEngine,
) -> None:
    outcome = await send(Intake(engine, coi_facility="A9999", authority=AUTHORITY), place(1))
    assert outcome.order_id is not None
    order_id = outcome.order_id
    writer = writer_for(engine)

    def stale_update() -> None:
        with writer.engine.begin() as conn:
            repo = Repository(conn)
            with writer.pipelined(conn):
                current = repo.order(order_id)
                # Written as if the stored order were one version further on than it is.
                repo.update_order(current.model_copy(update={"version": current.version + 2}))
                repo.write_pending()
            repo.settle()

    with pytest.raises(ConcurrentChange, match="changed concurrently"):
        await writer.run(stale_update)
    async with engine.connect() as conn:
        version = (await conn.execute(select(orders.c.version).where(orders.c.order_id == order_id))).scalar()
    assert version == 1


async def test_a_batch_lookup_uses_the_key_for_every_pair_on_a_table_not_yet_analysed(
    engine: AsyncEngine,
) -> None:
    writer = writer_for(engine)
    at = datetime.now(UTC)
    namespace = "site:demo-hospital:mrn"
    pairs = [(namespace, f"MRN-{n:06d}") for n in (5, 50, 150, 250)]

    def plan() -> str:
        with writer.engine.begin() as conn:
            conn.execute(
                insert(patients),
                [{"patient_id": f"p-{n}", "identity": {}, "updated_at": at} for n in range(300)],
            )
            conn.execute(
                insert(crosswalk),
                [
                    {"namespace": namespace, "value": f"MRN-{n:06d}", "patient_id": f"p-{n}", "bound_at": at}
                    for n in range(300)
                ],
            )
            query = lookup("crosswalk", len(pairs)).statement
            values = {}
            for i, (ns, value) in enumerate(pairs):
                values[f"a{i}"], values[f"b{i}"] = ns, value
            explain = "EXPLAIN QUERY PLAN " if writer.sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(
                explain + str(query.compile(conn)), _driver_params(conn, query, values)
            )
            return "\n".join(str(r[-1]) for r in rows)

    text = await writer.run(plan)
    if writer.sqlite:
        assert text.count("(namespace=? AND value=?)") == len(pairs), text
    else:
        assert "Filter" not in text and text.count("(value)::text = ") == len(pairs), text


def _driver_params(conn: object, query: object, values: dict[str, str]) -> object:
    compiled = query.compile(conn)  # type: ignore[attr-defined]
    if compiled.positiontup is not None:
        return tuple(values[name] for name in compiled.positiontup)
    return values


async def test_the_orders_of_a_patient_are_found_through_indexes_not_a_scan(
    sqlite_engine: AsyncEngine,
) -> None:
    writer = writer_for(sqlite_engine)

    def plan() -> str:
        with writer.engine.begin() as conn:
            statement = ORDERS_OF_PATIENT.statement
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(statement.compile(conn)), ("p-1", "p-1"))
            return "\n".join(str(r[-1]) for r in rows)

    text = await writer.run(plan)
    assert "SEARCH crosswalk USING INDEX ix_crosswalk_patient" in text, text
    assert "SEARCH orders USING INDEX" in text and "SCAN orders" not in text, text

"""The cold chain's rows on the intake's transaction: a shipment's readings (one batched insert
that keeps a reading sent twice once), its evaluator state, and its clocks (`deadlines`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import NullType

from gateway.coldchain.steps import next_warning
from gateway.store import tables as t
from gateway.store.prepared import Prepared

_r, _s, _d = t.shipment_readings, t.cold_chain_states, t.deadlines
READING_COLUMNS = (
    "order_id shipment_id device_id probe at until temperature_c min_c max_c mean_c extra inbound_id"
)
_values: dict[str, Any] = {name: bindparam(name) for name in READING_COLUMNS.split()}
_unique = [_r.c.device_id, _r.c.at, _r.c.probe]
# INSERT ... ON CONFLICT (device_id, at, probe) DO NOTHING, in each dialect's construct.
_INSERT_READINGS = {
    "sqlite": Prepared(sqlite.insert(_r).values(_values).on_conflict_do_nothing(index_elements=_unique)),
    "postgresql": Prepared(
        postgresql.insert(_r).values(_values).on_conflict_do_nothing(index_elements=_unique)
    ),
}
# Locked: two transactions evaluating the same shipment's readings take turns (on PostgreSQL;
# SQLite's one writer does so anyway), so that neither writes back a state the other moved on.
_STATE = Prepared(
    select(_s.c.state)
    .where(_s.c.order_id == bindparam("oid"), _s.c.shipment_id == bindparam("sid"))
    .with_for_update()
)
_INSERT_STATE = Prepared(
    insert(_s).values(
        order_id=bindparam("oid"),
        shipment_id=bindparam("sid"),
        state=bindparam("state"),
        updated_at=bindparam("at"),
    )
)
_UPDATE_STATE = Prepared(
    update(_s)
    .where(_s.c.order_id == bindparam("oid"), _s.c.shipment_id == bindparam("sid"))
    .values(state=bindparam("state"), updated_at=bindparam("at"))
)
# The drivers' floats as they come: psycopg's Float result processor wants a type code that a
# statement run on the bare cursor does not give.
_floats = [type_coerce(c, NullType()) for c in (_r.c.temperature_c, _r.c.min_c, _r.c.max_c, _r.c.mean_c)]
_READINGS_OF = Prepared(
    select(_r.c.at, _r.c.until, *_floats, _r.c.extra)
    .where(_r.c.order_id == bindparam("oid"), _r.c.shipment_id == bindparam("sid"))
    .order_by(_r.c.at, _r.c.id)
)
_clock = and_(
    _d.c.order_id == bindparam("oid"), _d.c.shipment_id == bindparam("sid"), _d.c.clock == bindparam("clock")
)
_MOVE_CLOCK = Prepared(
    update(_d)
    .where(_clock)
    .values(
        starts_at=bindparam("starts_at"),
        due_at=bindparam("due_at"),
        warned_pct=0,
        stopped_at=None,
        next_at=bindparam("next_at"),
    )
)
_INSERT_CLOCK = Prepared(
    insert(_d).values(
        order_id=bindparam("oid"),
        shipment_id=bindparam("sid"),
        clock=bindparam("clock"),
        starts_at=bindparam("starts_at"),
        due_at=bindparam("due_at"),
        warned_pct=0,
        next_at=bindparam("next_at"),
    )
)
_CLOCK = Prepared(select(_d.c.due_at, _d.c.stopped_at).where(_clock))
_STOP_CLOCK = Prepared(
    update(_d).where(_clock, _d.c.stopped_at.is_(None)).values(stopped_at=bindparam("at"), next_at=None)
)


class SqlColdChain:
    """The cold chain's reads and writes, run at once on the transaction's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert_readings(self, rows: Iterable[Mapping[str, Any]]) -> Callable[[], int | None]:
        """Insert; returns how to ask, later, how many rows were new (None: the driver cannot say).
        Asked after the next read: in a PostgreSQL pipeline the count is known only then."""
        cursor = _INSERT_READINGS[self.conn.dialect.name].execute_many(self.conn, rows)

        def inserted() -> int | None:
            count = getattr(cursor, "rowcount", -1) if cursor is not None else 0
            return count if isinstance(count, int) and count >= 0 else None

        return inserted

    def state(self, order_id: str, shipment_id: str) -> dict[str, Any] | None:
        found = _STATE.first(self.conn, {"oid": order_id, "sid": shipment_id})
        return dict(found[0]) if found else None

    def save_state(
        self, order_id: str, shipment_id: str, state: dict[str, Any], at: datetime, *, new: bool
    ) -> None:
        values = {"oid": order_id, "sid": shipment_id, "state": state, "at": at}
        (_INSERT_STATE if new else _UPDATE_STATE).execute(self.conn, values)

    def readings_of(self, order_id: str, shipment_id: str) -> list[tuple[Any, ...]]:
        """Every stored reading of the shipment, in time order: (at, until, temperature_c, min_c,
        max_c, mean_c, extra)."""
        return _READINGS_OF.rows(self.conn, {"oid": order_id, "sid": shipment_id})

    def set_clock(
        self, order_id: str, shipment_id: str, clock: str, starts_at: datetime, due_at: datetime
    ) -> None:
        """Start the clock, or move it (a new deadline warns again from the start)."""
        values = {
            "oid": order_id,
            "sid": shipment_id,
            "clock": clock,
            "starts_at": starts_at,
            "due_at": due_at,
            "next_at": next_warning(clock, starts_at, due_at, 0),
        }
        # Read first: in a PostgreSQL pipeline an update's row count is not known at once.
        known = _CLOCK.first(self.conn, values)
        if known is None:
            _INSERT_CLOCK.execute(self.conn, values)
        elif known[0] != due_at or known[1] is not None:  # the same deadline again warns no more
            _MOVE_CLOCK.execute(self.conn, values)

    def stop_clock(self, order_id: str, shipment_id: str, clock: str, at: datetime) -> None:
        _STOP_CLOCK.execute(self.conn, {"oid": order_id, "sid": shipment_id, "clock": clock, "at": at})

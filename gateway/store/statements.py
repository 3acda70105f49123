"""The statements of the intake's write-behind cache (gateway.store.repository), built once at
import and run as `Prepared` statements (gateway.store.prepared)."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, insert, select, update

from gateway.store import tables as t
from gateway.store.prepared import Prepared

_cw, _pt, _or = t.crosswalk, t.patients, t.orders


def insert_all(table: Table, columns: str) -> Prepared:
    """An insert of the named columns, each bound by its own name."""
    return Prepared(insert(table).values({name: bindparam(name) for name in columns.split()}))


UPDATE_PATIENT = Prepared(
    update(_pt)
    .where(_pt.c.patient_id == bindparam("pid"))
    .values(identity=bindparam("identity"), updated_at=bindparam("at"))
)
# Found through the crosswalk's patient index (every order is bound there by its COI and placer
# number; a merge re-points those rows), not by scanning orders. Locked: a merge re-points them,
# and expects each at the version it read.
ORDERS_OF_PATIENT = Prepared(
    select(_or.c.document)
    .where(
        _or.c.order_id.in_(select(_cw.c.order_id).where(_cw.c.patient_id == bindparam("pid"))),
        _or.c.patient_id == bindparam("pid"),
    )
    .order_by(_or.c.order_id)
    .with_for_update()
)
UPDATE_ORDER = Prepared(
    update(_or)
    .where(_or.c.order_id == bindparam("order_id"), _or.c.version == bindparam("expected"))
    .values(
        patient_id=bindparam("patient_id"),
        status=bindparam("status"),
        version=bindparam("version"),
        document=bindparam("document"),
        updated_at=bindparam("updated_at"),
    )
)
REPOINT_CROSSWALK = Prepared(
    update(_cw).where(_cw.c.patient_id == bindparam("old")).values(patient_id=bindparam("new"))
)
TOMBSTONE = Prepared(
    update(_pt)
    .where(_pt.c.patient_id == bindparam("old"))
    .values(merged_into=bindparam("new"), updated_at=bindparam("at"))
)
INSERT_PATIENT = Prepared(
    insert(_pt).values(
        patient_id=bindparam("pid"), identity=bindparam("identity"), updated_at=bindparam("at")
    )
)
INSERT_ORDER = insert_all(_or, "order_id coi patient_id status version document created_at updated_at")
INSERT_BINDING = insert_all(_cw, "namespace value patient_id order_id bound_at inbound_id")
